"""A case's history, dwell times and its state at a past version or moment,
through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from cases.case import Case
from replay.history import EVENT_LABELS
from tests.api_steps import Driver, accepted, act, register
from tests.conftest import Clock
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID


def test_every_case_event_has_a_chinese_label() -> None:
    # The library's generic Event and Created are bases, never stored as such.
    classes = {n for n, v in vars(Case).items() if isinstance(v, type) and issubclass(v, Case.Event)}
    assert classes - {"Event", "Created"} == set(EVENT_LABELS)


def test_history_lists_every_event_in_order_with_positions_labels_and_actors(client: TestClient, clock: Clock) -> None:
    case_id = register(client)
    clock.advance(hours=1)
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
    clock.advance(hours=2)
    act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    clock.advance(minutes=30)
    act(client, case_id, "accept", GRID_LEADER)
    clock.advance(hours=4)

    body = client.get(f"/cases/{case_id}/history").json()
    events = body["events"]
    assert [e["type"] for e in events] == ["Registered", "Classified", "Assigned", "Accepted"]
    assert [e["label"] for e in events] == ["登记", "分类定时限", "派单", "签收"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert events[2]["actor"]["id"] == CLERK.id and events[3]["actor"]["id"] == GRID_LEADER.id
    assert events[2]["payload"]["assignee"] == LEADER_OF_GRID
    # The petitioner is masked wherever a history is shown.
    assert events[0]["payload"]["petitioner"]["phone"] == "138****1234"
    assert events[0]["payload"]["petitioner"]["name"] == "张**"
    assert events[-1]["holder"] == f"grid_leader:{LEADER_OF_GRID}"

    dwell = body["dwell"]
    by_status = {d["status"]: d["seconds"] for d in dwell["by_status"]}
    assert by_status == {"registered": 3600, "classified": 7200, "assigned": 1800, "in_progress": 4 * 3600}
    by_holder = {d["holder"]: d["seconds"] for d in dwell["by_holder"]}
    assert by_holder == {"intake": 3 * 3600, f"grid_leader:{LEADER_OF_GRID}": 1800 + 4 * 3600}
    assert dwell["stretches"][-1]["ongoing"] is True


def test_history_of_an_unknown_case_is_404(client: TestClient) -> None:
    response = client.get("/cases/00000000-0000-4000-8000-000000000000/history")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "case_not_found"


def test_a_case_as_it_stood_at_a_version_or_a_moment(client: TestClient, clock: Clock) -> None:
    registered_at = clock.now
    case_id = accepted(client)  # registered, classified, assigned, accepted at the same instant
    clock.advance(days=1)
    act(client, case_id, "report-progress", GRID_LEADER, progress="已联系物业")

    at_two = client.get(f"/cases/{case_id}", params={"version": 2})
    assert at_two.status_code == 200
    assert at_two.json()["status"] == "classified" and at_two.headers["ETag"] == '"2"'

    before_progress = client.get(f"/cases/{case_id}", params={"as_of": (clock.now - timedelta(hours=1)).isoformat()})
    assert before_progress.json()["status"] == "in_progress"
    assert before_progress.json()["progress_reports"] == 0 and before_progress.json()["version"] == 4
    now = client.get(f"/cases/{case_id}", params={"as_of": clock.now.isoformat()}).json()
    assert now["progress_reports"] == 1

    # A time without a zone is China time: 08:59 local is before the 09:00 registration.
    naive = (registered_at + timedelta(hours=8) - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    assert client.get(f"/cases/{case_id}", params={"as_of": naive}).status_code == 404


def test_as_of_and_version_are_validated(client: TestClient) -> None:
    case_id = register(client)
    both = client.get(f"/cases/{case_id}", params={"version": 1, "as_of": "2026-03-02T10:00:00+08:00"})
    assert both.status_code == 422 and both.json()["error"]["fields"][0]["field"] == "as_of"
    assert client.get(f"/cases/{case_id}", params={"version": 0}).status_code == 422
    assert client.get(f"/cases/{case_id}", params={"as_of": "yesterday"}).status_code == 422
    assert client.get(f"/cases/{case_id}", params={"version": 9}).status_code == 404


def test_the_board_as_it_stood_at_a_past_moment(driver: Driver, clock: Clock) -> None:
    late = driver.register(title="逾期未签收")
    driver.act(late, "classify", CLERK, handling_type="committed", tier="small")
    clock.advance(days=3)  # Thursday 09:00: `late` missed its accept limit (Tuesday)
    thursday_morning = clock.now
    clock.advance(hours=2)
    driver.act(late, "assign", CLERK, assignee=LEADER_OF_GRID)
    driver.act(late, "accept", GRID_LEADER)
    driver.act(late, "report-progress", GRID_LEADER, progress="已联系物业")
    newer = driver.register(title="周四新登记")
    driver.act(newer, "classify", CLERK, handling_type="committed", tier="small")

    live = driver.get("/board")
    assert {c["case_id"] for c in live["cases"]} == {late, newer}
    then = driver.get("/board", at=thursday_morning.isoformat())
    assert [c["case_id"] for c in then["cases"]] == [late]  # `newer` did not exist yet
    was = then["cases"][0]
    assert was["status"] == "classified" and was["colour"] == "red"
    assert then["at"] == thursday_morning.isoformat() and then["replayed_events"] == 2
    # Before the first limit passed, the same case was not red.
    monday = driver.get("/board", at=(thursday_morning - timedelta(days=3)).isoformat())
    assert monday["totals"]["red"] == 0 and monday["totals"]["cases"] == 1


def test_the_board_at_a_moment_is_validated(client: TestClient, clock: Clock) -> None:
    future = (clock.now + timedelta(days=1)).isoformat()
    response = client.get("/board", params={"at": future})
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "at"
    both = client.get("/board", params={"at": clock.now.isoformat(), "as_of": "2026-03-02"})
    assert both.status_code == 422
