"""Operations: migrating once, starting many processes at once, shutting down, metrics and readiness."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from commands.cases import Cases
from config.settings import Settings
from tests.conftest import PG_URL, _postgres_schema
from tests.factories import CLERK, MONITOR, SECURITY, DefaultReader, auth, registration
from tests.serving import MINQING, Server, environment, free_port


@pytest.fixture(params=["sqlite", "postgres"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A store nobody has migrated yet."""
    if request.param == "sqlite":
        yield Settings(sqlite_path=tmp_path / "minqing.sqlite3", **SECURITY)
        return
    for schema in _postgres_schema():
        yield Settings(database_url=f"{PG_URL}?schema={schema}&pool_size=2&max_overflow=2", **SECURITY)


def started_together(commands: list[list[str]], env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    outputs = [(logs / f"{i}.log").open("wb") for i in range(len(commands))]
    try:
        return [
            subprocess.Popen([*MINQING, *command], env=env, stdout=out, stderr=subprocess.STDOUT)
            for command, out in zip(commands, outputs, strict=True)
        ]
    finally:
        for out in outputs:
            out.close()


def test_migrate_started_four_times_at_once_on_an_empty_store_never_fails(
    empty_store: Settings, tmp_path: Path
) -> None:
    processes = started_together([["migrate"]] * 4, environment(empty_store), tmp_path)
    for process in processes:
        process.wait(timeout=120)
    logs = "".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
    assert [p.returncode for p in processes] == [0] * 4, logs
    # And the store is whole: a worker starts on it.
    once = subprocess.run([*MINQING, "project", "--once"], env=environment(empty_store), capture_output=True, text=True)
    assert once.returncode == 0, once.stderr


def test_a_worker_on_an_unmigrated_store_exits_saying_to_run_migrate(empty_store: Settings) -> None:
    for command in (["project"], ["deliver"]):
        result = subprocess.run(
            [*MINQING, *command], env=environment(empty_store), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert "数据库尚未建表" in result.stderr and "run `minqing migrate` first" in result.stderr, result.stderr


def test_eight_workers_started_at_the_same_instant_after_one_migrate_never_fail(
    empty_store: Settings, tmp_path: Path
) -> None:
    """The fresh-clone CI failure: two `minqing project` started together died with
    `tuple concurrently updated` while each created the tables."""
    rounds = 3 if empty_store.database_url else 1  # the catalog race is PostgreSQL's
    for round_no in range(rounds):
        if round_no:  # a new empty store each round
            empty_store = _fresh(empty_store, tmp_path / f"round{round_no}")
        env = environment(empty_store)
        assert subprocess.run([*MINQING, "migrate"], env=env, capture_output=True, timeout=120).returncode == 0
        ports = [free_port(), free_port()]
        commands = [
            *[["project"]] * 3,
            *[["deliver", "--concurrency", "2"]] * 3,
            *[["serve", "--port", str(port)] for port in ports],
        ]
        logs = tmp_path / f"logs{round_no}"
        logs.mkdir()
        processes = started_together(commands, env, logs)
        try:
            deadline = time.monotonic() + 90
            while not all(_ready(c, logs / f"{i}.log") for i, c in enumerate(commands)):
                assert time.monotonic() < deadline, _output(logs)
                assert all(p.poll() is None for p in processes), _output(logs)
                time.sleep(0.3)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
        # uvicorn ends by re-raising the SIGTERM it was stopped with.
        assert all(p.returncode in (0, -15) for p in processes), _output(logs)
        assert "Traceback" not in _output(logs), _output(logs)


def _ready(command: list[str], log: Path) -> bool:
    if command[0] == "serve":
        return _healthy(int(command[2]))
    return ("projection_worker_started" if command[0] == "project" else "webhook_worker_started") in log.read_text()


def _output(logs: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(logs.glob("*.log")))


def _fresh(settings: Settings, folder: Path) -> Settings:
    if settings.database_url is None:
        folder.mkdir()
        return Settings(sqlite_path=folder / "minqing.sqlite3", **SECURITY)
    import psycopg

    schema = settings.database_url.split("schema=")[1].split("&")[0]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return settings


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_chatty_server_never_stalls_on_its_own_output(server: str) -> None:
    """Every request writes a log line; a pipe nobody reads fills at 64 KiB and the server stalls."""
    with httpx.Client(base_url=server, timeout=10) as client:
        for _ in range(600):
            assert client.get("/healthz").status_code == 200


def test_a_connected_sse_client_does_not_hold_the_server_on_sigterm(settings: Settings) -> None:
    """It used to wait at "Waiting for connections to close" for as long as the client stayed."""
    with Server(settings, "--workers", "2") as server:
        opened = threading.Event()
        ended: list[str] = []

        def listen() -> None:
            try:
                with (
                    httpx.Client(
                        base_url=server.base, timeout=httpx.Timeout(10, read=60), auth=DefaultReader()
                    ) as http,
                    http.stream("GET", "/events/stream", params={"heartbeat": 60}) as response,
                ):
                    for _ in response.iter_lines():
                        opened.set()
                ended.append("closed by the server")
            except httpx.HTTPError as e:
                ended.append(repr(e))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert opened.wait(30), server.output()
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        # Held by the stream, it would wait for the client's 60 s heartbeat; a worker still starting
        # on a loaded machine can take several seconds to stop, so the bound is well under 60, not tight.
        assert time.monotonic() - started < 20, server.output()
        listener.join(10)
        assert ended == ["closed by the server"], server.output()
        # uvicorn's own lines (started, shutting down) are JSON like ours: one process, one format.
        lines = [line for line in server.output().splitlines() if line.startswith("{")]
        assert any(orjson.loads(line).get("logger", "").startswith("uvicorn") for line in lines), server.output()
        assert not [line for line in server.output().splitlines() if line.startswith("INFO:")], server.output()


def test_every_stream_event_has_data_for_an_httpx_sse_consumer(server: str, cases: Cases) -> None:
    """The stream opened with a lone `retry:` frame, which httpx-sse yields as an event with empty data."""
    for _ in range(2):
        cases.register(CLERK, **registration())
    with (
        httpx.Client(base_url=server, timeout=httpx.Timeout(10, read=20), auth=DefaultReader()) as http,
        connect_sse(http, "GET", "/events/stream", params={"after": 0}) as source,
    ):
        seen = []
        for sse in source.iter_sse():
            assert sse.data, f"an event with empty data after {seen}"
            seen.append(orjson.loads(sse.data)["sequence"])
            if len(seen) == 2:
                break
        assert source.response.headers["content-type"].startswith("text/event-stream")


def test_metrics_count_requests_commands_streams_and_projections(client: TestClient) -> None:
    created = client.post("/cases", json=registration(), headers=auth(CLERK))
    assert created.status_code == 201
    assert client.get("/ledger", params={"wait_for": created.json()["position"]}).status_code == 200
    assert client.get("/metrics").status_code == 403  # an auditor's token: not for metrics
    scrape = client.get("/metrics", headers=auth(MONITOR))
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert 'minqing_http_requests_total{method="POST",route="/cases",status="201"} 1.0' in text
    assert 'minqing_http_requests_total{method="GET",route="/ledger",status="200"} 1.0' in text
    assert 'minqing_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/ledger"} 1.0' in text
    assert 'minqing_commands_total{command="register",outcome="accepted"} 1.0' in text
    assert "minqing_sse_streams_open 0.0" in text
    head = re.search(r"^minqing_log_head_position (\S+)$", text, re.M)
    assert head and float(head.group(1)) >= created.json()["position"]
    assert 'minqing_projection_lag_events{projection="ledger"} 0.0' in text
    assert 'minqing_webhook_subscriptions{state="dead_letter"} 0.0' in text


def test_readiness_reports_lag_and_answers_503_past_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = client.post("/cases", json=registration(), headers=auth(CLERK)).json()
    client.get("/ledger", params={"wait_for": created["position"]})
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["projections"]["ledger"]["lag"] == 0 and body["dead_letters"] == 0
    read_side = client.app.state.read_side  # type: ignore[attr-defined]
    read_side.stop_in_process()
    for _ in range(3):
        client.post("/cases", json=registration(), headers=auth(CLERK))
    monkeypatch.setenv("MINQING_READY_MAX_LAG", "2")
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json()["error"]["code"] == "projection_behind" and behind.json()["projections"]["ledger"]["lag"] >= 3


def test_database_connections_cut_mid_load_lose_no_acknowledged_command(settings: Settings) -> None:
    """PostgreSQL restarted under load, simulated without restarting the shared server: every
    backend of this test's server is terminated while commands are being sent."""
    if settings.database_url is None:
        pytest.skip("SQLite has no server connections to cut")  # the same suite covers SQLite elsewhere
    app_name = f"minqing-{uuid.uuid4().hex[:12]}"
    acknowledged: list[str] = []
    refused: list[dict] = []
    stop = threading.Event()
    with Server(settings, "--workers", "2", PGAPPNAME=app_name) as server:

        def send() -> None:
            with httpx.Client(base_url=server.base, timeout=30, headers=auth(CLERK)) as http:
                while not stop.is_set():
                    answer = http.post("/cases", json=registration())
                    if answer.status_code == 201:
                        acknowledged.append(answer.json()["case_id"])
                    else:
                        assert answer.status_code == 503, answer.text
                        refused.append(answer.json())

        senders = [threading.Thread(target=send) for _ in range(3)]
        for sender in senders:
            sender.start()
        try:
            while len(acknowledged) < 10:
                time.sleep(0.05)
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for _ in range(3):
                    cut = conn.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                        (app_name,),
                    ).fetchone()
                    assert cut and cut[0] > 0
                    time.sleep(0.3)
            before = len(acknowledged)
            deadline = time.monotonic() + 30
            while len(acknowledged) < before + 10:
                assert time.monotonic() < deadline, f"no recovery: {refused[-3:]}"
                time.sleep(0.05)
        finally:
            stop.set()
            for sender in senders:
                sender.join(30)
        assert all(r["error"]["code"] == "database_unavailable" for r in refused), refused
        with httpx.Client(base_url=server.base, timeout=30, auth=DefaultReader()) as http:
            for case_id in acknowledged:
                # A pool finds an idle connection dead when it next uses it: a clean 503, then it reconnects.
                for _ in range(5):
                    read = http.get(f"/cases/{case_id}")
                    if read.status_code != 503:
                        break
                    assert read.json()["error"]["code"] == "database_unavailable"
                    time.sleep(float(read.headers["Retry-After"]))
                assert read.status_code == 200, case_id
