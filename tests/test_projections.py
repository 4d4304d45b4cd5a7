"""Read models, driven by commands through the API and read back through it,
on SQLite and PostgreSQL; and the runner's exactly-once guarantees."""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cases.actor import Actor
from commands.cases import Cases
from config.settings import Settings
from projections.ledger import Ledger
from projections.runner import Runner, TrackingConflictError, create_tables
from storage.views import PostgresViews, SqliteViews, open_views
from tests.api_steps import Driver
from tests.conftest import PG_URL, Clock
from tests.factories import (
    CLERK,
    GRID_LEADER,
    HOUSING,
    LEADER_OF_GRID,
    OTHER_STREET_GRID,
    RESIDENT,
    TOWNSHIP,
    URBAN,
    registration,
)


def test_the_ledger_shows_each_case_with_its_deadlines_and_filters(driver: Driver) -> None:
    closed = driver.closed()
    open_case = driver.accepted(title="小区无物业管理", description="公共区域无人管理，垃圾堆积")
    elsewhere = driver.register(grid=OTHER_STREET_GRID, title="车辆占道")
    page = driver.get("/ledger")
    assert page["total"] == 3
    rows = {r["case_id"]: r for r in page["items"]}
    assert rows[closed]["status"] == "closed" and rows[closed]["rating"] == "satisfied"
    assert rows[closed]["checkpoints"]["deployed"]["state"] == "met_on_time"
    assert rows[open_case]["resolve_due"] == "2026-03-11"
    assert rows[elsewhere]["street_name"] == "马尾镇"
    assert [r["case_id"] for r in driver.get("/ledger", status="closed")["items"]] == [closed]
    assert [r["case_id"] for r in driver.get("/ledger", street="350105002")["items"]] == [elsewhere]
    assert [r["case_id"] for r in driver.get("/ledger", q="物业 垃圾")["items"]] == [open_case]
    assert driver.get("/ledger", q="没有这样的事")["total"] == 0


def test_overdue_is_judged_at_query_time(driver: Driver, clock: Clock) -> None:
    case_id = driver.accepted()
    assert driver.get("/ledger", overdue=True)["total"] == 0
    clock.advance(days=14)  # no new event: only the clock moved
    assert [r["case_id"] for r in driver.get("/ledger", overdue=True)["items"]] == [case_id]


