"""Projection benchmark on PostgreSQL: catch-up speed and command-to-ledger lag.

    python bench/projections.py [--events 100000] [--runs 3] [--rate 500] [--seconds 20]

1. Catch-up: writes >= --events case events into a throw-away schema, then
   rebuilds the ledger from an empty view --runs times (events/s, median).
2. Lag: a `minqing project` worker follows the log in its own process while
   four sender processes (one per street) send --rate commands/s in all for
   --seconds; a watcher polls the tracking position every 5 ms, and each
   command's lag is the time from its return to the first observation of the
   ledger at or past its position (p50/p95/p99).
Everything runs on 127.0.0.1 and stops by itself; the schema is dropped.
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine as machine_of  # noqa: E402
from cases.actor import Actor  # noqa: E402
from cases.case import Case  # noqa: E402
from cases.vocabulary import HandlingType, Role, Satisfaction, Tier  # noqa: E402
from config.settings import Settings  # noqa: E402
from projections.ledger import Ledger  # noqa: E402
from projections.runner import Runner, tracked_position  # noqa: E402
from service import build_cases  # noqa: E402
from storage.views import PostgresViews  # noqa: E402

PG = os.environ.get("MINQING_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLERK = Actor("CL001", Role.INTAKE_CLERK)
LEADER = Actor("GL0001", Role.GRID_LEADER)
TOWNSHIP = Actor("T0011", Role.TOWNSHIP, "350105001")
HOUSING = Actor("D1", Role.DEPARTMENT, "zhujian")
RESIDENT = Actor("R1", Role.RESIDENT)
GRID = "35010500100101"
# One sender per street: case numbers run per street and day, so senders on one
# street would contend for the same number sequence.
SENDER_GRIDS = ("35010500100101", "35010500200101", "35010510100101", "35010510200101")
SENDERS = len(SENDER_GRIDS)


def machine() -> dict[str, str]:
    return machine_of(PG)


def schema() -> str:
    """A fresh schema, migrated."""
    from service import migrate

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    migrate(Settings(database_url=f"{PG}?schema={name}", environment="development"))
    return name


def session(args: argparse.Namespace) -> tuple[str, str, dict[str, object]]:
    """A throw-away schema, its URL, and the results header (machine, date, arguments)."""
    name = schema()
    return name, f"{PG}?schema={name}", {"machine": machine(), "date": date.today().isoformat(), "args": vars(args)}


def drop(name: str) -> None:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def accepted_case(cases, number: str, at: datetime) -> Case:  # type: ignore[no-untyped-def]
    """A case registered, classified, assigned and signed for: 4 events, built in memory."""
    units = cases.reference.units_of(GRID)
    case = Case.register(
        case_id=uuid4(), number=number, actor=CLERK, at=at, units=units, channel="hotline",
        category="housing", title=f"楼顶渗水 {number}", description="违章搭建导致楼顶渗水", location="3栋",
        petitioner={"name": "张秀英", "phone": "13812341234"},
    )  # fmt: skip
    version = cases.policy.in_force(at.date())
    deadlines = version.deadlines(HandlingType.COMMITTED, Tier.BIG, at.date())
    case.classify(CLERK, at, handling_type=HandlingType.COMMITTED, tier=Tier.BIG, deadlines=deadlines,
                  policy_version=version.version)  # fmt: skip
    leader = cases.reference.grid_leaders["GL0001"]
    case.assign(CLERK, at, assignee=leader.id, assignee_name=leader.name, assignee_grids=leader.grids)
    case.accept(LEADER, at)
    return case


def lifecycle(cases, i: int, at: datetime) -> Case:  # type: ignore[no-untyped-def]
    """A whistled case through to its rating: 12 events, built in memory."""
    case = accepted_case(cases, f"B-{i:07d}", at)
    case.whistle(TOWNSHIP, at, departments=["zhujian", "chengguan"], reason="违建")
    case.report_in(HOUSING, at + timedelta(hours=2))
    case.consult(TOWNSHIP, at, outcome="住建牵头", lead_department="zhujian")
    case.plan_rectification(LEADER, at, measures="拆违", responsible_unit="住建", responsible_person="王",
                            deadline=at.date() + timedelta(days=20))  # fmt: skip
    case.rectify(LEADER, at, summary="已拆除")
    case.verify(RESIDENT, at, passed=True, reason="")
    case.close_case(LEADER, at, summary="销号")
    case.rate(RESIDENT, at, satisfaction=Satisfaction.SATISFIED, comment="")
    return case


def fill(cases, events: int) -> int:  # type: ignore[no-untyped-def]
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    per_case, written, i = 12, 0, 0
    while written < events:
        batch = [lifecycle(cases, i + k, at) for k in range(100)]
        cases.save(*batch)
        i += 100
        written += 100 * per_case
    return written


def catch_up(cases, name: str, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    rates = []
    head = cases.recorder.max_notification_id()
    for _ in range(runs):
        view_schema = schema()
        views = PostgresViews(f"{PG}?schema={view_schema}")
        try:
            runner = Runner(cases, views, Ledger(cases.vault))
            started = time.perf_counter()
            runner.catch_up()
            elapsed = time.perf_counter() - started
            assert runner.position == head
            events = len(views.query("SELECT case_id FROM ledger_cases")) * 12
            rates.append(events / elapsed)
        finally:
            views.close()
            drop(view_schema)
    return rates


def send(url: str, grid: str, share: float, seconds: float, start_at: float, out: multiprocessing.Queue) -> None:
    """One sender process: paces itself to `share` commands/s, reports (position, done_at)."""
    cases = build_cases(Settings(database_url=url, environment="development"))
    done: list[tuple[int, float]] = []
    ids: list[UUID] = []
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() - start_at < seconds:
        # Open-loop pacing: command n is due at start + n/share; a late sender catches up.
        wait = start_at + len(done) / share - time.time()
        if wait > 0:
            time.sleep(wait)
        if len(done) % 2 == 0 or not ids:
            result = cases.register(CLERK, channel="hotline", category="housing", title="噪声扰民",
                                    description="夜间施工", location="5栋", grid=grid,
                                    petitioner_name="李四", petitioner_phone="13912345678")  # fmt: skip
            ids.append(UUID(result.case_id))
        else:
            result = cases.classify(ids.pop(), CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
        done.append((result.position or 0, time.time()))
    cases.close()
    out.put(done)


def lag(url: str, rate: int, seconds: float) -> dict[str, float]:
    env = {**os.environ, "MINQING_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
           "MINQING_ENV": "development"}  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "cli", "project"], env=env, stdout=subprocess.DEVNULL)
    views = PostgresViews(url, max_size=2)
    observed: list[tuple[int, float]] = []  # (position, first seen at)
    try:
        with psycopg.connect(url.split("?")[0], options=f"-c search_path={url.split('schema=')[1]}") as conn:
            head = conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM cases_events").fetchone()[0]  # type: ignore[index]
        while tracked_position(views, "ledger") < head:
            time.sleep(0.2)  # the worker catches up with the fill first
        out: multiprocessing.Queue = multiprocessing.Queue()
        start_at = time.time() + 2
        senders = [
            multiprocessing.Process(target=send, args=(url, grid, rate / SENDERS, seconds, start_at, out))
            for grid in SENDER_GRIDS
        ]
        for process in senders:
            process.start()
        while time.time() < start_at + seconds + 2:
            position = tracked_position(views, "ledger")
            if not observed or position > observed[-1][0]:
                observed.append((position, time.time()))
            time.sleep(0.005)
        results = [out.get(timeout=60) for _ in senders]
        for process in senders:
            process.join(timeout=30)
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        views.close()
    positions = [p for p, _ in observed]
    lags = []
    sent = [item for result in results for item in result]
    for position, done_at in sent:
        i = bisect.bisect_left(positions, position)
        if i < len(observed):
            lags.append(max(0.0, observed[i][1] - done_at))
    lags.sort()

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(p * len(lags)))] * 1000

    return {"commands_per_s": len(sent) / seconds, "samples": len(lags), "unseen": len(sent) - len(lags),
            "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": lags[-1] * 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    name, url, results = session(args)
    try:
        cases = build_cases(Settings(database_url=url, environment="development"))
        started = time.perf_counter()
        written = fill(cases, args.events)
        results["fill"] = {"events": written, "seconds": round(time.perf_counter() - started, 1)}
        rates = catch_up(cases, name, args.runs)
        cases.close()
        results["catch_up_events_per_s"] = {
            "runs": [round(r) for r in rates],
            "median": round(statistics.median(rates)),
        }
        runs = [lag(url, args.rate, args.seconds) for _ in range(args.runs)]
        results["lag"] = {
            "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
            "median_p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 1),
            "median_p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 1),
        }
    finally:
        drop(name)
    out = ROOT / "bench" / "results" / "projections-postgres.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
