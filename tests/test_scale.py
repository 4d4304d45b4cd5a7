"""Reads that stay cheap at a province's size give the answers the slow ones gave:
the board judged in SQL, the board at a past moment from kept states, and the
audit chain verified incrementally and one case at a time."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.access import area_of
from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from demo.stories import load_demo
from projections.area import Area
from projections.chain import seal
from projections.checkpoints import colour, evaluate
from tests.api_steps import accepted
from tests.conftest import Clock
from tests.factories import GRID_LEADER, OTHER_TOWNSHIP, TOWNSHIP, _keys, auth, token
from tests.test_audit import chained, mark, raw_store

DEMO_CASES = 80


@pytest.fixture
def demo(client: TestClient, clock: Clock) -> TestClient:
    cases = client.app.state.cases  # type: ignore[attr-defined]
    load_demo(cases, DEMO_CASES, now=clock.now)
    for runner in client.app.state.read_side.runners:  # type: ignore[attr-defined]
        runner.wait(cases.recorder.max_notification_id(), timeout=60)
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


def test_verify_walks_only_since_the_last_seal_and_names_a_row_altered_after_it(
    client: TestClient, settings: Settings
) -> None:
    first = accepted(client)
    chained(client, first)
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    with views.transaction() as cur:
        sealed = seal(cur)
    assert sealed is not None
    second = accepted(client)
    events = chained(client, second)
    body = client.get("/audit/verify").json()
    assert body["ok"] is True and body["verified_from"] == sealed["position"]
    assert body["checked"] == body["chained_to"] - sealed["position"]  # not the log before the seal
    assert body["seals_checked"] == 1 and body["last_full_verification"] is None

    target = events[2]  # Assigned, after the seal
    tamper(client, settings, target["position"])
    body = client.get("/audit/verify").json()
    assert body["ok"] is False
    problem = body["first_problem"]
    assert (problem["kind"], problem["position"], problem["originator_id"]) == ("altered", target["position"], second)


def test_one_cases_chain_is_checked_on_demand(client: TestClient, settings: Settings) -> None:
    intact, altered = accepted(client), accepted(client)
    chained(client, intact)
    events = chained(client, altered)
    assert client.get("/audit/verify", params={"case": altered}).json()["ok"] is True

    tamper(client, settings, events[1]["position"])
    body = client.get("/audit/verify", params={"case": altered}).json()
    assert body["ok"] is False and body["case"] == altered and body["checked"] == len(events)
    problem = body["first_problem"]
    assert (problem["kind"], problem["position"], problem["version"]) == ("altered", events[1]["position"], 2)
    other = client.get("/audit/verify", params={"case": intact}).json()
    assert other["ok"] is True and other["problem_count"] == 0 and len(other["stream_hash"]) == 64
    assert client.get("/audit/verify", params={"case": "not-a-uuid"}).status_code == 422


def tamper(client: TestClient, settings: Settings, position: int) -> None:
    with raw_store(client, settings) as (conn, column, table):
        m = mark(settings)
        state = bytes(conn.execute(f"SELECT state FROM {table} WHERE {column} = {m}", [position]).fetchone()[0])
        forged = state.replace(b'"timestamp"', b'"timestamp" ', 1)
        assert forged != state
        conn.execute(f"UPDATE {table} SET state = {m} WHERE {column} = {m}", [forged, position])


def test_the_board_at_a_past_moment_equals_the_replayed_one(demo: TestClient, clock: Clock) -> None:
    from replay.board_at import replayed_board_at

    cases = demo.app.state.cases  # type: ignore[attr-defined]
    for days in (60, 30, 14, 7, 3, 1):
        moment = clock.now - timedelta(days=days, hours=5)
        for options in ({}, {"by": "grid"}, {"colour": "red"}):
            kept = demo.get("/board", params={"at": moment.isoformat(), "limit": 1000, **options}).json()
            flags = {"colour_filter": options.get("colour"), "by": options.get("by", "street"), "limit": 1000}
            replayed = replayed_board_at(cases, moment, Area.all(), **flags)
            assert kept["totals"] == replayed["totals"], (moment, options)
            assert kept["units"] == replayed["units"]
            assert kept["cases"] == replayed["cases"]
            assert kept["cases_total"] == replayed["cases_total"]
    assert kept["totals"]["cases"] > 0


def test_the_whistle_evaluation_counted_in_sql_matches_the_whistles(demo: TestClient) -> None:
    from statistics import median

    views = demo.app.state.read_side.views  # type: ignore[attr-defined]
    whistles = views.query("SELECT department, blown_month, seconds_to_report FROM ledger_whistles")
    months = sorted({w["blown_month"] for w in whistles})
    for month in (None, months[len(months) // 2]):
        body = demo.get("/departments/evaluation", params={"month": month} if month else {}).json()
        limit = body["report_in_within_hours"] * 3600
        for row in body["departments"]:
            mine = [w for w in whistles if w["department"] == row["department"] and month in (None, w["blown_month"])]
            times = [int(w["seconds_to_report"]) for w in mine if w["seconds_to_report"] is not None]
            assert row["whistled"] == len(mine)
            assert (row["reported_in"], row["reported_on_time"]) == (len(times), sum(t <= limit for t in times))
            assert row["median_hours_to_report"] == (round(median(times) / 3600, 2) if times else None)
        in_month = sum(month in (None, w["blown_month"]) for w in whistles)
        assert sum(r["whistled"] for r in body["departments"]) == in_month


def test_the_board_at_a_past_moment_shows_only_the_callers_area(demo: TestClient, clock: Clock) -> None:
    """The kept states carry the area's columns: a scoped caller's /board?at= is the board replayed
    over the log with that caller's area applied, never the district's."""
    from replay.board_at import replayed_board_at

    cases = demo.app.state.cases  # type: ignore[attr-defined]
    moment = clock.now - timedelta(days=3, hours=5)
    params = {"at": moment.isoformat(), "limit": 1000, "by": "grid"}
    everyone = demo.get("/board", params=params).json()
    for caller in (GRID_LEADER, TOWNSHIP, OTHER_TOWNSHIP):
        area = area_of(_keys().verify(token(caller)))
        kept = demo.get("/board", params=params, headers=auth(caller)).json()
        replayed = replayed_board_at(cases, moment, area, by="grid", limit=1000)
        assert kept["cases"] == replayed["cases"], caller
        assert (kept["totals"], kept["units"]) == (replayed["totals"], replayed["units"]), caller
        assert 0 < kept["totals"]["cases"] < everyone["totals"]["cases"], caller
    # A department: the cases it led at that moment, and those whistled to it (as its ledger shows them).
    led = {c["case_id"]: c["lead_department"] for c in everyone["cases"] if c["lead_department"]}
    department = Actor("D-1", Role.DEPARTMENT, sorted(led.values())[0])
    kept = demo.get("/board", params=params, headers=auth(department)).json()
    ledger = demo.get("/ledger", params={"limit": 200}, headers=auth(department)).json()
    assert ledger["total"] <= 200
    leading = {case_id for case_id, unit in led.items() if unit == department.unit}
    assert leading <= {c["case_id"] for c in kept["cases"]} <= leading | {i["case_id"] for i in ledger["items"]}
    assert kept["totals"]["cases"] < everyone["totals"]["cases"]
