"""Webhooks through a real HTTP receiver: every event, in order per case, signed,
retried past failures, dead-lettered and resumed, and a worker that restarts."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cases.actor import Actor
from cases.vocabulary import Role
from commands.cases import Cases
from config.settings import Settings
from service import create_app, migrate
from streams.cloudevents import CASE_TOPICS
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import ADMIN, CLERK, INTEGRATOR, DefaultReader, auth, registration
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
    from storage.views import open_views
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
            hook = Webhooks(views).create(receiver.url, EventFilter(), 0, owner=INTEGRATOR.id)
            env = {
                **environment(settings),
                "MINQING_WEBHOOK_BACKOFF": "0.05",
                "MINQING_WEBHOOK_LEASE": "1",
                "MINQING_WEBHOOK_ALLOW_LOCAL": "y",  # the receiver is on 127.0.0.1
            }
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


# --- issue 11: address policy, ownership, caps ---------------------------------------------

OTHER_INTEGRATOR = Actor("IN002", Role.INTEGRATOR)


@pytest.fixture
def production(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Production's address policy (no local receivers), delivering in-process with quick retries."""
    app = create_app(replace(settings, webhook_backoff=QUICK, webhook_allow_local=False), log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        app.state.cases.clock = clock
        yield client


def wait_for_attempt(client: TestClient, hook_id: str) -> dict:
    deadline = time.monotonic() + 20
    while not (log := client.get(f"/webhooks/{hook_id}/deliveries").json()["items"]):
        assert time.monotonic() < deadline, "no delivery attempt"
        time.sleep(0.05)
    return log[-1]


def test_production_refuses_every_spelling_of_the_host_itself_and_cloud_metadata(production: TestClient) -> None:
    with receiving() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        for url in (
            f"http://[::1]:{port}/hooks",
            f"http://[0:0:0:0:0:0:0:1]:{port}/hooks",
            f"http://[::ffff:127.0.0.1]:{port}/hooks",  # IPv4-mapped
            f"http://[::]:{port}/hooks",
            f"http://0.0.0.0:{port}/hooks",
            f"http://[64:ff9b::7f00:1]:{port}/hooks",  # NAT64 of 127.0.0.1
            f"http://[2002:7f00:1::]:{port}/hooks",  # 6to4 of 127.0.0.1
            "http://[::ffff:169.254.169.254]/latest/meta-data",
            "http://[fe80::1]/hooks",
            "http://100.100.100.200/latest/meta-data",  # Alibaba Cloud metadata
            "http://[fd00:ec2::254]/latest/meta-data",  # AWS metadata over IPv6
            "http://no-such-host.invalid/hooks",  # a failed lookup is not a pass
        ):
            refused = production.post("/webhooks", json={"url": url, "after": 0})
            assert refused.status_code == 422, url
            assert refused.json()["error"]["fields"][0]["field"] == "url"
        Driver(production).register()
        time.sleep(0.5)
    assert production.get("/webhooks").json()["items"] == []
    assert receiver.attempts == 0


def test_a_name_that_turns_into_loopback_at_delivery_is_refused_then(
    production: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the name answers with a public address when checked, with loopback when delivered to.
    real = socket.getaddrinfo
    answer = {"hooks.rebind.test": "93.184.215.14"}

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        return real(answer.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with receiving() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        hook = subscribe(production, f"http://hooks.rebind.test:{port}/hooks")
        answer["hooks.rebind.test"] = "127.0.0.1"
        Driver(production).register()
        attempt = wait_for_attempt(production, hook["id"])
    assert receiver.attempts == 0, "the event was POSTed to the host itself"
    assert attempt["outcome"] == "failed" and attempt["status_code"] is None
    assert "已拒绝" in attempt["error"]
    assert production.get(f"/webhooks/{hook['id']}").json()["last_error"] == attempt["error"]


def test_the_receivers_answer_is_never_recorded(quick: TestClient) -> None:
    page = b"<html>intranet admin: root password hunter2</html>"
    with receiving(lambda _: (500, page)) as receiver:
        hook = subscribe(quick, receiver.url)
        Driver(quick).register()
        attempt = wait_for_attempt(quick, hook["id"])
        last_error = quick.get(f"/webhooks/{hook['id']}").json()["last_error"]
    assert receiver.refused >= 1
    for recorded in (attempt["error"], last_error):
        assert recorded.startswith("HTTP 500") and "hunter2" not in recorded and "intranet" not in recorded


def test_an_integrator_sees_and_manages_only_its_own_subscriptions(client: TestClient) -> None:
    theirs = client.post(
        "/webhooks",
        json={"url": "http://10.20.30.40/hooks", "description": "含个人信息"},
        headers=auth(OTHER_INTEGRATOR, grants=("pii",)),
    )
    assert theirs.status_code == 201 and theirs.json()["personal"] and theirs.json()["owner"] == "IN002"
    hook = theirs.json()["id"]
    mine = subscribe(client, "http://10.20.30.41/hooks")
    assert mine["owner"] == INTEGRATOR.id
    # IN001 cannot tell IN002's subscription from one that does not exist.
    assert [h["id"] for h in client.get("/webhooks").json()["items"]] == [mine["id"]]
    for method, path in [
        ("GET", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("GET", "/deliveries"),
        ("DELETE", ""),
    ]:
        answer = client.request(method, f"/webhooks/{hook}{path}")
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"]["code"] == "subscription_not_found"
    assert "secret" not in client.get(f"/webhooks/{mine['id']}").json()
    # Its owner still has it, untouched; the operator sees and manages every subscription.
    assert client.get(f"/webhooks/{hook}", headers=auth(OTHER_INTEGRATOR)).json()["status"] == "active"
    everything = client.get("/webhooks", headers=auth(ADMIN)).json()["items"]
    assert {(h["id"], h["owner"]) for h in everything} == {(hook, "IN002"), (mine["id"], "IN001")}
    rotated = client.post(f"/webhooks/{hook}/rotate-secret", headers=auth(ADMIN))
    assert rotated.status_code == 200 and rotated.json()["secret"] != theirs.json()["secret"]


def test_subscriptions_per_owner_are_capped_also_in_a_burst(settings: Settings, clock: Clock) -> None:
    app = create_app(replace(settings, webhook_max_per_owner=3), log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        made = [subscribe(client, f"http://10.20.30.{i}/hooks") for i in range(3)]
        over = client.post("/webhooks", json={"url": "http://10.20.30.9/hooks"})
        assert over.status_code == 409 and over.json()["error"]["code"] == "subscription_limit"
        assert "MINQING_WEBHOOK_MAX_PER_OWNER" in over.json()["error"]["message"]
        # Deleting one makes room; another owner has a cap of its own.
        assert client.delete(f"/webhooks/{made[0]['id']}").status_code == 204
        subscribe(client, "http://10.20.30.10/hooks")
        burst = Actor("IN003", Role.INTEGRATOR)

        def create(i: int) -> int:
            url = f"http://10.20.31.{i}/hooks"
            return client.post("/webhooks", json={"url": url}, headers=auth(burst)).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(create, range(12)))
        assert statuses == [201] * 3 + [409] * 9
        assert len(client.get("/webhooks", headers=auth(burst)).json()["items"]) == 3


def test_a_slow_receiver_does_not_delay_another(settings: Settings, clock: Clock) -> None:
    app = create_app(
        replace(settings, webhook_backoff=QUICK, webhook_allow_local=True, webhook_max_per_owner=50), log_cache=False
    )

    def slow(_: int) -> int:
        time.sleep(1.0)
        return 200

    with TestClient(app) as client, receiving(slow) as tarpit, receiving() as fast:
        client.auth = DefaultReader()
        for _ in range(16):
            subscribe(client, tarpit.url)
        subscribe(client, fast.url)
        registered = time.monotonic()
        Driver(client).register()
        fast.wait_for(1, timeout=30)
        waited = time.monotonic() - registered
    assert waited < 2.5, f"the fast receiver waited {waited:.1f} s behind the slow one"


def test_subscriptions_from_before_owners_belong_to_the_operator(settings: Settings, clock: Clock) -> None:
    from storage.views import open_views

    views = open_views(settings)
    try:
        with views.transaction() as cur:
            # The table as it shipped before subscriptions had owners (the fixture migrated the current one).
            cur.execute("DROP TABLE webhook_subscriptions")
            cur.execute(
                "CREATE TABLE webhook_subscriptions ("
                "id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, description TEXT, "
                "types TEXT NOT NULL, unit TEXT, case_id TEXT, status TEXT NOT NULL, position BIGINT NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION, last_error TEXT, "
                "delivered BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_until DOUBLE PRECISION, "
                "created_at TEXT NOT NULL, deleted_at TEXT, personal INTEGER NOT NULL DEFAULT 0, "
                "previous_secret TEXT, previous_until DOUBLE PRECISION)"
            )
            cur.execute(
                "INSERT INTO webhook_subscriptions (id, url, secret, types, status, position, created_at) "
                "VALUES ('00000000-0000-4000-8000-000000000001', 'http://10.20.30.40/old', 'whsec_x', '', "
                "'paused', 0, '2026-01-01T00:00:00+00:00')"
            )
    finally:
        views.close()
    migrate(settings)  # `minqing migrate` after the upgrade adds the columns
    app = create_app(settings, log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        old = "00000000-0000-4000-8000-000000000001"
        assert client.get("/webhooks").json()["items"] == []
        assert client.get(f"/webhooks/{old}").status_code == 404
        seen = client.get(f"/webhooks/{old}", headers=auth(ADMIN))
        assert seen.status_code == 200 and seen.json()["owner"] is None
        assert client.post(f"/webhooks/{old}/resume", headers=auth(ADMIN)).json()["status"] == "active"
        assert subscribe(client, "http://10.20.30.41/new")["owner"] == INTEGRATOR.id
