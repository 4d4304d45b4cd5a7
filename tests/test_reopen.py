"""Second handling (不满意重办) through the HTTP API on SQLite and PostgreSQL: a dissatisfied
rating or a failed follow-up call reopens a closed case with fresh 13710 deadlines; the
history, the feed, the ledger, the board and the three rates show it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import CLERK, GRID_LEADER, RESIDENT, SUPERVISOR, auth
from tests.test_workbench import HTML, sign_in


def refused(client: TestClient, case_id: str, command: str, actor, status: int, **body) -> dict:  # type: ignore[no-untyped-def]
    response = client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))
    assert response.status_code == status, response.text
    return response.json()["error"]


def handled_again(driver: Driver, case_id: str, satisfaction: str = "satisfied") -> None:
    driver.act(case_id, "accept", GRID_LEADER)
    driver.act(case_id, "rectify", GRID_LEADER, summary="重新修复")
    driver.act(case_id, "verify", RESIDENT, passed=True)
    driver.act(case_id, "close", GRID_LEADER, summary="重办后销号")
    driver.act(case_id, "rate", RESIDENT, satisfaction=satisfaction)


def test_a_dissatisfied_case_is_reopened_with_fresh_deadlines_and_handled_again(
    driver: Driver, client: TestClient, clock: Clock
) -> None:
    case_id = driver.closed("dissatisfied")
    before = driver.get(f"/cases/{case_id}")
    clock.advance(days=10)  # Thursday 2026-03-12, 09:00 in China
    driver.act(case_id, "reopen", CLERK, reason="居民反映仍然漏水，评议不满意")

    case = driver.get(f"/cases/{case_id}")
    assert case["number"] == before["number"] and case["status"] == "assigned"
    assert case["assignee"] == GRID_LEADER.id and case["reopened_count"] == 1 and case["rating"] is None
    # 13710 counted again from the day of reopening, not from registration.
    assert {k: d["due"] for k, d in case["deadlines"].items()} == {
        "accept": "2026-03-13",
        "progress": "2026-03-17",
        "resolve": "2026-03-23",
    }
    assert before["deadlines"]["resolve"]["due"] == "2026-03-11"

    history = driver.get(f"/cases/{case_id}/history")
    reopened = history["events"][-1]
    assert (reopened["type"], reopened["label"], reopened["status_label"]) == ("Reopened", "不满意重办", "已派单")
    assert reopened["actor"]["id"] == CLERK.id
    assert reopened["payload"]["grounds"] == "dissatisfied" and reopened["payload"]["reopen_no"] == 1
    assert [e["type"] for e in history["events"]][:2] == ["Registered", "Classified"]  # history kept

    feed = client.get("/events", params={"type": "Reopened", "case": case_id}).json()["events"]
    assert len(feed) == 1 and feed[0]["type"].endswith(".Reopened") and feed[0]["data"]["label"] == "不满意重办"

    row = driver.get("/ledger", number=case["number"])["items"][0]
    round_facts = (row["reopened_count"], row["status"], row["closed_date"], row["accepted_date"])
    assert round_facts == (1, "assigned", None, None)
    assert row["rating"] == "dissatisfied"  # the last rating given stands until the resident rates again
    assert row["accept_due"] == "2026-03-13" and row["reopened_at"].startswith("2026-03-12T01:00")

    # The board lights the reopened case on its fresh deadlines: yellow the day it came back…
    board = driver.get("/board", as_of="2026-03-12")
    listed = next(c for c in board["cases"] if c["case_id"] == case_id)
    assert listed["colour"] == "yellow" and listed["reopened_count"] == 1 and board["reopened"] == 1
    assert board["units"][0]["reopened"] == 1
    # …red once the fresh accept limit passed unsigned.
    later = driver.get("/board", as_of="2026-03-16")["cases"]
    assert next(c for c in later if c["case_id"] == case_id)["colour"] == "red"

    handled_again(driver, case_id)
    row = driver.get("/ledger", number=case["number"])["items"][0]
    assert (row["status"], row["rating"], row["reopened_count"]) == ("closed", "satisfied", 1)


def test_the_case_page_shows_the_reopening_in_chinese_and_offers_it(driver: Driver, client: TestClient) -> None:
    case_id = driver.closed("dissatisfied")
    sign_in(client, CLERK)
    page = client.get(f"/workbench/cases/{case_id}", headers=HTML)
    assert page.status_code == 200 and "/reopen" in page.text and "回访" in page.text
    driver.act(case_id, "reopen", CLERK, reason="居民不满意，要求重办")
    page = client.get(f"/workbench/cases/{case_id}", headers=HTML)
    assert "不满意重办" in page.text and "评议不满意" in page.text and "居民不满意，要求重办" in page.text
    assert "第 1 次重办" in page.text
    board = client.get("/workbench", params={"wait_for": driver.position}, headers=HTML)
    assert board.status_code == 200 and "重办×1" in board.text and "重办件" in board.text


def test_a_failed_follow_up_call_lets_supervision_reopen(driver: Driver, client: TestClient) -> None:
    case_id = driver.closed("satisfied")
    # Refused: the resident rated the handling satisfied.
    error = refused(client, case_id, "reopen", SUPERVISOR, 409, reason="督查抽查")
    assert error["code"] == "reopen_not_warranted" and "满意" in error["message"]

    unrated = driver.accepted()
    driver.act(unrated, "rectify", GRID_LEADER, summary="已修复")
    driver.act(unrated, "verify", RESIDENT, passed=True)
    driver.act(unrated, "close", GRID_LEADER, summary="销号")
    error = refused(client, unrated, "reopen", SUPERVISOR, 409, reason="督查抽查")
    assert error["code"] == "reopen_not_warranted" and "回访" in error["message"]
    # An unanswered call is no ground; a call that hears "not solved" is.
    driver.act(unrated, "follow-up", CLERK, reached=False, resolved=False, note="电话无人接听")
    assert refused(client, unrated, "reopen", SUPERVISOR, 409, reason="x")["code"] == "reopen_not_warranted"
    driver.act(unrated, "follow-up", CLERK, reached=True, resolved=False, note="居民说楼顶仍在渗水")
    driver.act(unrated, "reopen", SUPERVISOR, reason="回访未解决，督查室要求重办")

    history = driver.get(f"/cases/{unrated}/history")
    labels = [e["label"] for e in history["events"][-3:]]
    assert labels == ["回访", "回访", "不满意重办"]
    assert history["events"][-1]["payload"]["grounds"] == "follow_up"
    assert history["events"][-1]["actor"]["role"] == "supervision"
    row = driver.get("/ledger", status="assigned")["items"][0]
    assert row["case_id"] == unrated and row["reopened_count"] == 1 and row["follow_up_at"] is None

    # A second round ends, and a second dissatisfied rating reopens it a second time.
    handled_again(driver, unrated, "dissatisfied")
    driver.act(unrated, "reopen", CLERK, reason="第二次不满意")
    assert driver.get(f"/cases/{unrated}")["reopened_count"] == 2
    assert driver.get("/ledger", status="assigned")["items"][0]["reopened_count"] == 2


def test_reopen_and_follow_up_are_refused_where_they_do_not_apply(driver: Driver, client: TestClient) -> None:
    open_case = driver.accepted()
    error = refused(client, open_case, "reopen", CLERK, 409, reason="试一试")
    assert error["code"] == "illegal_transition" and "办理中" in error["message"] and "重办" in error["message"]
    assert refused(client, open_case, "follow-up", CLERK, 409, resolved=False, note="x")["code"] == "illegal_transition"

    closed = driver.closed("dissatisfied")
    assert refused(client, closed, "reopen", GRID_LEADER, 403, reason="想重办")["code"] == "role_not_allowed"
    fields = refused(client, closed, "reopen", CLERK, 422)["fields"]
    assert [f["field"] for f in fields] == ["reason"]
    fields = refused(client, closed, "follow-up", CLERK, 422, note="x")["fields"]
    assert [f["field"] for f in fields] == ["resolved"]
    error = refused(client, closed, "follow-up", CLERK, 409, reached=False, resolved=True, note="x")
    assert error["code"] == "illegal_transition" and "已解决" in error["message"]
    version = driver.get(f"/cases/{closed}")["version"]
    assert driver.get(f"/cases/{closed}")["version"] == version  # nothing half-written


def test_the_resolution_rate_does_not_count_a_reopened_case_as_resolved(driver: Driver) -> None:
    """The worked numbers of docs/read-models.md (三率 and second handling)."""
    driver.closed("satisfied")  # A: first check passed, never reopened: resolved
    driver.closed("satisfied", fail_first=True)  # B: needed rework: not resolved (the older rule)
    c = driver.closed("dissatisfied")  # C: reopened, handled again, then satisfied
    driver.act(c, "reopen", CLERK, reason="不满意重办")
    handled_again(driver, c)
    d = driver.closed("dissatisfied")  # D: reopened, not yet handled again
    driver.act(d, "reopen", CLERK, reason="不满意重办")
    driver.accepted()  # E: still open, never rated

    group = driver.get("/scores", by="street")["groups"][0]
    counts = group["counts"]
    # D waits to be signed for again: the response rate judges each case's current round.
    assert (counts["received"], counts["dispatched"], counts["responded"]) == (5, 5, 4)
    assert (counts["callbacks"], counts["resolved"], counts["reopened"], counts["reopens"]) == (4, 1, 2, 2)
    assert (counts["satisfied"], counts["dissatisfied"], counts["closed"]) == (3, 1, 3)
    assert (group["response_rate"], group["resolution_rate"], group["satisfaction_rate"]) == (0.8, 0.25, 0.75)
    assert group["composite_score"] == pytest.approx(59.0)  # 100 × (0.30·0.8 + 0.35·0.25 + 0.35·0.75)


def test_the_demo_district_shows_reopened_transferred_and_decided_cases(client: TestClient, clock: Clock) -> None:
    from demo.stories import load_demo

    cases = client.app.state.cases  # type: ignore[attr-defined]
    summary = load_demo(cases, 120, now=clock.now)
    assert (summary["reopened"], summary["reassigned"], summary["transferred"], summary["requests_decided"]) == (
        3,
        1,
        1,
        4,
    )
    for runner in client.app.state.read_side.runners:  # type: ignore[attr-defined]
        runner.wait(cases.recorder.max_notification_id(), timeout=60)

    counts = client.get("/scores", params={"by": "district"}).json()["groups"][0]["counts"]
    assert counts["reopened"] == counts["reopens"] == 3
    yearly = client.get("/reports/yearly", params={"period": str(clock.now.year)}).json()
    last_year = client.get("/reports/yearly", params={"period": str(clock.now.year - 1)}).json()
    assert yearly["figures"]["reopened"] + last_year["figures"]["reopened"] == 3
    board = client.get("/board", params={"limit": 1000}).json()
    assert board["reopened"] == 1  # the recent one, handled again on fresh deadlines
    assert [c["reopened_count"] for c in board["cases"] if c["reopened_count"]] == [1]

    def of_type(name: str) -> list[dict]:
        return client.get("/events", params={"type": name, "limit": 1000}).json()["events"]

    assert len(of_type("Reopened")) == 3 and len(of_type("FollowUpCalled")) == 2
    assert len(of_type("Reassigned")) == 1 and len(of_type("Transferred")) == 1
    decisions = [e["data"]["approved"] for e in of_type("RequestDecided")]
    assert sorted(decisions) == [False, False, True, True]
    assert len(of_type("ExtensionRequested")) == 2 and len(of_type("ReturnRequested")) == 2


def test_a_webhook_subscribed_to_reopenings_receives_them_signed(settings: Settings, clock: Clock) -> None:
    from tests.receiver import receiving, signature_valid
    from tests.test_webhooks import delivering, subscribe

    for client in delivering(settings, clock, allow_local=True):
        driver = Driver(client)
        with receiving() as receiver:
            hook = subscribe(client, receiver.url, types=["Reopened", "FollowUpCalled"], after=0)
            case_id = driver.closed("dissatisfied")
            driver.act(case_id, "follow-up", CLERK, reached=True, resolved=False, note="居民说仍漏水")
            driver.act(case_id, "reopen", CLERK, reason="不满意重办")
            receiver.wait_for(2)
        events = [r.event for r in receiver.accepted]
        assert [e["type"].rsplit(".", 1)[1] for e in events] == ["FollowUpCalled", "Reopened"]
        assert events[1]["data"]["label"] == "不满意重办" and events[1]["data"]["actor"]["id"] == CLERK.id
        assert events[1]["data"]["deadlines"]["accept"]["due"] == "2026-03-03"
        assert all(signature_valid(hook["secret"], r) for r in receiver.accepted)
