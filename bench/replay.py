"""Replay and audit benchmark on PostgreSQL.

    python bench/replay.py [--events 100000] [--runs 3]

1. Loading a case with 30 events: `Cases.get_case` (the aggregate, replayed)
   and its history with dwell times (`replay.history`), median over 200 reads.
2. Rebuild: the ledger rebuilt from the first event into fresh tables,
   compared with the live one and swapped in (`minqing rebuild`), --runs
   times over a log of >= --events; reported as events/s and s per million.
3. Audit chain: keeping it from empty (events/s), then `verify` over it
   (events/s), --runs times.
Everything runs in a throw-away schema that is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.projections import LEADER, accepted_case, drop, fill, session  # noqa: E402
from cases.case import Case  # noqa: E402
from config.settings import Settings  # noqa: E402
from projections.chain import AuditChain  # noqa: E402
from projections.ledger import Ledger  # noqa: E402
from projections.runner import Runner  # noqa: E402
from replay.history import history  # noqa: E402
from replay.rebuild import rebuild  # noqa: E402
from replay.verify import verify  # noqa: E402
from service import build_cases  # noqa: E402
from storage.views import PostgresViews  # noqa: E402


def thirty_events(cases) -> Case:  # type: ignore[no-untyped-def]
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    case = accepted_case(cases, "B-30", at)
    for i in range(26):
        case.report_progress(LEADER, at + timedelta(hours=i + 1), progress=f"第{i + 1}次进展：已联系物业与施工方")
    cases.save(case)
    assert case.version == 30
    return case


def median_ms(action, reps: int = 200) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name, url, results = session(args)
    settings = Settings(database_url=url, environment="development")
    cases = build_cases(settings)
    views = PostgresViews(url)
    try:
        case = thirty_events(cases)
        results["case_with_30_events_ms"] = {
            "load_median": median_ms(lambda: cases.get_case(case.id)),
            "history_median": median_ms(lambda: history(cases, case.id)),
        }
        started = time.perf_counter()
        written = fill(cases, args.events)
        results["fill"] = {"events": written, "seconds": round(time.perf_counter() - started, 1)}
        head = cases.recorder.max_notification_id()

        Runner(cases, views, Ledger(cases.vault)).catch_up()  # the live view the rebuilds are compared with
        rebuilds = []
        for _ in range(args.runs):
            outcome, _ = rebuild(cases, settings, views, "ledger")
            assert outcome.swapped and outcome.equal, outcome
            rebuilds.append(outcome.events / outcome.seconds)
        rate = statistics.median(rebuilds)
        results["rebuild"] = {
            "events": head,
            "runs_events_per_s": [round(r) for r in rebuilds],
            "median_events_per_s": round(rate),
            "seconds_per_million_events": round(1_000_000 / rate, 1),
        }

        keeper = Runner(cases, views, AuditChain())
        started = time.perf_counter()
        keeper.catch_up()
        chain_rate = head / (time.perf_counter() - started)
        verifies = []
        for _ in range(args.runs):
            report = verify(cases, views)
            assert report["ok"] and report["checked"] == head, report
            verifies.append(report["checked"] / report["elapsed_seconds"])
        results["audit"] = {
            "events": head,
            "chain_keeping_events_per_s": round(chain_rate),
            "verify_runs_events_per_s": [round(v) for v in verifies],
            "verify_median_events_per_s": round(statistics.median(verifies)),
        }
    finally:
        views.close()
        cases.close()
        drop(name)
        drop(f"{name}_rebuild")
    out = ROOT / "bench" / "results" / "replay-postgres.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
