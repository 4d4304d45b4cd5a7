"""Approvals (审批) of extensions (延期) and returns (退单) through the HTTP API on SQLite
and PostgreSQL: a request moves nothing until the township or the supervision office
approves it; the policy says which roles still decide alone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from reference.model import DEFAULT_POLICY
from service import create_app
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import (
    CLERK,
    GRID_LEADER,
    LEADER_OF_GRID,
    OTHER_TOWNSHIP,
    SECOND_LEADER_OF_GRID,
    SUPERVISOR,
    TOWNSHIP,
    DefaultReader,
    auth,
)
from tests.test_workbench import HTML, sign_in


def send(client: TestClient, case_id: str, command: str, actor: Actor, status: int, **body: Any) -> dict:
    response = client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def strict(settings: Settings, clock: Clock, tmp_path: Path) -> Iterator[Driver]:
    """An office where only supervision extends alone and nobody returns a case alone."""
    policy = json.loads(DEFAULT_POLICY.read_text())
    policy["versions"][0]["approvals"] = {
        "extend": {"decide_alone": ["supervision"]},
        "return_case": {"decide_alone": []},
    }
    path = tmp_path / "strict-policy.json"
    path.write_text(json.dumps(policy, ensure_ascii=False))
    app = create_app(dataclasses.replace(settings, policy_path=path), log_cache=False)
    with TestClient(app) as client:
        app.state.cases.clock = clock
        client.auth = DefaultReader()
        yield Driver(client)


def test_an_extension_request_moves_the_deadline_only_once_approved(driver: Driver, client: TestClient) -> None:
    case_id = driver.accepted()
    due = driver.get(f"/cases/{case_id}")["deadlines"]["resolve"]["due"]
    assert due == "2026-03-11"
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-20", reason="需等配件到货")

    case = driver.get(f"/cases/{case_id}")
    assert case["deadlines"]["resolve"]["due"] == due  # not before approval
    assert [(r["no"], r["kind"], r["state"], r["new_due"]) for r in case["requests"]] == [
        (1, "extension", "pending", "2026-03-20")
    ]
    row = driver.get("/ledger", number=case["number"])["items"][0]
    assert (row["resolve_due"], row["pending_requests"], row["extended_count"]) == (due, 1, 0)
    error = send(client, case_id, "request-extension", GRID_LEADER, 409, new_due="2026-03-25", reason="再延")["error"]
    assert error["code"] == "request_pending" and "第 1 号延期申请" in error["message"]

    sign_in(client, TOWNSHIP)
    page = client.get(f"/workbench/cases/{case_id}", headers=HTML).text
    assert "第 1 号延期申请（延至 2026-03-20）：需等配件到货" in page and "/decide-request" in page
    driver.act(case_id, "decide-request", TOWNSHIP, request_no=1, approved=True, reason="情况属实，同意延期")
    case = driver.get(f"/cases/{case_id}")
    assert case["deadlines"]["resolve"]["due"] == "2026-03-20" and case["requests"][0]["state"] == "approved"
    history = driver.get(f"/cases/{case_id}/history")["events"]
    assert [(e["label"], e["actor"]["role"]) for e in history[-3:]] == [
        ("延期申请", "grid_leader"),
        ("审批", "township"),
        ("延期", "township"),
    ]
    assert history[-2]["payload"] == {
        "request_no": 1,
        "kind": "extension",
        "approved": True,
        "reason": "情况属实，同意延期",
    }
    row = driver.get("/ledger", number=case["number"])["items"][0]
    assert (row["resolve_due"], row["pending_requests"], row["approved_requests"], row["extended_count"]) == (
        "2026-03-20",
        0,
        1,
        1,
    )
    feed = client.get("/events", params={"case": case_id, "type": "RequestDecided"}).json()["events"]
    assert [e["data"]["label"] for e in feed] == ["审批"]
    assert send(client, case_id, "decide-request", TOWNSHIP, 409, request_no=1, approved=False, reason="x")["error"][
        "code"
    ] == ("request_already_decided")


def test_an_office_that_requires_approval_refuses_the_direct_path(strict: Driver, clock: Clock) -> None:
    client = strict.client
    case_id = strict.accepted()
    error = send(client, case_id, "extend", TOWNSHIP, 409, new_due="2026-03-20", reason="x")["error"]
    assert error["code"] == "approval_required" and "申请" in error["message"]
    strict.act(case_id, "extend", SUPERVISOR, new_due="2026-03-13", reason="督查室决定延期")  # alone, as configured
    assert strict.get(f"/cases/{case_id}")["deadlines"]["resolve"]["due"] == "2026-03-13"

    returning = strict.register()
    strict.act(returning, "classify", CLERK, handling_type="committed", tier="small")
    strict.act(returning, "assign", CLERK, assignee=LEADER_OF_GRID)
    assert (
        send(client, returning, "return", GRID_LEADER, 409, reason="不属于我")["error"]["code"] == "approval_required"
    )
    strict.act(returning, "request-return", GRID_LEADER, reason="地址在隔壁网格")
    case = strict.get(f"/cases/{returning}")
    assert (case["status"], case["assignee"]) == ("assigned", LEADER_OF_GRID)  # stays assigned until approved
    strict.act(returning, "decide-request", SUPERVISOR, request_no=1, approved=False, reason="地址核实无误，请继续办理")
    case = strict.get(f"/cases/{returning}")
    assert (case["status"], case["requests"][0]["state"]) == ("assigned", "refused")

    strict.act(returning, "request-return", GRID_LEADER, reason="补充材料：门牌属第2网格")
    strict.act(returning, "decide-request", TOWNSHIP, request_no=2, approved=True, reason="核实属实，同意退单")
    case = strict.get(f"/cases/{returning}")
    assert (case["status"], case["assignee"]) == ("returned", None)
    events = strict.get(f"/cases/{returning}/history")["events"]
    assert [e["type"] for e in events[-2:]] == ["RequestDecided", "Returned"]
    assert events[-1]["payload"]["reason"] == "补充材料：门牌属第2网格" and events[-1]["holder"] == "intake"
    row = strict.get("/ledger", number=case["number"])["items"][0]
    assert (row["returned_count"], row["approved_requests"], row["refused_requests"]) == (1, 1, 1)


def test_a_decision_is_refused_when_the_request_no_longer_fits(driver: Driver, client: TestClient) -> None:
    case_id = driver.accepted()
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-16", reason="需等配件")
    driver.act(case_id, "extend", SUPERVISOR, new_due="2026-03-20", reason="督查室已直接延期")
    error = send(client, case_id, "decide-request", TOWNSHIP, 409, request_no=1, approved=True, reason="同意")["error"]
    assert error["code"] == "deadline_not_later" and "驳回" in error["message"]
    assert send(client, case_id, "decide-request", TOWNSHIP, 409, request_no=2, approved=True, reason="x")["error"][
        "code"
    ] == ("request_not_found")
    error = send(client, case_id, "request-extension", GRID_LEADER, 409, new_due="2026-03-18", reason="x")["error"]
    assert error["code"] == "request_pending"

    returning = driver.register()
    driver.act(returning, "classify", CLERK, handling_type="committed", tier="small")
    driver.act(returning, "assign", CLERK, assignee=LEADER_OF_GRID)
    driver.act(returning, "request-return", GRID_LEADER, reason="不属于我")
    driver.act(returning, "reassign", CLERK, assignee=SECOND_LEADER_OF_GRID, reason="直接改派")
    error = send(client, returning, "decide-request", TOWNSHIP, 409, request_no=1, approved=True, reason="同意")[
        "error"
    ]
    assert error["code"] == "request_outdated"
    assert driver.get(f"/cases/{returning}")["assignee"] == SECOND_LEADER_OF_GRID  # nothing written


def test_requests_and_decisions_check_who_sends_them_and_what_they_carry(driver: Driver, client: TestClient) -> None:
    case_id = driver.accepted()
    error = send(client, case_id, "request-extension", GRID_LEADER, 409, new_due="2026-03-05", reason="x")["error"]
    assert error["code"] == "deadline_not_later"
    fields = send(client, case_id, "request-extension", GRID_LEADER, 422, new_due="明天", reason="x")["error"]["fields"]
    assert [f["field"] for f in fields] == ["new_due"]
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-20", reason="需等配件")
    body = {"request_no": 1, "approved": True, "reason": "同意"}
    assert send(client, case_id, "decide-request", GRID_LEADER, 403, **body)["error"]["code"] == "role_not_allowed"
    assert send(client, case_id, "decide-request", OTHER_TOWNSHIP, 403, **body)["error"]["code"] == "out_of_scope"
    fields = send(client, case_id, "decide-request", TOWNSHIP, 422, request_no=0, approved=True)["error"]["fields"]
    assert sorted(f["field"] for f in fields) == ["reason", "request_no"]
    fields = send(client, case_id, "decide-request", TOWNSHIP, 422, request_no=1, reason="x")["error"]["fields"]
    assert [f["field"] for f in fields] == ["approved"]
    assert send(client, case_id, "request-return", GRID_LEADER, 409, reason="x")["error"]["code"] == (
        "illegal_transition"
    )
    assert driver.get(f"/cases/{case_id}")["requests"][0]["state"] == "pending"  # nothing written


def test_replaying_the_log_rebuilds_the_same_ledger_with_every_new_event(
    driver: Driver, clock: Clock, settings: Settings
) -> None:
    from replay.rebuild import rebuild

    reopened = driver.closed("dissatisfied")
    driver.act(reopened, "follow-up", CLERK, reached=True, resolved=False, note="仍漏水")
    clock.advance(days=10)
    driver.act(reopened, "reopen", CLERK, reason="不满意重办")
    driver.act(reopened, "reassign", CLERK, assignee=SECOND_LEADER_OF_GRID, reason="改派")
    asked = driver.accepted(tier="big")
    driver.act(asked, "whistle", TOWNSHIP, departments=["zhujian"], reason="违建")
    driver.act(
        asked, "transfer", Actor("D-zhujian-1", Role.DEPARTMENT, "zhujian"), to_department="shuiwu", reason="属水务"
    )
    driver.act(asked, "request-extension", GRID_LEADER, new_due="2026-05-20", reason="需等配件")
    driver.act(asked, "decide-request", SUPERVISOR, request_no=1, approved=True, reason="同意")
    clock.advance(days=1)
    # A reopened case's limits run from its reopening: recomputing them finds nothing to move.
    assert send(driver.client, reopened, "recompute-deadlines", CLERK, 200)["changed"] is False
    app = driver.client.app.state  # type: ignore[attr-defined]
    driver.get("/ledger")
    before = app.read_side.views.query("SELECT * FROM ledger_cases ORDER BY case_id")
    whistles = app.read_side.views.query("SELECT * FROM ledger_whistles ORDER BY case_id, whistle_no, department")
    outcome, _ = rebuild(app.cases, settings, app.read_side.views, "ledger")
    assert outcome.swapped and outcome.equal is True, outcome
    assert app.read_side.views.query("SELECT * FROM ledger_cases ORDER BY case_id") == before
    assert [w["department"] for w in whistles] == ["shuiwu", "zhujian"]
    row = next(r for r in before if r["case_id"] == reopened)
    assert (row["reopened_count"], row["reassigned_count"], row["assignee"]) == (1, 1, SECOND_LEADER_OF_GRID)


def test_a_request_pending_when_the_case_closes_lapses_on_reopening(driver: Driver, client: TestClient) -> None:
    case_id = driver.accepted()
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-20", reason="需等配件")
    driver.act(case_id, "rectify", GRID_LEADER, summary="已修复")
    driver.act(case_id, "verify", CLERK, passed=True)
    driver.act(case_id, "close", GRID_LEADER, summary="销号")
    driver.act(case_id, "rate", CLERK, satisfaction="dissatisfied")
    driver.act(case_id, "reopen", CLERK, reason="不满意重办")
    assert driver.get(f"/cases/{case_id}")["requests"][0]["state"] == "lapsed"
    error = send(client, case_id, "decide-request", TOWNSHIP, 409, request_no=1, approved=True, reason="同意")["error"]
    assert error["code"] == "request_already_decided" and "失效" in error["message"]
    number = driver.get(f"/cases/{case_id}")["number"]
    assert driver.get("/ledger", number=number)["items"][0]["pending_requests"] == 0
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-20", reason="重办需等配件")
    assert [r["state"] for r in driver.get(f"/cases/{case_id}")["requests"]] == ["lapsed", "pending"]


def test_the_township_decides_a_request_from_the_workbench_form(driver: Driver, client: TestClient) -> None:
    from tests.test_workbench import csrf

    case_id = driver.accepted()
    driver.act(case_id, "request-extension", GRID_LEADER, new_due="2026-03-20", reason="需等配件")
    version = driver.get(f"/cases/{case_id}")["version"]
    sign_in(client, TOWNSHIP)
    page = f"/workbench/cases/{case_id}"
    form = {"request_no": "1", "approved": "false", "reason": "请按原时限办结", "csrf": csrf(client, page)}
    done = client.post(f"{page}/decide-request", data={**form, "version": str(version)}, headers=HTML)
    assert done.status_code == 200 and "已审批申请" in done.text
    last = client.get(f"/cases/{case_id}/history").json()["events"][-1]
    assert (last["type"], last["label"], last["actor"]["role"]) == ("RequestDecided", "审批", "township")
    assert last["payload"]["approved"] is False
    bad = client.post(f"{page}/decide-request", data={**form, "request_no": "零"}, headers=HTML)
    assert bad.status_code == 422 and "申请编号" in bad.text
