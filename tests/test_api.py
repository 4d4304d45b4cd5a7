"""Every command through the HTTP API (the ASGI app with its lifespan), on
SQLite and PostgreSQL: the answers, the headers and the error contract."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from cases.actor import Actor
from tests.api_steps import accepted, act, position, register
from tests.conftest import Clock
from tests.factories import (
    CLERK,
    GRID_LEADER,
    HOUSING,
    LEADER,
    LEADER_OF_GRID,
    OTHER_STREET_GRID,
    POLICE,
    RESIDENT,
    SECOND_GRID_LEADER,
    SECOND_LEADER_OF_GRID,
    SUPERVISOR,
    TOWNSHIP,
    URBAN,
    actor_json,
    auth,
    registration,
)


def test_a_whistled_case_from_registration_to_rating(client: TestClient, clock: Clock) -> None:
    case_id = register(client)
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="big")
    act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    act(client, case_id, "accept", GRID_LEADER)
    act(client, case_id, "report-progress", GRID_LEADER, progress="已现场查看，确认为违章搭建所致")
    act(client, case_id, "whistle", TOWNSHIP, departments=["zhujian", "chengguan", "gongan"], reason="违建致楼顶渗水")
    clock.advance(hours=2)
    for department in (HOUSING, URBAN, POLICE):
        act(client, case_id, "report-in", department)
    act(client, case_id, "consult", TOWNSHIP, outcome="住建牵头，城管、派出所配合拆违", lead_department="zhujian")
    act(
        client,
        case_id,
        "plan-rectification",
        HOUSING,
        measures="拆除违建，修复防水层",
        responsible_unit="区住建局",
        responsible_person="王建国",
        deadline="2026-03-20",
    )
    act(client, case_id, "extend", TOWNSHIP, new_due="2026-04-30", reason="防水工程需晴天施工")
    clock.advance(days=5)
    act(client, case_id, "rectify", HOUSING, summary="违建已拆除")
    act(client, case_id, "verify", RESIDENT, passed=False, reason="下雨仍有渗水")
    act(client, case_id, "rectify", HOUSING, summary="重做防水层")
    act(client, case_id, "verify", RESIDENT, passed=True)
    act(client, case_id, "close", GRID_LEADER, summary="整改达标、居民检验通过")
    act(client, case_id, "feedback", GRID_LEADER, method="home_visit", content="上门答复整改结果")
    result = act(client, case_id, "rate", RESIDENT, satisfaction="satisfied", comment="很满意")

    response = client.get(f"/cases/{case_id}")
    case = response.json()
    assert response.headers["etag"] == f'"{case["version"]}"' == f'"{result["version"]}"'
    assert case["status"] == "closed" and case["status_label"] == "已销号"
    assert case["rating"] == "satisfied" and case["lead_department"] == "zhujian"
    assert case["deadlines"]["resolve"]["due"] == "2026-04-30"
    assert sorted(case["whistles"][0]["reported"]) == ["chengguan", "gongan", "zhujian"]
    assert [v["passed"] for v in case["verifications"]] == [False, True]


def test_a_returned_case_is_reassigned(client: TestClient) -> None:
    case_id = register(client)
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
    act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    act(client, case_id, "return", GRID_LEADER, reason="地址在隔壁楼栋，不属于我")
    act(client, case_id, "accept", GRID_LEADER, expect=409)
    act(client, case_id, "assign", CLERK, assignee=SECOND_LEADER_OF_GRID)
    act(client, case_id, "accept", SECOND_GRID_LEADER)
    assert client.get(f"/cases/{case_id}").json()["assignee"] == SECOND_LEADER_OF_GRID


def test_a_leader_takes_a_hard_case_and_supervision_chases_it(client: TestClient) -> None:
    case_id = accepted(client, tier="hard")
    act(client, case_id, "take-lead", LEADER)
    act(
        client, case_id, "supervise", SUPERVISOR, responsible_unit="罗星街道", new_due="2026-03-09", notice="请加快办理"
    )
    case = client.get(f"/cases/{case_id}").json()
    assert case["leaders"] == ["LD001"] and case["supervision_notices"][0]["responsible_unit"] == "罗星街道"


def test_a_suggestion_closes_when_adopted(client: TestClient) -> None:
    case_id = accepted(client, tier="small", handling_type="suggestion")
    act(client, case_id, "close", GRID_LEADER, summary="建议设立爱心驿站", suggestion_outcome="adopted")
    assert client.get(f"/cases/{case_id}").json()["suggestion_outcome"] == "adopted"


def test_recompute_deadlines_reports_no_change_within_a_known_year(client: TestClient) -> None:
    case_id = accepted(client)
    assert act(client, case_id, "recompute-deadlines", CLERK)["changed"] is False


def test_every_command_of_the_lifecycle_has_a_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    commands = {p.rsplit("/", 1)[-1] for p in paths if p.startswith("/cases/{case_id}/")}
    assert commands >= {
        "classify", "assign", "return", "accept", "report-progress", "whistle", "report-in", "consult",
        "take-lead", "plan-rectification", "extend", "rectify", "verify", "close", "feedback", "rate", "supervise",
    }  # fmt: skip
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"petitioner_phone": "12345"}, "petitioner_phone"),
        ({"title": ""}, "title"),
        ({"title": "长" * 201}, "title"),
        ({"channel": "传真"}, "channel"),
        ({"grid": "nowhere"}, "grid"),
        ({"category": "ufo"}, "category"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_registration_input_is_a_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    before = position(client)
    response = client.post("/cases", json={**registration(), **body}, headers=auth(CLERK))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] in ("validation_failed", "invalid_reference")
    assert field in [f["field"] for f in error["fields"]] and all(f["reason"] for f in error["fields"])
    assert position(client) == before


def test_malformed_requests_are_422_not_500(client: TestClient) -> None:
    case_id = register(client)
    assert client.post("/cases", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/cases/not-a-uuid/accept", json={}, headers=auth(GRID_LEADER)).status_code == 422
    assert client.post(f"/cases/{case_id}/classify", json={"tier": "medium"}, headers=auth(CLERK)).status_code == 422
    emperor = {"actor": {"id": "x", "role": "emperor"}}
    assert client.post(f"/cases/{case_id}/rate", json=emperor, headers=auth(CLERK)).status_code == 422
    bad_version = client.post(
        f"/cases/{case_id}/classify",
        json={"handling_type": "committed", "tier": "small"},
        headers={"If-Match": "yesterday", **auth(CLERK)},
    )
    assert bad_version.status_code == 422 and bad_version.json()["error"]["fields"][0]["field"] == "If-Match"


def test_an_unknown_case_is_404(client: TestClient) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/cases/{unknown}").json()["error"]["code"] == "case_not_found"
    response = client.post(f"/cases/{unknown}/accept", json={}, headers=auth(GRID_LEADER))
    assert response.status_code == 404


def test_a_broken_rule_is_409_with_a_stable_code_and_nothing_is_stored(client: TestClient) -> None:
    case_id = register(client)
    before = position(client)
    error = act(client, case_id, "close", CLERK, expect=409, summary="")["error"]
    assert error["code"] == "verification_required" and "居民检验" in error["message"]
    assert position(client) == before


def test_a_role_that_may_not_act_is_403(client: TestClient) -> None:
    case_id = accepted(client)
    error = act(client, case_id, "whistle", GRID_LEADER, expect=403, departments=["zhujian"], reason="r")["error"]
    assert error["code"] == "role_not_allowed" and "网格长无权吹哨" in error["message"]


def test_an_unknown_actor_or_assignee_is_422(client: TestClient) -> None:
    case_id = register(client)
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
    assert act(client, case_id, "assign", CLERK, expect=422, assignee="GL9999")["error"]["fields"][0]["field"] == (
        "assignee"
    )
    # A signed token for a grid leader the reference data does not know: no grids, so no case is theirs.
    impostor = Actor("GL9999", GRID_LEADER.role)
    assert act(client, case_id, "accept", impostor, expect=403)["error"]["code"] == "out_of_scope"


def test_if_match_with_a_stale_version_is_412(client: TestClient) -> None:
    case_id = register(client)
    body = {"handling_type": "committed", "tier": "small"}
    stale = client.post(f"/cases/{case_id}/classify", json=body, headers={"If-Match": '"0"', **auth(CLERK)})
    assert stale.status_code == 412 and stale.headers["etag"] == '"1"'
    fresh = client.post(f"/cases/{case_id}/classify", json=body, headers={"If-Match": '"1"', **auth(CLERK)})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'


def test_an_idempotent_retry_returns_the_first_result_and_appends_nothing(client: TestClient) -> None:
    body = {"actor": actor_json(CLERK), **registration()}  # an older client still naming its actor
    first = client.post("/cases", json=body, headers={"Idempotency-Key": "intake-7781", **auth(CLERK)})
    after = position(client)
    again = client.post("/cases", json=body, headers={"Idempotency-Key": "intake-7781", **auth(CLERK)})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["case_id"] == first.json()["case_id"] and position(client) == after
    reused = client.post(
        "/cases", json={**body, "title": "另一件事"}, headers={"Idempotency-Key": "intake-7781", **auth(CLERK)}
    )
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_health_reports_the_store_and_the_log_position(client: TestClient, settings: Any) -> None:
    register(client)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] == settings.store and health["position"] >= 2


def test_each_request_is_logged_once_with_its_request_id(client: TestClient) -> None:
    with capture_logs() as logs:
        response = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1 and lines[0]["status"] == 200 and lines[0]["path"] == "/healthz"


def test_a_reused_idempotency_key_with_another_petitioner_is_refused_not_replayed(client: TestClient) -> None:
    key = {"Idempotency-Key": "intake-7782", **auth(CLERK)}
    first = client.post("/cases", json=registration(), headers=key)
    after = position(client)
    for other in (
        {"petitioner_name": "李四"},
        {"petitioner_phone": "13900001111"},
        {"petitioner_address": "马限社区5栋101"},
    ):
        reused = client.post("/cases", json=registration(**other), headers=key)
        assert reused.status_code == 422, other
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        assert "resident_token" not in reused.text and first.json()["case_id"] not in reused.text
    assert position(client) == after


def test_an_idempotent_replay_says_nothing_changed_and_gives_the_first_position(client: TestClient) -> None:
    key = {"Idempotency-Key": "intake-7783", **auth(CLERK)}
    first = client.post("/cases", json=registration(), headers=key).json()
    again = client.post("/cases", json=registration(), headers=key).json()
    assert first["changed"] is True and first["position"] is not None
    assert again["replayed"] is True and again["changed"] is False
    assert again["position"] == first["position"] and again["case_id"] == first["case_id"]


def test_the_stored_registration_fingerprint_is_keyed(client: TestClient) -> None:
    import hashlib

    import orjson

    from commands.records import CommandRecorded

    client.post("/cases", json=registration(), headers={"Idempotency-Key": "intake-7784", **auth(CLERK)})
    cases = client.app.state.cases  # type: ignore[attr-defined]
    [record] = cases.events.get(CommandRecorded.stream_id("intake-7784"))
    payload = {**registration(), "petitioner_address": None, "actor": CLERK.as_dict()}
    plain = orjson.dumps(["register", "None", payload], option=orjson.OPT_SORT_KEYS, default=str)
    assert record.fingerprint != hashlib.sha256(plain).hexdigest()
    assert record.fingerprint == cases.vault.fingerprint(plain)


def test_a_case_is_found_by_the_number_on_its_receipt(client: TestClient) -> None:
    created = client.post("/cases", json=registration(), headers=auth(CLERK)).json()
    by_number = client.get(f"/cases/{created['number']}")
    assert by_number.status_code == 200 and by_number.json()["id"] == created["case_id"]
    history = client.get(f"/cases/{created['number'].lower()}/history")
    assert history.status_code == 200 and len(history.json()["events"]) == 1
    # A resident's token opens their case by its number too, and no other.
    resident = {"Authorization": f"Bearer {created['resident_token']}"}
    assert client.get(f"/cases/{created['number']}", headers=resident).status_code == 200
    other = client.post("/cases", json=registration(petitioner_phone="13900001111"), headers=auth(CLERK)).json()
    refused = client.get(f"/cases/{other['number']}", headers=resident)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_case"
    unknown = client.get("/cases/350105001-20260302-ZZZZZ")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "case_not_found"


def test_a_case_read_by_number_is_still_refused_outside_the_callers_area(client: TestClient) -> None:
    elsewhere = client.post("/cases", json=registration(grid=OTHER_STREET_GRID), headers=auth(CLERK)).json()
    refused = client.get(f"/cases/{elsewhere['number']}", headers=auth(TOWNSHIP))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "out_of_scope"
    assert elsewhere["number"] not in refused.text
