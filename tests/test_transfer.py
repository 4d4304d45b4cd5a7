"""Reassignment (改派) and transfer (转办) through the HTTP API on SQLite and PostgreSQL:
the case changes hands with a reason, the previous holder's dwell time closes and the
new one's opens; a misrouted return (退单) stays a different thing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cases.actor import Actor
from cases.vocabulary import Role
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import (
    CLERK,
    GRID_LEADER,
    HOUSING,
    LEADER_ELSEWHERE,
    LEADER_OF_GRID,
    OTHER_TOWNSHIP,
    POLICE,
    SECOND_GRID_LEADER,
    SECOND_LEADER_OF_GRID,
    TOWNSHIP,
    URBAN,
    auth,
)

WATER = Actor("D-shuiwu-1", Role.DEPARTMENT, "shuiwu")


def send(client: TestClient, case_id: str, command: str, actor: Actor, status: int, **body: Any) -> dict:
    response = client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))
    assert response.status_code == status, response.text
    return response.json()


def test_a_case_is_reassigned_to_another_grid_leader_and_dwell_time_moves_with_it(
    driver: Driver, client: TestClient, clock: Clock
) -> None:
    case_id = driver.register()
    driver.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    driver.act(case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    clock.advance(hours=2)
    driver.act(case_id, "reassign", CLERK, assignee=SECOND_LEADER_OF_GRID, reason="周小金休假，改派曹嘉诚")
    clock.advance(hours=1)
    # The previous holder no longer holds it; the new one signs.
    assert send(client, case_id, "accept", GRID_LEADER, 409)["error"]["code"] == "not_assignee"
    driver.act(case_id, "accept", SECOND_GRID_LEADER)
    clock.advance(hours=3)
    driver.act(case_id, "reassign", TOWNSHIP, assignee=LEADER_OF_GRID, reason="周小金销假，改回")

    case = driver.get(f"/cases/{case_id}")
    assert (case["status"], case["assignee"]) == ("in_progress", LEADER_OF_GRID)
    history = driver.get(f"/cases/{case_id}/history")
    moves = [e for e in history["events"] if e["type"] == "Reassigned"]
    assert [e["label"] for e in moves] == ["改派", "改派"]
    assert [(e["actor"]["role"], e["payload"]["previous_assignee"], e["payload"]["assignee"]) for e in moves] == [
        ("intake_clerk", LEADER_OF_GRID, SECOND_LEADER_OF_GRID),
        ("township", SECOND_LEADER_OF_GRID, LEADER_OF_GRID),
    ]
    holders = {h["holder"]: h["seconds"] for h in history["dwell"]["by_holder"]}
    assert holders[f"grid_leader:{SECOND_LEADER_OF_GRID}"] == 4 * 3600  # from the first move to the second
    assert holders[f"grid_leader:{LEADER_OF_GRID}"] == 2 * 3600  # until the first move; ongoing since at 0 s
    stretches = [(s["holder"], s["status"]) for s in history["dwell"]["stretches"]]
    assert stretches[-3:] == [
        (f"grid_leader:{SECOND_LEADER_OF_GRID}", "assigned"),
        (f"grid_leader:{SECOND_LEADER_OF_GRID}", "in_progress"),
        (f"grid_leader:{LEADER_OF_GRID}", "in_progress"),
    ]

    row = driver.get("/ledger", number=case["number"])["items"][0]
    assert (row["assignee"], row["reassigned_count"], row["returned_count"]) == (LEADER_OF_GRID, 2, 0)
    feed = client.get("/events", params={"type": "Reassigned", "case": case_id}).json()["events"]
    assert [e["data"]["label"] for e in feed] == ["改派", "改派"]


def test_a_return_is_not_a_transfer(driver: Driver) -> None:
    returned = driver.register()
    driver.act(returned, "classify", CLERK, handling_type="committed", tier="small")
    driver.act(returned, "assign", CLERK, assignee=LEADER_OF_GRID)
    driver.act(returned, "return", GRID_LEADER, reason="不属于本网格")
    moved = driver.register()
    driver.act(moved, "classify", CLERK, handling_type="committed", tier="small")
    driver.act(moved, "assign", CLERK, assignee=LEADER_OF_GRID)
    driver.act(moved, "reassign", CLERK, assignee=SECOND_LEADER_OF_GRID, reason="改派")
    # 退单 sends the case back to the intake office, with nobody holding it; 改派 hands it straight on.
    assert driver.get(f"/cases/{returned}/history")["events"][-1]["holder"] == "intake"
    assert driver.get(f"/cases/{moved}/history")["events"][-1]["holder"] == f"grid_leader:{SECOND_LEADER_OF_GRID}"
    rows = {r["case_id"]: r for r in driver.get("/ledger")["items"]}
    assert (rows[returned]["status"], rows[returned]["returned_count"], rows[returned]["reassigned_count"]) == (
        "returned",
        1,
        0,
    )
    assert (rows[moved]["status"], rows[moved]["returned_count"], rows[moved]["reassigned_count"]) == (
        "assigned",
        0,
        1,
    )


def test_reassignment_is_refused_with_a_reason_a_clerk_can_act_on(driver: Driver, client: TestClient) -> None:
    case_id = driver.accepted()
    error = send(client, case_id, "reassign", CLERK, 409, assignee=LEADER_OF_GRID, reason="x")["error"]
    assert error["code"] == "same_assignee" and "其他网格长" in error["message"]
    error = send(client, case_id, "reassign", CLERK, 409, assignee=LEADER_ELSEWHERE, reason="x")["error"]
    assert error["code"] == "assignee_not_in_grid"
    error = send(client, case_id, "reassign", CLERK, 422, assignee="GL-NOBODY", reason="x")["error"]
    assert [f["field"] for f in error["fields"]] == ["assignee"] and "网格长" in error["fields"][0]["reason"]
    error = send(client, case_id, "reassign", CLERK, 422, assignee=SECOND_LEADER_OF_GRID)["error"]
    assert [f["field"] for f in error["fields"]] == ["reason"]
    assert send(client, case_id, "reassign", GRID_LEADER, 403, assignee="GL0999", reason="x")["error"]["code"] == (
        "role_not_allowed"
    )
    assert send(client, case_id, "reassign", OTHER_TOWNSHIP, 403, assignee="GL0999", reason="x")["error"]["code"] == (
        "out_of_scope"
    )
    unassigned = driver.register()
    driver.act(unassigned, "classify", CLERK, handling_type="committed", tier="small")
    error = send(client, unassigned, "reassign", CLERK, 409, assignee=SECOND_LEADER_OF_GRID, reason="x")["error"]
    assert error["code"] == "illegal_transition" and "改派" in error["message"]
    closed = driver.closed()
    error = send(client, closed, "reassign", CLERK, 409, assignee=SECOND_LEADER_OF_GRID, reason="x")["error"]
    assert error["code"] == "case_closed"
    assert driver.get(f"/cases/{case_id}")["assignee"] == LEADER_OF_GRID  # nothing written


def whistled(driver: Driver) -> str:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["zhujian", "chengguan"], reason="违建致渗水")
    driver.act(case_id, "report-in", HOUSING)
    driver.act(case_id, "consult", TOWNSHIP, outcome="住建牵头", lead_department="zhujian")
    return case_id


def test_a_department_transfers_its_part_and_the_new_one_reports_in(
    driver: Driver, client: TestClient, clock: Clock
) -> None:
    case_id = whistled(driver)
    clock.advance(hours=5)
    driver.act(case_id, "transfer", HOUSING, to_department="shuiwu", reason="渗水系供水管爆裂，属水务")
    clock.advance(hours=2)
    driver.act(case_id, "report-in", WATER)
    driver.act(case_id, "report-progress", WATER, progress="水务已到场抢修")

    case = driver.get(f"/cases/{case_id}")
    assert case["lead_department"] == "shuiwu" and case["whistles"][0]["departments"] == ["chengguan", "shuiwu"]
    # The department that handed on no longer works the case.
    assert send(client, case_id, "report-progress", HOUSING, 403, progress="x")["error"]["code"] == "out_of_scope"

    history = driver.get(f"/cases/{case_id}/history")
    transfer = next(e for e in history["events"] if e["type"] == "Transferred")
    assert transfer["label"] == "转办" and transfer["actor"]["unit"] == "zhujian"
    payload = transfer["payload"]
    assert (payload["from_department"], payload["to_department"], payload["lead"]) == ("zhujian", "shuiwu", True)
    assert transfer["holder"] == "department:shuiwu"
    holders = {h["holder"]: h["seconds"] for h in history["dwell"]["by_holder"]}
    assert holders["department:zhujian"] == 5 * 3600
    reported = next(
        e for e in history["events"] if e["type"] == "DepartmentReported" and e["actor"]["unit"] == "shuiwu"
    )
    assert reported["payload"]["seconds_to_report"] == 2 * 3600  # timed from the transfer

    row = driver.get("/ledger", number=case["number"])["items"][0]
    assert (row["lead_department"], row["transferred_count"]) == ("shuiwu", 1)
    evaluation = {d["department"]: d for d in driver.get("/departments/evaluation")["departments"]}
    assert (evaluation["shuiwu"]["whistled"], evaluation["shuiwu"]["reported_in"]) == (1, 1)
    assert evaluation["shuiwu"]["cases_led"] == 1 and evaluation["zhujian"]["cases_led"] == 0
    # The department taken in sees the case in its feed from the transfer on.
    feed = client.get("/events", params={"unit": "shuiwu", "case": case_id}).json()["events"]
    assert [e["type"].rsplit(".", 1)[1] for e in feed] == ["Transferred", "DepartmentReported", "ProgressReported"]


def test_a_transfer_is_refused_where_it_makes_no_sense(driver: Driver, client: TestClient) -> None:
    case_id = whistled(driver)
    error = send(client, case_id, "transfer", HOUSING, 409, to_department="chengguan", reason="x")["error"]
    assert error["code"] == "department_already_on_case" and "另一个职能部门" in error["message"]
    assert send(client, case_id, "transfer", HOUSING, 409, to_department="zhujian", reason="x")["error"]["code"] == (
        "department_already_on_case"
    )
    error = send(client, case_id, "transfer", HOUSING, 422, to_department="nasa", reason="x")["error"]
    assert [f["field"] for f in error["fields"]] == ["to_department"] and "未知的职能部门" in error["fields"][0][
        "reason"
    ]
    error = send(client, case_id, "transfer", HOUSING, 422, to_department="shuiwu")["error"]
    assert [f["field"] for f in error["fields"]] == ["reason"]
    assert send(client, case_id, "transfer", POLICE, 403, to_department="shuiwu", reason="x")["error"]["code"] == (
        "out_of_scope"
    )
    assert send(client, case_id, "transfer", GRID_LEADER, 403, to_department="shuiwu", reason="x")["error"]["code"] == (
        "role_not_allowed"
    )
    # chengguan is on the case but not the lead: it hands only its own part on.
    driver.act(case_id, "transfer", URBAN, to_department="shuiwu", reason="属水务")
    case = driver.get(f"/cases/{case_id}")
    assert case["lead_department"] == "zhujian" and case["whistles"][0]["departments"] == ["shuiwu", "zhujian"]
