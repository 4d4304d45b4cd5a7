"""`minqing replay`, `verify`, `seal` and `rebuild` as an auditor runs them:
real processes over a store filled through the application."""

from __future__ import annotations

import subprocess
from uuid import UUID

import orjson

from cases.vocabulary import HandlingType, Tier
from commands.cases import Cases
from config.settings import Settings
from replay.records import _sql
from tests.conftest import Clock
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID, registration
from tests.serving import MINQING, environment
from tests.test_audit import mark


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MINQING, *args], env=environment(settings), capture_output=True, text=True, timeout=120)


def a_case(cases: Cases, clock: Clock) -> tuple[UUID, str]:
    registered = cases.register(CLERK, **registration())
    case_id = UUID(registered.case_id)
    clock.advance(hours=2)
    cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
    clock.advance(hours=1)
    cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID)
    cases.accept(case_id, GRID_LEADER)
    return case_id, registered.number


def test_replay_prints_the_timeline_by_case_number(cases: Cases, clock: Clock, settings: Settings) -> None:
    case_id, number = a_case(cases, clock)
    result = run(settings, "replay", number)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert number in lines[0] and str(case_id) in lines[0]
    assert [label for label in ("登记", "分类定时限", "派单", "签收") if any(label in line for line in lines)] == [
        "登记", "分类定时限", "派单", "签收",
    ]  # fmt: skip
    assert "各状态停留" in result.stdout and "2.0 小时" in result.stdout  # registered for two hours
    as_json = orjson.loads(run(settings, "replay", str(case_id), "--json").stdout)
    assert [e["version"] for e in as_json["events"]] == [1, 2, 3, 4]
    missing = run(settings, "replay", "350105001-20260302-ZZZZZ")
    assert missing.returncode == 2 and "没有编号" in missing.stderr


def test_verify_seal_and_a_tampered_row(cases: Cases, clock: Clock, settings: Settings) -> None:
    case_id, _ = a_case(cases, clock)
    intact = run(settings, "verify", "--json")
    assert intact.returncode == 0, intact.stderr
    body = orjson.loads(intact.stdout)
    assert body["ok"] and body["checked"] == body["chained_to"] == body["head"]
    sealed = run(settings, "seal")
    assert sealed.returncode == 0 and body["root_hash"] in sealed.stdout

    column, table, _ = _sql(cases.recorder)
    with cases.recorder.datastore.transaction(commit=True) as cur:
        m = mark(settings)
        cur.execute(f"SELECT {column} AS p FROM {table} WHERE originator_version = 2")
        target = cur.fetchall()[0]["p"]
        cur.execute(f"UPDATE {table} SET topic = {m} WHERE {column} = {m}", ("cases.case:Case.Closed", target))
    tampered = run(settings, "verify")
    assert tampered.returncode == 1
    assert f"altered (事件内容被改动) at position {target}: case {case_id} v2" in tampered.stdout
    # The seal made earlier no longer matches the recomputed chain either.
    assert "seal_mismatch" in tampered.stdout
    published = run(settings, "verify", "--root", f"{body['chained_to']}:{body['root_hash']}")
    assert "root_mismatch" in published.stdout


def test_rebuild_swaps_and_reports_equality(cases: Cases, clock: Clock, settings: Settings) -> None:
    a_case(cases, clock)
    assert run(settings, "project", "--once").returncode == 0
    result = run(settings, "rebuild")
    assert result.returncode == 0, result.stderr
    assert "swapped in; equals the live view" in result.stdout
    assert "rebuild ledger [" in result.stderr and "100.0%" in result.stderr
    side = run(settings, "rebuild", "ledger", "--side-by-side", "trial", "--json")
    assert side.returncode == 0, side.stderr
    (outcome,) = orjson.loads(side.stdout)
    assert outcome["swapped"] is False and outcome["side_by_side"][0]["unit"] == "350105001"
    assert run(settings, "rebuild", "nonsense").returncode == 2