def test_cursor_pages_cover_every_case_once(driver: Driver) -> None:
    ids = {driver.register(title=f"第{i}件") for i in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        page = driver.get("/ledger", limit=3, sort="number", order="asc", **({"cursor": cursor} if cursor else {}))
        seen += [r["case_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 and set(seen) == ids
    numbers = [r["number"] for r in driver.get("/ledger", sort="number", order="asc", limit=10)["items"]]
    assert numbers == sorted(numbers)
    bad = driver.client.get("/ledger", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "cursor"


def test_three_lists_and_exports_carry_chinese_headers(driver: Driver) -> None:
    case_id = driver.accepted()
    driver.act(
        case_id, "plan-rectification", GRID_LEADER, measures="修复防水层", responsible_unit="物业公司",
        responsible_person="王建国", deadline="2026-03-10",
    )  # fmt: skip
    rectifications = driver.get("/lists/rectifications")
    assert rectifications["title"] == "整改清单" and rectifications["items"][0]["measures"] == "修复防水层"
    assert driver.get("/lists/responsibilities")["items"][0]["responsible_person"] == "王建国"

    exported = driver.client.get("/ledger/export.csv", params={"wait_for": driver.position})
    assert exported.status_code == 200 and exported.content.startswith("\ufeff".encode())
    header, row = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))[:2]
    assert header[0] == "编号" and "整改措施" in header and "修复防水层" in row

    workbook = driver.client.get("/ledger/export.xlsx", params={"wait_for": driver.position})
    book = load_workbook(io.BytesIO(workbook.content), read_only=True)
    assert book.sheetnames == ["民情工作台账", "问题清单", "责任清单", "整改清单"]
    assert next(book["整改清单"].iter_rows(values_only=True))[0] == "编号"


def test_the_board_lights_cases_red_yellow_and_green(driver: Driver, clock: Clock) -> None:
    late = driver.register(title="逾期未签收")
    driver.act(late, "classify", CLERK, handling_type="committed", tier="small")
    clock.advance(days=3)  # Thursday: `late` missed its accept limit (Tuesday)
    near = driver.register(title="明天到期")
    driver.act(near, "classify", CLERK, handling_type="committed", tier="small")
    on_track = driver.accepted(tier="big", title="大事会商")
    driver.act(on_track, "report-progress", GRID_LEADER, progress="已联系住建")
    board = driver.get("/board")
    colours = {c["case_id"]: c["colour"] for c in board["cases"]}
    assert colours == {late: "red", near: "yellow", on_track: "green"}
    assert board["totals"] == {"red": 1, "yellow": 1, "green": 1, "supervised": 0, "cases": 3}
    assert board["units"][0]["unit"] == "350105001" and board["units"][0]["red"] == 1
    late_case = next(c for c in board["cases"] if c["case_id"] == late)
    assert late_case["checkpoints"]["deployed"]["state"] == "overdue"
    # As of the first day nothing was late yet: the board is judged at the asked moment.
    assert driver.get("/board", as_of="2026-03-02")["totals"]["red"] == 0


def test_supervision_notices_are_counted_on_the_board(driver: Driver) -> None:
    case_id = driver.accepted()
    driver.act(case_id, "supervise", Actor("SV001", "supervision"), responsible_unit="罗星街道",
               new_due="2026-03-20", notice="请加快办理")  # fmt: skip
    board = driver.get("/board", by="grid")
    assert board["totals"]["supervised"] == 1 and board["units"][0]["unit"] == "35010500100101"


def test_three_rates_show_their_counts_and_weights(driver: Driver) -> None:
    driver.closed("satisfied")
    driver.closed("dissatisfied", fail_first=True)
    driver.accepted()
    scores = driver.get("/scores", by="street")
    group = scores["groups"][0]
    assert group["unit"] == "350105001" and group["name"] == "罗星街道"
    assert group["counts"] | {} == group["counts"]
    counts = group["counts"]
    assert (counts["dispatched"], counts["responded"], counts["callbacks"], counts["resolved"]) == (3, 3, 2, 1)
    assert (group["response_rate"], group["resolution_rate"], group["satisfaction_rate"]) == (1.0, 0.5, 0.5)
    assert group["composite_score"] == pytest.approx(100 * (0.30 * 1.0 + 0.35 * 0.5 + 0.35 * 0.5))
    assert scores["weights"] == {"response": 0.30, "resolution": 0.35, "satisfaction": 0.35}
    by_leader = driver.get("/scores", by="grid_leader")["groups"]
    assert by_leader[0]["unit"] == LEADER_OF_GRID


def test_whistle_evaluation_per_department(driver: Driver, clock: Clock) -> None:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["zhujian", "chengguan"], reason="违建")
    clock.advance(hours=3)
    driver.act(case_id, "report-in", HOUSING)
    clock.advance(hours=30)
    driver.act(case_id, "report-in", URBAN)
    driver.act(case_id, "consult", TOWNSHIP, outcome="住建牵头", lead_department="zhujian")
    evaluation = {d["department"]: d for d in driver.get("/departments/evaluation")["departments"]}
    assert evaluation["zhujian"] | {} == evaluation["zhujian"]
    assert (evaluation["zhujian"]["whistled"], evaluation["zhujian"]["reported_on_time"]) == (1, 1)
    assert evaluation["zhujian"]["median_hours_to_report"] == 3.0 and evaluation["zhujian"]["cases_led"] == 1
    assert (evaluation["chengguan"]["reported_on_time"], evaluation["chengguan"]["median_hours_to_report"]) == (0, 33.0)


def test_periodic_reports_and_the_masked_public_notice(driver: Driver) -> None:
    driver.closed()
    driver.accepted()
    monthly = driver.get("/reports/monthly", period="2026-03")
    assert monthly["figures"]["received"] == 2 and monthly["figures"]["closed"] == 1
    assert monthly["title"].startswith("福州市马尾区2026年3月") and monthly["ranking"][0]["name"] == "罗星街道"
    notice = driver.get("/reports/quarterly", period="2026-Q1", unit="350105001")
    assert notice["masking"] and {c["petitioner"] for c in notice["cases"]} == {"张**"}
    assert {c["phone"] for c in notice["cases"]} == {"138****1234"}
    assert "13812341234" not in driver.client.get("/reports/quarterly", params={"period": "2026-Q1"}).text
    yearly = driver.get("/reports/yearly", period="2026")
    assert [m["unit"] for m in yearly["by_month"]] == ["2026-03"]
    book = driver.client.get("/reports/quarterly/export.xlsx", params={"period": "2026-Q1"})
    sheets = load_workbook(io.BytesIO(book.content), read_only=True).sheetnames
    assert sheets == ["概况", "排名", "按渠道", "按类别", "公示"]
    bad = driver.client.get("/reports/monthly", params={"period": "March"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "period"


def test_a_read_can_wait_for_a_command_it_just_sent(driver: Driver) -> None:
    case_id = driver.register()
    # Read-your-writes: the very next read reflects the registration.
    assert driver.get("/ledger", number=driver.get(f"/cases/{case_id}")["number"])["total"] == 1
    # Past the log's head it could never be reached: 422 at once (504 `projection_behind`: test_read_hardening).
    too_far = driver.client.get("/ledger", params={"wait_for": driver.position + 1000, "wait_timeout": 0.2})
    assert too_far.status_code == 422 and too_far.json()["error"]["fields"][0]["field"] == "wait_for"


# --- the runner: resumable, idempotent, rebuildable ---------------------------


@pytest.fixture
def fresh_views(settings: Settings, tmp_path: Any) -> Iterator[Any]:
    """Factory of empty view stores beside the test's own, with the ledger's tables (as `migrate` makes them)."""
    made: list[SqliteViews | PostgresViews] = []
    schemas: list[str] = []

    def make() -> SqliteViews | PostgresViews:
        if settings.database_url is None:
            views: SqliteViews | PostgresViews = SqliteViews(tmp_path / f"views-{uuid.uuid4().hex[:8]}.sqlite3")
        else:
            schema = f"test_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            schemas.append(schema)
            views = PostgresViews(f"{PG_URL}?schema={schema}")
        made.append(views)
        create_tables(views, Ledger())
        return views

    yield make
    for views in made:
        views.close()
    if schemas:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def dump(views: SqliteViews | PostgresViews) -> tuple[list[Any], list[Any]]:
    return (
        views.query("SELECT * FROM ledger_cases ORDER BY case_id"),
        views.query("SELECT * FROM ledger_whistles ORDER BY case_id, whistle_no, department"),
    )


def busy_history(cases: Cases, clock: Clock, n: int = 12) -> None:
    from uuid import UUID

    from cases.vocabulary import HandlingType, Satisfaction, Tier

    for i in range(n):
        case_id = UUID(cases.register(CLERK, **registration(title=f"第{i}件")).case_id)
        cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.BIG)
        cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID)
        cases.accept(case_id, GRID_LEADER)
        cases.whistle(case_id, TOWNSHIP, departments=["zhujian", "chengguan"], reason="r")
        clock.advance(minutes=30)
        cases.report_in(case_id, HOUSING)
        if i % 2:
            cases.rectify(case_id, GRID_LEADER, summary="s")
            cases.verify(case_id, RESIDENT, passed=True, reason="")
            cases.close_case(case_id, GRID_LEADER, summary="s", suggestion_outcome=None)
            cases.rate(case_id, RESIDENT, satisfaction=Satisfaction.SATISFIED, comment="")


def test_runners_of_two_view_stores_on_one_database_are_both_active(cases: Cases, fresh_views: Any) -> None:
    # Two deployments, or two test runs, in two schemas of one PostgreSQL database.
    first, second = Runner(cases, fresh_views(), Ledger(cases.vault)), Runner(cases, fresh_views(), Ledger(cases.vault))
    try:
        assert first.lock.acquire()
        assert second.lock.acquire(), "one schema's runner stood by for another schema's"
    finally:
        first.lock.release()
        second.lock.release()


def test_a_projection_stopped_midway_and_restarted_equals_one_run_straight_through(
    cases: Cases, clock: Clock, fresh_views: Any
) -> None:
    busy_history(cases, clock)
    straight = fresh_views()
    Runner(cases, straight, Ledger(cases.vault)).catch_up()

    interrupted = fresh_views()
    first = Runner(cases, interrupted, Ledger(cases.vault), batch_size=7)
    for _ in range(5):
        first.run_once()
    assert 0 < first.position < (cases.recorder.max_notification_id() or 0)
    Runner(cases, interrupted, Ledger(cases.vault), batch_size=7).catch_up()  # a new process resumes

    assert dump(interrupted) == dump(straight)
    assert len(dump(straight)[0]) == 12 and len(dump(straight)[1]) == 24


def test_applying_the_same_events_twice_changes_nothing(cases: Cases, clock: Clock, fresh_views: Any) -> None:
    busy_history(cases, clock, n=4)
    views = fresh_views()
    runner = Runner(cases, views, Ledger(cases.vault), batch_size=10)
    runner.catch_up()
    before = dump(views)
    # A second runner that read the same batch earlier tries to apply it again.
    stale = Runner(cases, views, Ledger(cases.vault), batch_size=10)
    notifications = cases.recorder.select_notifications(start=1, limit=10)
    events = [(n.id, cases.mapper.to_domain_event(n)) for n in notifications if n.topic.startswith("cases.case:")]
    with pytest.raises(TrackingConflictError), views.transaction() as cur:
        moved = cur.execute(
            "UPDATE projection_tracking SET position = ? WHERE projection = ? AND position = ? RETURNING position",
            [notifications[-1].id, "ledger", 0],
        )
        if not moved:
            raise TrackingConflictError("already applied")
        stale.projection.apply_batch(cur, events)
    assert dump(views) == before
    assert stale.run_once() == 0 and dump(views) == before


def test_racing_runners_still_apply_every_event_exactly_once(cases: Cases, clock: Clock, fresh_views: Any) -> None:
    busy_history(cases, clock, n=8)
    straight = fresh_views()
    Runner(cases, straight, Ledger(cases.vault)).catch_up()
    shared = fresh_views()
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def run(runner: Runner) -> None:
        try:
            follow(runner)
        except BaseException as e:
            errors.append(e)

    def follow(runner: Runner) -> None:
        while True:
            try:
                if not runner.run_once():
                    return
            except TrackingConflictError:
                conflicts.append(1)
            except Exception as e:  # SQLite may refuse a concurrent writer: retry like the daemon does
                if "locked" not in str(e):
                    raise

    # Built one by one: creating the tables is an init step, not part of the race.
    runners = [Runner(cases, shared, Ledger(cases.vault), batch_size=5) for _ in range(3)]
    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dump(shared) == dump(straight)


def test_the_service_runs_its_projection_in_process(settings: Settings) -> None:
    views = open_views(settings)
    try:
        assert views.query("SELECT 1 AS one")[0]["one"] == 1
    finally:
        views.close()


def test_the_demo_district_shows_a_lit_board_rates_per_street_and_a_masked_notice(
    client: TestClient, clock: Clock
) -> None:
    from datetime import UTC, datetime

    from demo.stories import load_demo

    now = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    load_demo(cases, count=200, now=now)
    cases.clock = clock
    clock.now = now
    head = cases.recorder.max_notification_id()
    board = client.get("/board", params={"wait_for": head, "wait_timeout": 30}).json()
    assert min(board["totals"][c] for c in ("red", "yellow", "green")) > 0, board["totals"]
    streets = client.get("/scores", params={"by": "street"}).json()["groups"]
    assert len(streets) == 4 and all(g["satisfaction_rate"] is not None for g in streets)
    notice = client.get("/reports/quarterly", params={"period": "2026-Q4"})
    body = notice.json()
    assert body["cases"] and all(re.fullmatch(r"1\d\d\*{4}\d{4}", c["phone"]) for c in body["cases"])
    assert all(c["petitioner"][1:] == "*" * (len(c["petitioner"]) - 1) for c in body["cases"])
    # The notice's cases a page at a time, by number: every case once, the pages joined in order.
    paged: list[str] = []
    after = None
    while True:
        params = {"period": "2026-Q4", "limit": 17} | ({"after": after} if after else {})
        page = client.get("/reports/quarterly", params=params).json()
        assert len(page["cases"]) <= 17 and page["cases_total"] == body["cases_total"]
        paged += [c["number"] for c in page["cases"]]
        after = page["cases_next"]
        if after is None:
            break
    assert len(paged) == body["cases_total"] > 17 and paged == sorted(set(paged))
    assert paged[: len(body["cases"])] == [c["number"] for c in body["cases"]]


def test_the_ledger_count_stops_at_its_cap_and_rides_in_the_cursor(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections import ledger_query

    for _ in range(4):
        driver.register()
    monkeypatch.setattr(ledger_query, "COUNT_CAP", 3)
    first = driver.get("/ledger", limit=2)
    assert (first["total"], first["total_exact"], len(first["items"])) == (3, False, 2)
    monkeypatch.setattr(ledger_query, "COUNT_CAP", 10)
    second = driver.get("/ledger", limit=2, cursor=first["next_cursor"])
    assert (second["total"], second["total_exact"]) == (3, False)  # carried, not counted again
    assert driver.get("/ledger", limit=2)["total_exact"] is True
