"""Every read route × every scoped role, on SQLite and PostgreSQL: the server applies the caller's
area to the query it runs, so whatever filters a client sends, nothing outside that area comes back
(issue 11: `GET /ledger?unit=<own grid>` once returned every case of the district)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cases.actor import Actor
from cases.vocabulary import Role
from tests.api_steps import OTHER_STREET_LEADER, act
from tests.conftest import MONDAY_MORNING
from tests.factories import (
    CLERK,
    GRID,
    GRID_LEADER,
    HOUSING,
    LEADER,
    OTHER_STREET_GRID,
    RESIDENT,
    STREET,
    TOWNSHIP,
    auth,
    registration,
)

NEIGHBOUR_GRID = "35010500100102"  # same street as GRID, another grid leader (GL0002)
OTHER_STREET = "350105002"
OTHER_STREET_TOWNSHIP = Actor("T0021", Role.TOWNSHIP, OTHER_STREET)


@dataclass
class District:
    numbers: dict[str, str]  # label -> case number
    whistles: dict[str, list[str]]  # label -> departments whistled
    led: dict[str, str]  # label -> lead department
    position: int


def _case(client: TestClient, grid: str, leader: str | None, township: Actor | None, *departments: str) -> Any:
    response = client.post("/cases", json=registration(grid=grid), headers=auth(CLERK))
    assert response.status_code == 201, response.text
    case_id, number = response.json()["case_id"], response.json()["number"]
    last = response.json()["position"]
    if leader:
        act(client, case_id, "classify", CLERK, handling_type="committed", tier="big")
        act(client, case_id, "assign", CLERK, assignee=leader)
        last = act(client, case_id, "accept", Actor(leader, Role.GRID_LEADER))["position"]
    if departments and township:
        act(client, case_id, "whistle", township, departments=list(departments), reason="违章搭建")
        last = act(client, case_id, "consult", township, outcome="会商", lead_department=departments[0])["position"]
    return case_id, number, last


@pytest.fixture
def district(client: TestClient) -> District:
    plan = {
        "own_grid": (GRID, "GL0001", TOWNSHIP, "zhujian"),
        "neighbour_grid": (NEIGHBOUR_GRID, "GL0002", None),
        "other_street": (OTHER_STREET_GRID, OTHER_STREET_LEADER, OTHER_STREET_TOWNSHIP, "chengguan"),
        "other_street_housing": (OTHER_STREET_GRID, OTHER_STREET_LEADER, OTHER_STREET_TOWNSHIP, "zhujian"),
        "unclassified": (OTHER_STREET_GRID, None, None),
    }
    numbers, whistles, led, last = {}, {}, {}, 0
    for label, (grid, leader, township, *departments) in plan.items():
        _, numbers[label], last = _case(client, grid, leader, township, *departments)
        whistles[label] = list(departments)
        if departments:
            led[label] = departments[0]
    assert client.get("/ledger", params={"wait_for": last, "wait_timeout": 30}).status_code == 200
    return District(numbers, whistles, led, last)


# Which of the district's cases each role may read; LEADER is not scoped (any area, like supervision).
AREAS: dict[Role, set[str]] = {
    Role.GRID_LEADER: {"own_grid"},
    Role.TOWNSHIP: {"own_grid", "neighbour_grid"},
    Role.DEPARTMENT: {"own_grid", "other_street_housing"},  # led by it or whistled to it
    Role.LEADER: {"own_grid", "neighbour_grid", "other_street", "other_street_housing", "unclassified"},
}
CALLERS = (GRID_LEADER, TOWNSHIP, HOUSING, LEADER, RESIDENT)

# What an attacker sends: the exploit of issue 11 first (the area's own code in a filter the route ignores),
# then filters naming the caller's own area, another area, and the whole district.
HOSTILE = (
    {"unit": GRID},
    {"unit": STREET},
    {"unit": "zhujian"},
    {"grid": GRID, "street": STREET, "lead_department": "zhujian"},
    {"grid": OTHER_STREET_GRID, "street": OTHER_STREET, "unit": OTHER_STREET},
    {"district": "350105", "unit": "350105"},
    {},
)

MONTH, QUARTER = {"period": "2026-03"}, {"period": "2026-Q1"}
ROUTES: dict[str, tuple[str, dict[str, str]]] = {
    "ledger": ("/ledger", {}),
    "ledger csv": ("/ledger/export.csv", {}),
    "ledger xlsx": ("/ledger/export.xlsx", {}),
    "problems": ("/lists/problems", {}),
    "responsibilities csv": ("/lists/responsibilities/export.csv", {}),
    "rectifications xlsx": ("/lists/rectifications/export.xlsx", {}),
    "board": ("/board", {"by": "grid"}),
    "board at": ("/board", {"at": MONDAY_MORNING.isoformat()}),
    "scores by street": ("/scores", {"by": "street"}),
    "scores by grid": ("/scores", {"by": "grid"}),
    "evaluation": ("/departments/evaluation", {}),
    "monthly report": ("/reports/monthly", MONTH),
    "quarterly report": ("/reports/quarterly", QUARTER),
    "quarterly xlsx": ("/reports/quarterly/export.xlsx", QUARTER),
}


def _text(response: Any) -> str:
    if response.headers["content-type"].startswith("application/vnd.openxmlformats"):
        book = load_workbook(io.BytesIO(response.content), read_only=True)
        return "\n".join(str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                         for cell in row if cell is not None)  # fmt: skip
    return response.text


def _count(name: str, body: Any) -> int | None:
    """How many cases the answer says it counted, where it says so."""
    if name in ("ledger", "problems"):
        return body["total"]
    if name.startswith("board"):
        return body["totals"]["cases"]
    if name.startswith("scores"):
        return sum(g["counts"]["received"] for g in body["groups"])
    if name.endswith("report"):
        return body["figures"]["received"]
    return None


def test_every_read_route_returns_only_the_callers_area_whatever_it_filters(
    client: TestClient, district: District
) -> None:
    numbers = district.numbers
    for caller in CALLERS:
        headers = auth(caller, "any-case") if caller.role == Role.RESIDENT else auth(caller)
        mine = AREAS.get(caller.role, set())
        allowed = {numbers[label] for label in mine}
        whistles_in_area = sum(len(district.whistles[label]) for label in mine)
        led_in_area = sum(1 for label in mine if label in district.led)
        for name, (path, fixed) in ROUTES.items():
            for hostile in HOSTILE:
                where = (name, str(caller.role), hostile)
                response = client.get(path, params={**hostile, **fixed}, headers=headers)
                if caller.role == Role.RESIDENT or (name == "evaluation" and caller.role == Role.GRID_LEADER):
                    assert response.status_code == 403, where
                    assert response.json()["error"]["code"] == "role_not_allowed", where
                    continue
                if response.status_code == 422 and name.endswith(("report", "xlsx")) and "unit" in hostile:
                    # A report names its unit; a department code is not one. Nothing is answered.
                    assert response.json()["error"]["fields"][0]["field"] == "unit", where
                    continue
                assert response.status_code == 200, (*where, response.text)
                seen = {n for n in numbers.values() if n in _text(response)}
                assert seen <= allowed, (*where, "leaked", seen - allowed)
                if response.headers["content-type"].startswith("application/json"):
                    body = response.json()
                    count = _count(name, body)
                    assert count is None or count <= len(mine), (*where, count, len(mine))
                    if name == "evaluation":
                        rows = body["departments"]
                        assert sum(r["whistled"] for r in rows) <= whistles_in_area, (*where, rows)
                        assert sum(r["cases_led"] for r in rows) <= led_in_area, (*where, rows)
                        if caller.role == Role.DEPARTMENT:
                            assert {r["department"] for r in rows} <= {caller.unit}, (*where, rows)
        # Unfiltered, the area itself comes back: the scope is the area, not an empty answer.
        if caller.role != Role.RESIDENT:
            page = client.get("/ledger", headers=headers).json()
            assert {item["number"] for item in page["items"]} == allowed, caller


def test_the_events_feed_is_not_open_to_scoped_roles(client: TestClient, district: District) -> None:
    for caller in (GRID_LEADER, TOWNSHIP, HOUSING, LEADER):
        for path in ("/events", "/events/stream"):
            response = client.get(path, params={"unit": GRID, "grid": GRID}, headers=auth(caller))
            assert response.status_code == 403, (path, caller.role)
            assert response.json()["error"]["code"] == "role_not_allowed"


def test_a_report_defaults_to_the_callers_own_unit(client: TestClient, district: District) -> None:
    defaults = {GRID_LEADER: GRID, TOWNSHIP: STREET, HOUSING: "350105", LEADER: "350105"}
    for caller, unit in defaults.items():
        body = client.get("/reports/monthly", params=MONTH, headers=auth(caller)).json()
        assert body["unit"] == unit, (caller.role, body.get("unit"))
        assert body["figures"]["received"] == len(AREAS[caller.role]), caller.role
