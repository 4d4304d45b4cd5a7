"""The feed and the live stream: every case event, in log order, exactly once."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from cases.vocabulary import HandlingType, Role, Tier
from commands.cases import Cases
from config.settings import Settings
from security.tokens import TokenKeys
from streams.cloudevents import CASE_TOPICS
from streams.feed import EventFilter, Feed
from streams.tail import Tail, follow
from tests.api_steps import Driver, register
from tests.factories import (
    ADMIN,
    AUDITOR,
    CLERK,
    INTEGRATOR,
    OTHER_STREET_GRID,
    SECURITY,
    STREET,
    TOWNSHIP,
    DefaultReader,
    auth,
    registration,
    token,
)
from tests.serving import serve
from tests.sse import messages


def log_positions(cases: Cases) -> list[int]:
    """Every case event's position, read from the recorder itself."""
    return [n.id for n in cases.recorder.select_notifications(start=1, limit=1_000_000, topics=CASE_TOPICS)]


async def register_and_follow(cases: Cases, tail: Tail, titles: list[str]) -> None:
    """Register through the application, then wait until the tail has read every case event."""
    for title in titles:
        await asyncio.to_thread(cases.register, CLERK, **registration(title=title))
    last = log_positions(cases)[-1]
    async with asyncio.timeout(10):
        while tail.head < last:
            await asyncio.sleep(0.01)


def read_all(client: TestClient, limit: int, **params: Any) -> tuple[list[dict], int]:
    events: list[dict] = []
    after = 0
    while True:
        page = client.get("/events", params={"after": after, "limit": limit, **params})
        assert page.status_code == 200, page.text
        body = page.json()
        events += body["events"]
        assert body["next_after"] >= after
        after = body["next_after"]
        if not body["more"] and not body["events"]:
            return events, after


def test_feed_pages_are_cloud_events_in_log_order(driver: Driver, client: TestClient) -> None:
    first = driver.closed()
    driver.register(grid=OTHER_STREET_GRID)
    whole, _ = read_all(client, 1000)
    paged, _ = read_all(client, 3)
    assert [e["sequence"] for e in paged] == [e["sequence"] for e in whole]
    assert len({e["id"] for e in whole}) == len(whole)
    event = whole[0]
    assert {"specversion", "id", "source", "type", "subject", "time", "data", "sequence"} <= set(event)
    assert event["specversion"] == "1.0"
    assert (event["type"], event["subject"]) == ("cn.minqing.case.Registered", f"cases/{first}")
    assert event["data"]["petitioner"] == {"name": "张**", "phone": "138****1234"}
    sequences = [e["sequence"] for e in whole]
    assert sequences == sorted(sequences) and [int(s) for s in sequences] == sorted(int(s) for s in sequences)
    # Only case events: the number reservations and idempotency records stay private.
    assert all(e["type"].startswith("cn.minqing.case.") for e in whole)


def test_feed_filters_by_type_case_and_unit(driver: Driver, client: TestClient) -> None:
    here = driver.accepted()
    elsewhere = driver.accepted(grid=OTHER_STREET_GRID)
    driver.act(here, "whistle", TOWNSHIP, departments=["zhujian"], reason="违建需住建部门处置")
    driver.act(here, "report-progress", TOWNSHIP, progress="住建已到场")

    registered, _ = read_all(client, 10, type="Registered")
    assert [e["subject"] for e in registered] == [f"cases/{here}", f"cases/{elsewhere}"]
    street, _ = read_all(client, 10, unit=STREET)
    assert {e["subject"] for e in street} == {f"cases/{here}"}
    # A department sees a case from the whistle on, not its earlier history.
    housing, _ = read_all(client, 10, unit="zhujian")
    assert [e["type"].rsplit(".", 1)[1] for e in housing] == ["WhistleBlown", "ProgressReported"]
    one, _ = read_all(client, 2, case=elsewhere)
    assert {e["subject"] for e in one} == {f"cases/{elsewhere}"} and len(one) == 4
    wrong = client.get("/events", params={"type": "Teleported"})
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"][0]["field"] == "type"
    assert client.get("/events", params={"limit": 5000}).status_code == 422


