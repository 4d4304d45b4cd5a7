"""Notice worker benchmark, on PostgreSQL and SQLite.

    python bench/notices.py [--cases 500] [--runs 3] [--without-outbox]

Registers --cases petitions (each queues its receipt notice in the same save),
then times one `Notifier.run_once` with the log sender (its lines dropped):
indexing the outbox, leasing, unsealing the phone, rendering, recording
`NoticeSent`. Reported per store as notices/s, median of --runs, each run on
a fresh store. `--without-outbox` registers without queueing notices (the
save path as before issue 18), to price the outbox in registrations/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.projections import drop, session  # noqa: E402
from config.settings import Settings  # noqa: E402
from service import build_cases, build_notifier, migrate  # noqa: E402
from storage.views import open_views  # noqa: E402
from tests.factories import CLERK, SECURITY, registration  # noqa: E402


def one_run(settings: Settings, count: int, queueing: bool = True) -> dict[str, float]:
    migrate(settings)
    cases = build_cases(settings)
    views = open_views(settings)
    try:
        started = time.perf_counter()
        for i in range(count):
            cases.register(CLERK, **registration(petitioner_phone=f"139{i:08d}"))
        registering = time.perf_counter() - started
        if not queueing:
            return {"registrations_per_s": count / registering}
        notifier = build_notifier(cases, views, settings)
        started = time.perf_counter()
        counts = notifier.run_once()
        sending = time.perf_counter() - started
        assert counts == {"sent": count}, counts
        return {"registrations_per_s": count / registering, "notices_per_s": count / sending}
    finally:
        views.close()
        cases.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--without-outbox", action="store_true")
    args = parser.parse_args()
    if args.without_outbox:
        import commands.cases

        commands.cases.queued_notices = lambda case: []  # type: ignore[assignment]
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # the log sender's lines: dropped
    results: dict[str, object] = {}
    for store in ("sqlite", "postgres"):
        runs = []
        for _ in range(args.runs):
            if store == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    settings = Settings(sqlite_path=Path(tmp) / "b.sqlite3", **SECURITY)
                    runs.append(one_run(settings, args.cases, not args.without_outbox))
            else:
                name, url, header = session(args)
                results["header"] = header
                try:
                    runs.append(one_run(Settings(database_url=url, **SECURITY), args.cases, not args.without_outbox))
                finally:
                    drop(name)
        results[store] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
