"""Import benchmark on PostgreSQL: a generated 12345 export of --rows rows (xlsx), imported with
`minqing import`'s own code path and progress display (commands.imports.import_file with the
CLI's ProgressLine on stderr), --runs times, each into a fresh migrated schema.

    python bench/import.py [--rows 10000] [--runs 3] [--compare 1000]

Reports rows/s for: the import (reading, checking, sealing every petitioner through the vault,
saving in batches of 200); importing the same file again (every row found and skipped); a dry
run of it. With --compare N, also N rows saved one row per transaction against the batches, in
fresh schemas, to show what batching buys. Each schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.projections import PG, drop, machine, schema  # noqa: E402
from cases.actor import Actor  # noqa: E402
from cases.vocabulary import Role  # noqa: E402
from cli.imports import ProgressLine  # noqa: E402
from commands.imports import Mapping, import_file  # noqa: E402
from config.settings import IMPORT_MAPPINGS, Settings  # noqa: E402
from service import build_cases  # noqa: E402
from tests.import_files import order_12345, to_xlsx  # noqa: E402

CLERK = Actor("CL002", Role.INTAKE_CLERK)


def one_run(data: bytes, mapping: Mapping, *, batch: int, repeat: bool) -> dict[str, Any]:
    name = schema()
    settings = Settings(database_url=f"{PG}?schema={name}", environment="development")
    cases = build_cases(settings)
    try:
        report = import_file(cases, CLERK, data, mapping, source="bench.xlsx", batch=batch, progress=ProgressLine())
        assert not report.refused and len(report.imported) == report.total, report.summary()
        result: dict[str, Any] = {"rows": report.total, "seconds": round(report.seconds, 2)}
        result["rows_per_s"] = round(report.total / report.seconds, 1)
        if repeat:
            again = import_file(cases, CLERK, data, mapping, source="bench.xlsx", progress=ProgressLine())
            assert len(again.skipped) == again.total
            result["reimport_rows_per_s"] = round(again.total / again.seconds, 1)
            dry = import_file(cases, CLERK, data, mapping, source="bench.xlsx", dry_run=True)
            result["dry_run_rows_per_s"] = round(dry.total / dry.seconds, 1)
        return result
    finally:
        cases.close()
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=int, default=1000, help="rows for batch vs one-row transactions; 0: skip")
    args = parser.parse_args()
    mapping = Mapping.load(IMPORT_MAPPINGS / "12345.json")
    started = time.perf_counter()
    # Every third caller is a repeat caller (the same phone): their key in the vault is found, not made.
    rows = [order_12345(i, 联系电话=f"139{i - i % 3:08d}") for i in range(1, args.rows + 1)]
    data = to_xlsx(rows)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "file_bytes": len(data)}
    results["generate_seconds"] = round(time.perf_counter() - started, 1)
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}: {args.rows} rows", file=sys.stderr)
        runs.append(one_run(data, mapping, batch=200, repeat=True))
    results["runs"] = runs
    results["median"] = {
        key: statistics.median(r[key] for r in runs)
        for key in ("rows_per_s", "reimport_rows_per_s", "dry_run_rows_per_s")
    }
    if args.compare:
        small = to_xlsx(rows[: args.compare])
        by_batch = [one_run(small, mapping, batch=b, repeat=False)["rows_per_s"] for b in (200, 1) for _ in range(1)]
        results["compare"] = {
            "rows": args.compare,
            "batch_200_rows_per_s": by_batch[0],
            "batch_1_rows_per_s": by_batch[1],
        }
    out = ROOT / "bench" / "results" / "import-postgres.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(results["median"], ensure_ascii=False))
    if args.compare:
        print(json.dumps(results["compare"], ensure_ascii=False))


if __name__ == "__main__":
    main()
