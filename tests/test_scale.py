"""Reads that stay cheap at a province's size give the answers the slow ones gave:
the board judged in SQL, the board at a past moment from kept states, and the
audit chain verified incrementally and one case at a time."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from demo.stories import load_demo
from projections.checkpoints import colour, evaluate
from tests.conftest import Clock

DEMO_CASES = 80


@pytest.fixture
def demo(client: TestClient, clock: Clock) -> TestClient:
    cases = client.app.state.cases  # type: ignore[attr-defined]
    load_demo(cases, DEMO_CASES, now=clock.now)
    client.app.state.read_side.wait(cases.recorder.max_notification_id(), 60)  # type: ignore[attr-defined]
    return client


def python_board(client: TestClient, today: date, yellow_within: int) -> dict[str, str]:
    """The judge the board used before: every row loaded and judged in Python."""
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    rows = views.query("SELECT * FROM ledger_cases WHERE accept_due IS NOT NULL AND status <> 'closed'")
    return {r["case_id"]: colour(evaluate(r, today), today, yellow_within) for r in rows}


def test_the_board_judged_in_sql_gives_the_python_judges_colours(demo: TestClient, clock: Clock) -> None:
    seen = set()
    for days in (-30, -7, 0, 1, 3, 10, 40):
        today = (clock.now + timedelta(days=days)).date()
        for yellow_within in (0, 2, 5):
            expected = python_board(demo, today, yellow_within)
            body = demo.get(
                "/board", params={"as_of": today.isoformat(), "yellow_within": yellow_within, "limit": 1000}
            ).json()
            got = {c["case_id"]: c["colour"] for c in body["cases"]}
            assert got == expected, (today, yellow_within)
            for c in body["cases"]:
                assert c["colour"] == colour(c["checkpoints"], today, yellow_within)
            totals = body["totals"]
            assert totals["cases"] == len(expected) == body["cases_total"]
            for light in ("red", "yellow", "green"):
                assert totals[light] == sum(v == light for v in expected.values())
            seen |= set(expected.values())
            red_first = [c["colour"] for c in body["cases"]]
            assert red_first == sorted(red_first, key=["red", "yellow", "green"].index)
    assert seen == {"red", "yellow", "green"}


def test_the_board_filters_by_colour_and_unit_in_sql(demo: TestClient, clock: Clock) -> None:
    today = clock.now.date()
    everything = demo.get("/board", params={"limit": 1000, "by": "grid"}).json()
    for light in ("red", "yellow", "green"):
        only = demo.get("/board", params={"colour": light, "limit": 1000}).json()
        assert {c["colour"] for c in only["cases"]} <= {light}
        assert only["cases_total"] == everything["totals"][light] == len(only["cases"])
    grid = everything["units"][0]
    one = demo.get("/board", params={"unit": grid["unit"], "by": "grid", "limit": 1000}).json()
    assert one["units"] == [grid]
    assert {c["grid"] for c in one["cases"]} == {grid["unit"]}
    assert python_board(demo, today, one["yellow_within_working_days"]).keys() >= {c["case_id"] for c in one["cases"]}


def board_colours(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["case_id"]: (c["status"], c["colour"]) for c in body["cases"]}
