"""Webhooks through a real HTTP receiver: every event, in order per case, signed,
retried past failures, dead-lettered and resumed, and a worker that restarts."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from commands.cases import Cases
from commands.settings import Settings
from service import create_app
from streams.cloudevents import CASE_TOPICS
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import CLERK, DefaultReader, registration
from tests.receiver import Received, receiving, signature_valid
from tests.serving import MINQING, environment

QUICK = (0.05, 0.1, 0.1)  # retry schedule for tests: three retries, then dead_letter


@pytest.fixture
def quick(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """The embedded service, delivering in-process with a fast retry schedule."""
    # The receivers are on 127.0.0.1: allowed here, as an operator allows a local relay.
    app = create_app(replace(settings, webhook_backoff=QUICK, webhook_allow_local=True), log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        app.state.cases.clock = clock
        yield client


def case_events(cases: Cases) -> list[tuple[int, str]]:
    return [(n.id, str(n.originator_id)) for n in cases.recorder.select_notifications(1, 100_000, topics=CASE_TOPICS)]


def subscribe(client: TestClient, url: str, **body: object) -> dict:
    response = client.post("/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    return response.json()


def assert_in_order_per_case(received: list[Received]) -> None:
    versions: dict[str, int] = {}
    for r in received:
        event = r.event
        assert event["caseversion"] > versions.get(event["subject"], 0), "out of order for its case"
        versions[event["subject"]] = event["caseversion"]


def test_receiver_that_fails_first_gets_every_event_in_order_signed(quick: TestClient, cases: Cases) -> None:
    driver = Driver(quick)
    with receiving(lambda attempt: 503 if attempt <= 3 else 200) as receiver:
        hook = subscribe(quick, receiver.url, after=0, description="12345 平台")
        assert hook["secret"].startswith("whsec_") and hook["status"] == "active"
        driver.closed()
        driver.accepted()
        expected = case_events(cases)
        receiver.wait_for(len(expected))
    assert receiver.refused == 3
    ids = [r.headers["webhook-id"] for r in receiver.accepted]
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    assert [int(r.event["sequence"]) for r in receiver.accepted] == [p for p, _ in expected]
    assert_in_order_per_case(receiver.accepted)
    assert all(signature_valid(hook["secret"], r) for r in receiver.accepted)
    assert not signature_valid("whsec_" + "A" * 44, receiver.accepted[0])
    log = quick.get(f"/webhooks/{hook['id']}/deliveries", params={"limit": 1000}).json()["items"]
    outcomes = [d["outcome"] for d in reversed(log)]
    assert outcomes[:4] == ["failed", "failed", "failed", "delivered"]
    assert outcomes.count("delivered") == len(expected)
    state = quick.get(f"/webhooks/{hook['id']}").json()
    assert (state["position"], state["delivered"], state["attempts"]) == (expected[-1][0], len(expected), 0)
    assert "secret" not in state and "secret" not in quick.get("/webhooks").json()["items"][0]


def test_dead_letter_after_repeated_failure_then_resume_loses_nothing(quick: TestClient, cases: Cases) -> None:
    healthy = False
    with receiving(lambda _: 200 if healthy else 500) as receiver:
        hook = subscribe(quick, receiver.url, after=0)
        Driver(quick).register()
        deadline = time.monotonic() + 20
        while quick.get(f"/webhooks/{hook['id']}").json()["status"] != "dead_letter":
            assert time.monotonic() < deadline, "never dead-lettered"
            time.sleep(0.05)
        state = quick.get(f"/webhooks/{hook['id']}").json()
        assert state["attempts"] == len(QUICK) + 1 and state["position"] == 0 and "HTTP 500" in state["last_error"]
        time.sleep(0.3)
        assert receiver.refused == len(QUICK) + 1, "a dead-lettered subscription must wait for an operator"
        healthy = True
        assert quick.post(f"/webhooks/{hook['id']}/resume").json()["status"] == "active"
        receiver.wait_for(len(case_events(cases)))
    assert [int(r.event["sequence"]) for r in receiver.accepted] == [p for p, _ in case_events(cases)]


def test_filters_pause_resume_from_a_position_and_delete(quick: TestClient, cases: Cases) -> None:
    driver = Driver(quick)
    with receiving() as receiver:
        hook = subscribe(quick, receiver.url, types=["Registered"], after=0)
        first = driver.accepted()
        receiver.wait_for(1)
        assert quick.post(f"/webhooks/{hook['id']}/pause").json()["status"] == "paused"
        driver.register(title="暂停期间登记")
        time.sleep(0.5)
        assert len(receiver.accepted) == 1
        # Replay from the start: the first registration again, then the new one.
        quick.post(f"/webhooks/{hook['id']}/resume", json={"after": 0})
        deadline = time.monotonic() + 10
        while len(receiver.accepted) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    titles = [r.event["data"]["title"] for r in receiver.accepted]
    assert titles == ["楼顶渗水", "楼顶渗水", "暂停期间登记"]
    assert receiver.accepted[0].event["subject"] == f"cases/{first}"
    assert quick.delete(f"/webhooks/{hook['id']}").status_code == 204
    gone = quick.get(f"/webhooks/{hook['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "subscription_not_found"
    assert quick.post(f"/webhooks/{hook['id']}/pause").status_code == 404


def test_subscription_input_is_validated(quick: TestClient) -> None:
    for body, field in [
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.org/x", "after": -1}, "after"),
        ({"url": "https://example.org/x", "colour": "red"}, "colour"),
    ]:
        response = quick.post("/webhooks", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["fields"][0]["field"] == field
    unknown_type = quick.post("/webhooks", json={"url": "https://example.org/x", "types": ["Teleported"]})
    assert unknown_type.status_code == 422 and unknown_type.json()["error"]["fields"][0]["field"] == "type"
    assert quick.get("/webhooks").json()["items"] == []


@pytest.mark.e2e
def test_the_delivery_worker_survives_a_kill_without_losing_its_place(
    settings: Settings, cases: Cases, tmp_path
) -> None:
    from projections.store import open_views
    from streams.feed import EventFilter
    from streams.webhooks import Webhooks

    for i in range(30):
        cases.register(CLERK, **registration(title=f"第{i}件"))
    expected = [p for p, _ in case_events(cases)]
    views = open_views(settings)
    slow = {"delay": 0.05}

    def answer(_: int) -> int:
        time.sleep(slow["delay"])
        return 200

    try:
        with receiving(answer) as receiver:
            hook = Webhooks(views).create(receiver.url, EventFilter(), 0)
            env = {**environment(settings), "MINQING_WEBHOOK_BACKOFF": "0.05", "MINQING_WEBHOOK_LEASE": "1"}
            worker = subprocess.Popen(
                [*MINQING, "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            receiver.wait_for(10)
            worker.kill()  # no goodbye: the lease simply runs out
            worker.wait(timeout=10)
            halfway = len(receiver.accepted)
            assert halfway < len(expected)
            slow["delay"] = 0
            time.sleep(1.2)  # the dead worker's lease runs out; a new worker takes the subscription
            result = subprocess.run(
                [*MINQING, "deliver", "--once"], env=env, capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, result.stderr
    finally:
        views.close()
    positions = [int(r.event["sequence"]) for r in receiver.accepted]
    assert sorted(set(positions)) == expected
    # At least once: at most the one message in flight at the kill comes twice, never out of order after it.
    assert len(positions) - len(set(positions)) <= 1
    assert hook["id"] and halfway >= 10


def test_secret_rotation_signs_with_both_secrets_until_the_overlap_ends(quick: TestClient) -> None:
    driver = Driver(quick)
    with receiving() as receiver:
        hook = subscribe(quick, receiver.url, types=["Registered"])
        driver.register(title="轮换前")
        receiver.wait_for(1)
        rotated = quick.post(f"/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 1})
        assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
        driver.register(title="重叠期")
        receiver.wait_for(2)
        # Overlap 0: the old secret stops signing at once.
        final = quick.post(f"/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 0}).json()
        driver.register(title="轮换后")
        receiver.wait_for(3)
    before, during, after = receiver.accepted
    assert signature_valid(hook["secret"], before) and not signature_valid(rotated.json()["secret"], before)
    assert signature_valid(hook["secret"], during) and signature_valid(rotated.json()["secret"], during)
    assert signature_valid(final["secret"], after)
    assert not signature_valid(rotated.json()["secret"], after) and not signature_valid(hook["secret"], after)
    assert "secret" not in quick.get(f"/webhooks/{hook['id']}").json()
    assert quick.post(f"/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 500}).status_code == 422


def test_old_delivery_log_entries_are_pruned(quick: TestClient) -> None:
    from datetime import UTC, datetime, timedelta

    with receiving() as receiver:
        hook = subscribe(quick, receiver.url, after=0)
        Driver(quick).register()
        receiver.wait_for(1)
    webhooks = quick.app.state.webhooks
    assert webhooks.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert len(quick.get(f"/webhooks/{hook['id']}/deliveries").json()["items"]) == 1
    assert webhooks.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert quick.get(f"/webhooks/{hook['id']}/deliveries").json()["items"] == []


def test_production_refuses_webhooks_to_the_host_itself(settings: Settings, clock: Clock) -> None:
    app = create_app(replace(settings, webhook_allow_local=False), log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        for url in ("http://127.0.0.1:9000/h", "http://localhost/h", "http://169.254.169.254/latest/meta-data"):
            refused = client.post("/webhooks", json={"url": url})
            assert refused.status_code == 422, url
            assert refused.json()["error"]["fields"][0]["field"] == "url"
        # A government intranet address is an ordinary receiver.
        assert client.post("/webhooks", json={"url": "http://10.20.30.40/hooks"}).status_code == 201
        assert len(client.get("/webhooks").json()["items"]) == 1
