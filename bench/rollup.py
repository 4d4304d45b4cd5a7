"""The rates, evaluation and reports of a generated province, timed in-process, with the
PostgreSQL time of every statement they run (EXPLAIN ANALYZE), from the roll-up and from the
ledger rows (issue 16).

    python bench/rollup.py --schema NAME [--runs 7] [--rows-only] [--explain]

NAME is a schema filled and projected by `bench/province.py --keep`. --rows-only reads every
figure from the ledger rows as before the roll-up (it runs on a checkout without the roll-up too).
Prints, per read, the median wall time of --runs calls and, with --explain, the summed
"Execution Time" of its statements and the slowest one's top plan line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import Settings  # noqa: E402
from projections.area import Area  # noqa: E402
from projections.evaluation import department_evaluation  # noqa: E402
from projections.reports import report  # noqa: E402
from projections.scores import ScoresQuery, scores_of  # noqa: E402
from reference.model import ReferenceData, load_policy  # noqa: E402
from storage.views import PostgresViews  # noqa: E402

PG = os.environ.get("MINQING_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def reads(views: PostgresViews, reference: ReferenceData, policy: Any, now: datetime) -> dict[str, Any]:
    """The bench/province.py reads of the rates, evaluation and reports, as calls."""
    (row,) = views.query("SELECT MIN(street) AS street FROM ledger_cases")
    street = row["street"]
    month = (now - timedelta(days=40)).strftime("%Y-%m")
    quarter_start = now - timedelta(days=95)
    quarter = f"{quarter_start.year}-Q{(quarter_start.month - 1) // 3 + 1}"
    today = now.date()
    everywhere = Area.all()
    departments = reference.departments

    def rates(q: ScoresQuery) -> Any:
        return lambda: scores_of(views, policy, everywhere, q)

    def rep(kind: str, period: str, unit: str | None = None) -> Any:
        return lambda: report(views, reference, policy, everywhere, kind=kind, period=period, unit=unit, today=today)

    return {
        "/scores by street, one month": rates(ScoresQuery("street", month=month)),
        "/scores by grid, one street": rates(ScoresQuery("grid", street)),
        "/scores by month": rates(ScoresQuery("month")),
        "/departments/evaluation": lambda: department_evaluation(
            views, departments, everywhere, report_in_within_hours=24
        ),
        "/departments/evaluation month": lambda: department_evaluation(
            views, departments, everywhere, report_in_within_hours=24, month=month
        ),
        "/reports/monthly": rep("monthly", month),
        "/reports/monthly one street": rep("monthly", month, street),
        "/reports/quarterly": rep("quarterly", quarter),
        "/reports/yearly": rep("yearly", str(now.year)),
    }


class Recorder:
    """Wraps views.query to keep the statements a read runs."""

    def __init__(self, views: PostgresViews) -> None:
        self.views = views
        self.query = views.query
        self.statements: list[tuple[str, list[Any]]] = []

    def __call__(self, sql: str, params: Any = ()) -> Any:
        self.statements.append((sql, list(params)))
        return self.query(sql, params)


def explain(views: PostgresViews, read: Any) -> tuple[float, str]:
    recorder = Recorder(views)
    views.query = recorder  # type: ignore[method-assign]
    try:
        read()
    finally:
        views.query = recorder.query  # type: ignore[method-assign]
    total, slowest = 0.0, (0.0, "")
    for sql, params in recorder.statements:
        plan = [r["QUERY PLAN"] for r in views.query(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)]
        ms = float(next(line for line in plan if line.startswith("Execution Time")).split()[2])
        total += ms
        if ms > slowest[0]:
            slowest = (ms, plan[0].strip())
    return round(total, 2), f"{slowest[1]} ({len(recorder.statements)} statements)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows-only", action="store_true")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    if args.rows_only:
        try:
            from projections import rollup

            rollup.covers = lambda area: False
        except ImportError:
            pass  # a checkout before the roll-up: the rows are all there is
    settings = Settings()
    views = PostgresViews(f"{PG}?schema={args.schema}")
    reference = ReferenceData.load(settings.reference_path)
    policy = load_policy(settings.policy_path).in_force(datetime.now(UTC).date())
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    (count,) = views.query("SELECT COUNT(*) AS n FROM ledger_cases")
    print(f"{count['n']} cases, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    results = {}
    try:
        for label, read in reads(views, reference, policy, now).items():
            read()  # warm
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                read()
                times.append((time.perf_counter() - started) * 1000)
            row: dict[str, Any] = {"median_ms": round(statistics.median(times), 2)}
            if args.explain:
                row["explain_ms"], row["slowest"] = explain(views, read)
            results[label] = row
            print(f"| {label} | {row['median_ms']} | {row.get('explain_ms', '')} | {row.get('slowest', '')} |")
    finally:
        views.close()
    print(json.dumps({"load_average": os.getloadavg(), "reads": results}, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