def test_feed_read_while_writers_are_busy_loses_nothing(client: TestClient, cases: Cases) -> None:
    writers, per_writer = 4, 15
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(per_writer):
                result = cases.register(CLERK, **registration(title=f"并发{i}"))
                cases.classify(UUID(result.case_id), CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    seen: list[int] = []
    after = 0
    while not done.is_set():
        finished = all(not t.is_alive() for t in threads)
        body = client.get("/events", params={"after": after, "limit": 7}).json()
        seen += [int(e["sequence"]) for e in body["events"]]
        after = body["next_after"]
        if finished and not body["events"] and not body["more"]:
            done.set()
    assert not errors
    assert len(seen) == len(set(seen)) == writers * per_writer * 2
    assert seen == log_positions(cases)


def test_feed_next_after_moves_past_bookkeeping_records(driver: Driver, client: TestClient) -> None:
    driver.register()
    body = client.get("/events", params={"after": 0}).json()
    # The registration also reserved its number: the page is complete up to the head.
    assert body["next_after"] >= int(body["events"][-1]["sequence"])
    again = client.get("/events", params={"after": body["next_after"]}).json()
    assert again["events"] == [] and again["next_after"] == body["next_after"]


def _register_over_http(http: httpx.Client, n: int, tag: str) -> None:
    for i in range(n):
        response = http.post("/cases", json=registration(title=f"{tag}{i}"), headers=auth(CLERK))
        assert response.status_code == 201, response.text


def _collect(base: str, n: int, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
    got = []
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=20), headers=auth(AUDITOR)) as http,
        http.stream("GET", "/events/stream", params={"heartbeat": 1, **params}, headers=headers or {}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in messages(response):
            if message is not None:
                got.append(message)
            if len(got) == n:
                break
    return got


@pytest.mark.e2e
def test_sse_client_that_disconnects_and_resumes_gets_every_event_once(server: str, cases: Cases) -> None:
    with httpx.Client(base_url=server, timeout=10, headers=auth(AUDITOR)) as http:
        _register_over_http(http, 5, "前")
        first = _collect(server, 3, after=0)
        # Events arrive while the client is away; it resumes with Last-Event-ID.
        _register_over_http(http, 4, "后")
        rest_expected = len(log_positions(cases)) - 3
        rest = _collect(server, rest_expected, headers={"Last-Event-ID": first[-1].id})
    ids = [int(m.id) for m in first + rest]
    assert ids == log_positions(cases)
    assert all(m.data["sequence"] == f"{int(m.id):020d}" for m in first + rest)


@pytest.mark.e2e
def test_sse_follows_live_writes_with_heartbeats(server: str) -> None:
    received: list[Any] = []
    heartbeats = 0

    def listen() -> None:
        nonlocal heartbeats
        with (
            httpx.Client(base_url=server, timeout=httpx.Timeout(10, read=20), headers=auth(AUDITOR)) as http,
            http.stream("GET", "/events/stream", params={"heartbeat": 0.5, "type": "Registered"}) as response,
        ):
            for message in messages(response):
                if message is None:
                    heartbeats += 1
                else:
                    received.append(message)
                if len(received) == 3:
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    with httpx.Client(base_url=server, timeout=10, headers=auth(AUDITOR)) as http:
        threading.Event().wait(1.5)  # heartbeats while nothing happens
        _register_over_http(http, 3, "实时")
    listener.join(timeout=30)
    assert not listener.is_alive()
    assert [m.data["data"]["title"] for m in received] == ["实时0", "实时1", "实时2"]
    assert heartbeats >= 1


@pytest.mark.e2e
def test_the_documented_consumer_resumes_from_its_saved_position(server: str, cases: Cases, tmp_path) -> None:
    import subprocess
    import sys

    example = [sys.executable, "docs/examples/follow_events.py", server, "--state", str(tmp_path / "position")]
    with httpx.Client(base_url=server, timeout=10, auth=DefaultReader()) as http:
        _register_over_http(http, 3, "文档")
    env = {**os.environ, "MINQING_TOKEN": token(INTEGRATOR)}
    first = subprocess.run([*example, "--max", "2"], capture_output=True, text=True, timeout=60, env=env)
    with httpx.Client(base_url=server, timeout=10, auth=DefaultReader()) as http:
        _register_over_http(http, 2, "文档后")
    rest = subprocess.run([*example, "--max", "3"], capture_output=True, text=True, timeout=60, env=env)
    assert first.returncode == rest.returncode == 0, first.stderr + rest.stderr
    printed = [int(line.split()[0]) for line in (first.stdout + rest.stdout).splitlines()]
    assert printed == log_positions(cases)


@pytest.mark.e2e
def test_feed_over_real_http_while_writers_post_loses_nothing(server: str, cases: Cases) -> None:
    writers, per_writer = 4, 12

    def write(tag: str) -> None:
        with httpx.Client(base_url=server, timeout=10, auth=DefaultReader()) as http:
            _register_over_http(http, per_writer, tag)

    threads = [threading.Thread(target=write, args=(f"写{i}-",)) for i in range(writers)]
    for t in threads:
        t.start()
    seen: list[int] = []
    after = 0
    with httpx.Client(base_url=server, timeout=10, auth=DefaultReader()) as http:
        while True:
            finished = all(not t.is_alive() for t in threads)
            body = http.get("/events", params={"after": after, "limit": 7}).json()
            seen += [int(e["sequence"]) for e in body["events"]]
            after = body["next_after"]
            if finished and not body["events"] and not body["more"]:
                break
    assert len(seen) == len(set(seen)) == writers * per_writer
    assert seen == log_positions(cases)


def test_a_subscriber_behind_the_ring_reads_the_log_then_follows_the_ring(cases: Cases) -> None:
    for i in range(6):
        cases.register(CLERK, **registration(title=f"早{i}"))

    async def scenario() -> list[int]:
        tail = Tail(Feed(cases), poll=0.01, keep=2)
        await tail.start()
        await register_and_follow(cases, tail, [f"晚{i}" for i in range(6)])
        assert tail.floor > 0 and len(tail.items) <= 4, "the ring kept more than it should"
        ids: list[int] = []
        frames = follow(tail, EventFilter(), 0, heartbeat=0.2)
        async with asyncio.timeout(20):
            async for chunk in frames:
                ids += [int(line[4:]) for line in chunk.decode().splitlines() if line.startswith("id: ")]
                if len(ids) >= 12:
                    break
        await frames.aclose()
        await tail.stop()
        return ids

    assert asyncio.run(scenario()) == log_positions(cases)


def test_many_subscribers_arriving_at_once_start_one_tail(cases: Cases) -> None:
    async def scenario() -> list[int]:
        tail = Tail(Feed(cases), poll=0.01)
        await asyncio.gather(*(tail.start() for _ in range(50)))
        await register_and_follow(cases, tail, [f"同时{i}" for i in range(5)])
        await asyncio.sleep(0.1)
        await tail.stop()
        return list(tail.positions)

    # Two readers would each append every event: the ring would hold them twice.
    assert asyncio.run(scenario()) == log_positions(cases)


def test_the_live_stream_shows_personal_data_only_to_readers_entitled_to_it(cases: Cases) -> None:
    async def first_frame(clear: bool) -> str:
        tail = Tail(Feed(cases), poll=0.01)
        await tail.start()
        now = tail.head
        await register_and_follow(cases, tail, ["楼顶渗水"])
        # From now: served from the ring, whose shared bodies are masked.
        frames = follow(tail, EventFilter(), now, heartbeat=0.2, clear=clear)
        async with asyncio.timeout(20):
            async for chunk in frames:
                if b"data:" in chunk:
                    break
        await frames.aclose()
        await tail.stop()
        return chunk.decode()

    assert '"phone":"138****1234"' in asyncio.run(first_frame(clear=False))
    assert '"phone":"13812341234"' in asyncio.run(first_frame(clear=True))


# --- issue 11: a stream's token, its count, erasure and readers that stop reading ------------


@pytest.fixture
def one_worker(settings: Settings) -> Iterator[str]:
    """One `minqing serve` process (one tail, one count of open streams), with small stream bounds."""
    yield from serve(settings, "--workers", "1", MINQING_STREAM_MAX_PER_TOKEN="2", MINQING_STREAM_WRITE_TIMEOUT="1")


@pytest.mark.e2e
def test_a_live_stream_ends_when_its_token_expires(one_worker: str) -> None:
    issued = time.time()
    short = TokenKeys.from_settings(Settings(**SECURITY)).issue(Role.AUDITOR, AUDITOR.id, ttl=3, now=issued)
    with (
        httpx.Client(base_url=one_worker, timeout=httpx.Timeout(10, read=5)) as http,
        http.stream(
            "GET", "/events/stream", params={"heartbeat": 0.5}, headers={"Authorization": f"Bearer {short}"}
        ) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_lines():
            if time.time() > issued + 10:
                break
    assert time.time() < issued + 3 + 2, "the stream went on after its token expired"


@pytest.mark.e2e
def test_open_streams_per_token_are_capped(one_worker: str) -> None:
    params = {"heartbeat": 1}
    with ExitStack() as held, httpx.Client(base_url=one_worker, timeout=httpx.Timeout(10, read=20)) as http:
        for _ in range(2):
            assert held.enter_context(
                http.stream("GET", "/events/stream", params=params, headers=auth(AUDITOR))
            ).is_success
        with http.stream("GET", "/events/stream", params=params, headers=auth(AUDITOR)) as third:
            assert third.status_code == 429
            assert orjson.loads(third.read())["error"]["code"] == "too_many_streams"
        with http.stream("GET", "/events/stream", params=params, headers=auth(INTEGRATOR)) as other:
            assert other.status_code == 200, "another token has streams of its own"
    # The closed streams gave their places back.
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=one_worker, timeout=httpx.Timeout(10, read=20)) as http:
        while True:
            with http.stream("GET", "/events/stream", params=params, headers=auth(AUDITOR)) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "closed streams kept their places"
            time.sleep(0.2)


@pytest.mark.e2e
def test_a_reader_that_stops_reading_is_dropped(one_worker: str, cases: Cases) -> None:
    # About 9 MB of backlog: more than the kernel's and the server's buffers take from a reader that reads nothing.
    for i in range(600):
        cases.register(CLERK, **registration(title=f"积压{i}", description="漏水" * 2500))
    url = httpx.URL(one_worker)
    params = {"heartbeat": 0.5}
    with (
        socket.socket() as stuck,
        httpx.Client(base_url=one_worker, timeout=httpx.Timeout(10, read=20), headers=auth(AUDITOR)) as http,
        http.stream("GET", "/events/stream", params=params) as filler,
    ):
        assert filler.status_code == 200
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((url.host, url.port))
        request = (
            f"GET /events/stream?after=0&heartbeat=0.5 HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n"
            f"Authorization: {auth(AUDITOR)['Authorization']}\r\n\r\n"
        )
        stuck.sendall(request.encode())
        stuck.settimeout(30)
        assert stuck.recv(12) == b"HTTP/1.1 200"  # the status line only: the stream is open, and unread
        # The token's two streams are open (the cap here is 2) until the server gives up on the one not read.
        deadline = time.monotonic() + 60
        while True:
            with http.stream("GET", "/events/stream", params=params) as probe:
                if probe.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the reader that stopped reading was never dropped"
            time.sleep(0.5)
        # Dropped: what was buffered arrives, then the connection ends.
        deadline = time.monotonic() + 20
        while stuck.recv(1 << 20):
            assert time.monotonic() < deadline, "still streaming to a reader that had stopped reading"


@pytest.mark.e2e
def test_after_an_erasure_the_live_stream_serves_what_the_log_gives(one_worker: str) -> None:
    with httpx.Client(base_url=one_worker, timeout=httpx.Timeout(10, read=20)) as http:
        # A live reader starts the tail first, so the registration is read into the ring.
        with http.stream("GET", "/events/stream", params={"heartbeat": 0.5}, headers=auth(AUDITOR)) as live:
            case_id = register(http)
            first = next(m for m in messages(live) if m is not None)
        assert first.data["data"]["petitioner"]["phone"] == "138****1234"
        history = http.get(f"/cases/{case_id}/history", headers=auth(CLERK)).json()
        person = history["events"][0]["payload"]["petitioner"]["person"]
        assert http.post(f"/persons/{person}/erase", headers=auth(ADMIN)).status_code == 200
        after = int(first.id) - 1
        logged = http.get("/events", params={"after": after, "limit": 1}, headers=auth(AUDITOR)).json()["events"][0]
    assert logged["data"]["petitioner"]["name"] == "[已删除]"
    deadline = time.monotonic() + 5
    while (served := _collect(one_worker, 1, after=after)[0].data) != logged and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served == logged
