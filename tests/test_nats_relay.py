"""`minqing relay-nats` against the real NATS server (127.0.0.1:4222, JetStream on; CI has it).

Each test uses a stream and subject of its own and deletes the stream at the end."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast
from uuid import UUID

import nats
import pytest
from nats.js.errors import NotFoundError

from cases.actor import Actor
from cases.case import Case
from cases.vocabulary import HandlingType, Role, Tier
from commands.cases import Cases
from config.settings import Settings
from security.erasure import erase_person
from storage.views import PostgresViews, SqliteViews, open_views
from streams.cloudevents import encode
from streams.feed import EventFilter, Feed
from streams.nats_relay import MSG_ID, NatsRelay, RelayTarget
from tests.factories import CLERK, registration
from tests.serving import MINQING, environment

NATS_URL = os.environ.get("MINQING_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("MINQING_REQUIRE_NATS", "") not in ("", "0", "n", "no")
ADMIN = Actor("AD001", Role.ADMIN)


def _nats_up() -> bool:
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def target() -> Iterator[RelayTarget]:
    if not _nats_up():
        if REQUIRE_NATS:
            pytest.fail(f"NATS is required but unreachable at {NATS_URL}")
        pytest.skip(f"NATS unreachable at {NATS_URL}")
    name = f"TEST_{uuid.uuid4().hex[:12].upper()}"
    yield RelayTarget(NATS_URL, name, f"test.{name.lower()}")
    asyncio.run(_delete_stream(name))


async def _delete_stream(name: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    except NotFoundError:
        pass
    finally:
        await nc.close()


async def _stream(target: RelayTarget) -> list[Any]:
    """Every message the stream holds, in stream order."""
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(target.stream)
        if not info.state.last_seq:
            return []
        return [await js.get_msg(target.stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


def stream_messages(target: RelayTarget) -> list[Any]:
    return asyncio.run(_stream(target))


def feed_events(cases: Cases) -> list[dict[str, Any]]:
    page = Feed(cases).page(EventFilter(), 0, 100_000)
    assert not page.more
    return page.events


def relay_all(cases: Cases, views: SqliteViews | PostgresViews, target: RelayTarget) -> NatsRelay:
    """A relay in this process, run to the head of the log."""
    relay = NatsRelay(Feed(cases), views, target, batch=7)  # small pages: several commits per run

    async def run() -> None:
        await relay.connect()
        try:
            while await relay.run_once():
                pass
        finally:
            await relay.close()

    asyncio.run(run())
    return relay


def some_history(cases: Cases, count: int) -> list[UUID]:
    ids = [UUID(cases.register(CLERK, **registration(title=f"第{i}件")).case_id) for i in range(count)]
    for case_id in ids[::2]:
        cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
    return ids


def assert_stream_is_the_feed(target: RelayTarget, cases: Cases) -> None:
    messages = stream_messages(target)
    events = feed_events(cases)
    assert [m.headers[MSG_ID] for m in messages] == [str(int(e["sequence"])) for e in events]
    assert [m.data for m in messages] == [encode(e) for e in events]  # the feed's very bytes
    assert [m.subject for m in messages] == [target.subject_of(e) for e in events]


@pytest.fixture
def views(settings: Settings) -> Iterator[SqliteViews | PostgresViews]:
    store = open_views(settings)
    yield store
    store.close()


def test_every_event_arrives_in_order_exactly_as_the_feed_gives_it(
    cases: Cases, views: SqliteViews | PostgresViews, target: RelayTarget
) -> None:
    erased = UUID(
        cases.register(CLERK, **registration(petitioner_name="李建国", petitioner_phone="13900001111")).case_id
    )
    some_history(cases, 11)
    # An erased petitioner: the relay publishes what the feed now gives (erased marks), nothing in clear.
    first = cases.recorder.select_events(erased, limit=1)[0]
    person = cast(Case.Registered, cases.mapper.to_domain_event(first)).petitioner["person"]
    erase_person(cases, views, person, by=ADMIN)

    relay = relay_all(cases, views, target)

    assert_stream_is_the_feed(target, cases)
    messages = stream_messages(target)
    assert len(messages) == relay.published == 1 + 11 + 6
    for clear in ("13812341234", "张秀英", "13900001111", "李建国", "1111"):
        assert all(clear.encode() not in m.data for m in messages)
    assert "[已删除]".encode() in messages[0].data
    assert b"1234" in messages[1].data  # masked, as the feed gives it (138****1234)
    assert views.query("SELECT position FROM relay_positions WHERE name = ?", [target.stream])[0]["position"] == (
        Feed(cases).head()
    )


def test_a_relay_resumes_from_its_stored_position(
    cases: Cases, views: SqliteViews | PostgresViews, target: RelayTarget
) -> None:
    some_history(cases, 5)
    first = relay_all(cases, views, target)
    some_history(cases, 4)
    second = relay_all(cases, views, target)

    assert (first.published, second.published, second.duplicates) == (5 + 3, 4 + 2, 0)
    assert_stream_is_the_feed(target, cases)


def test_a_crash_between_the_ack_and_the_commit_publishes_nothing_twice(
    cases: Cases, views: SqliteViews | PostgresViews, target: RelayTarget
) -> None:
    some_history(cases, 6)
    relay_all(cases, views, target)
    # The crash: JetStream acked everything, the row kept an older position.
    with views.transaction() as cur:
        cur.execute("UPDATE relay_positions SET position = 2, lease_owner = NULL, lease_until = NULL")

    again = relay_all(cases, views, target)

    assert again.published == 0  # resumed after the stream's last message, not after the row
    assert_stream_is_the_feed(target, cases)
    # And a message sent twice (a lost ack, two relays racing) is dropped by its Msg-Id.
    resend = NatsRelay(Feed(cases), views, target)

    async def publish_again(event: dict[str, Any]) -> None:
        await resend.connect()
        try:
            await resend._publish(event)
        finally:
            await resend.close()

    asyncio.run(publish_again(feed_events(cases)[3]))
    assert resend.duplicates == 1
    assert_stream_is_the_feed(target, cases)


def test_one_relay_is_active_the_other_stands_by(
    cases: Cases, views: SqliteViews | PostgresViews, target: RelayTarget
) -> None:
    some_history(cases, 3)
    active, standby = NatsRelay(Feed(cases), views, target), NatsRelay(Feed(cases), views, target)

    async def run() -> tuple[int, int]:
        await active.connect()
        await standby.connect()
        try:
            return await active.run_once(), await standby.run_once()
        finally:
            await active.close()
            await standby.close()

    assert asyncio.run(run()) == (3 + 2, 0)
    assert standby.position is None


@pytest.mark.e2e
def test_a_relay_killed_mid_way_leaves_no_gap_and_no_duplicate(
    settings: Settings, cases: Cases, target: RelayTarget
) -> None:
    some_history(cases, 10)
    env = {
        **environment(settings),
        "MINQING_NATS_URL": target.url,
        "MINQING_NATS_STREAM": target.stream,
        "MINQING_NATS_SUBJECT": target.subject,
    }
    relay = subprocess.Popen([*MINQING, "relay-nats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    writing = threading.Event()
    writing.set()

    def write() -> None:  # the log keeps growing while the relay runs, and after it dies
        while writing.is_set():
            some_history(cases, 2)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_published(target)) < 20:
            time.sleep(0.05)
        relay.kill()  # no goodbye: no commit, no lease released
        relay.wait(timeout=10)
        time.sleep(0.3)
    finally:
        relay.kill()  # never left running, whatever failed above
        relay.wait(timeout=10)
        writing.clear()
        writer.join()
    halfway = len(_published(target))
    assert 20 <= halfway < len(feed_events(cases))

    # The killed relay's lease would run out in 30 s and a new relay take over: that time, passed.
    store = open_views(settings)
    try:
        with store.transaction() as cur:
            cur.execute("UPDATE relay_positions SET lease_until = 0 WHERE name = ?", [target.stream])
    finally:
        store.close()
    result = subprocess.run([*MINQING, "relay-nats", "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert_stream_is_the_feed(target, cases)


def _published(target: RelayTarget) -> list[Any]:
    try:
        return stream_messages(target)
    except NotFoundError:
        return []
