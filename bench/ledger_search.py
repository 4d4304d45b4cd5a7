"""Chinese search on a generated province (issue 16): plans, in-process timings and HTTP.

    python bench/province.py --cases 20000 --schema NAME --keep --seconds 1 --runs 1   # once
    python bench/ledger_search.py --reuse NAME [--seconds 5] [--runs 3] [--catch-up 50000]

For each search (common two-character terms, a one-character term in most rows, one in few, a
rare term, several terms, a term with a street filter, a page 90 % deep into a term's matches):
the plan of the page query (EXPLAIN ANALYZE), the median of 20 in-process `ledger_page` calls,
and p50/p99 over HTTP with `wrk` at 1 and 8 connections (median of --runs), as bench/province.py
measures. With --catch-up N, the ledger's catch-up over the first N log records is timed with
and without the search index, alternately (--runs each), and nothing else: the ledger is left
caught up to N only.
Results: bench/results/ledger-search-<cases>.json. The schema is kept (drop it yourself).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.province import PG, env_for, settings, token, wrk  # noqa: E402
from projections.area import Area  # noqa: E402
from projections.ledger import POSTGRES_INDEXES, Ledger  # noqa: E402
from projections.ledger_query import LedgerQuery, encode_cursor, ledger_page  # noqa: E402
from projections.runner import Runner  # noqa: E402
from service import build_cases  # noqa: E402
from storage.views import Cursor, PostgresViews, Row  # noqa: E402


class Explaining(PostgresViews):
    """The store, explaining each read of the ledger where it runs (same transaction, same
    settings) before running it: the plans of the ledger's own SQL."""

    def __init__(self, url: str) -> None:
        super().__init__(url, max_size=2)
        self.plans: list[str] = []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.transaction() as cur:
            return cur.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with super().transaction() as cur:
            yield ExplainingCursor(cur, self.plans)


class ExplainingCursor:
    def __init__(self, cur: Cursor, plans: list[str]) -> None:
        self.cur = cur
        self.plans = plans

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if "FROM ledger_cases" in sql and not sql.startswith("EXPLAIN"):
            rows = self.cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            self.plans.append("\n".join(r["QUERY PLAN"] for r in rows))
        return self.cur.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(sql, rows)


def searches(conn: psycopg.Connection[Any]) -> list[tuple[str, dict[str, str]]]:
    """(label, /ledger parameters) for each kind of search, with how many rows each term is in."""
    # The generated texts repeat (copies of the demo's): count each text once, with its rows.
    texts = conn.execute(
        "SELECT COALESCE(title, ''), COALESCE(description, ''), COALESCE(location, ''), count(*) "
        "FROM ledger_cases GROUP BY 1, 2, 3"
    ).fetchall()

    def rows_with(term: str) -> int:
        return sum(n for *columns, n in texts if any(term in c for c in columns))

    # The rarest two characters of some title, and the commonest single character of the titles.
    titles = sorted({t for t, *_ in texts if t})
    rare = min(sorted({t[i : i + 2] for t in titles for i in range(len(t) - 1)}), key=rows_with)
    common = max(sorted({c for t in titles for c in t}), key=rows_with)
    (street,) = conn.execute(
        "SELECT street FROM ledger_cases WHERE street IS NOT NULL GROUP BY street ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    out = [
        ("渗水", {"q": "渗水"}),
        ("停车", {"q": "停车"}),
        ("物业", {"q": "物业"}),
        ("水 (one character)", {"q": "水"}),
        (f"{common} (one character, the commonest)", {"q": common}),
        (f"{rare} (rare)", {"q": rare}),
        ("没有这样的事 (no match)", {"q": "没有这样的事"}),
        ("物业 停车 (two terms)", {"q": "物业 停车"}),
        ("渗水 + street", {"q": "渗水", "street": street}),
    ]
    for term in ("渗水", common, rare):
        matches = rows_with(term)
        deep = conn.execute(
            "SELECT registered_at, case_id FROM ledger_cases "
            "WHERE title LIKE %s OR description LIKE %s OR location LIKE %s "
            "ORDER BY COALESCE(registered_at, '') DESC, case_id DESC OFFSET %s LIMIT 1",
            (f"%{term}%",) * 3 + (int(matches * 0.9),),
        ).fetchone()
        if deep:
            cursor = encode_cursor(deep[0] or "", deep[1], min(matches, 10_000), matches <= 10_000)
            out.append((f"{term} page 90 % deep", {"q": term, "cursor": cursor}))
    return [(f"{label}: {rows_with(p['q'].split()[0])} rows", p) for label, p in out]


def query_of(params: dict[str, str]) -> LedgerQuery:
    filters = {k: v for k, v in params.items() if k not in ("q", "cursor")}
    return LedgerQuery(q=params["q"], filters=filters, cursor=params.get("cursor"))


def explain(url: str, params: dict[str, str], today: date) -> dict[str, Any]:
    views = Explaining(url)
    try:
        ledger_page(views, query_of(params), Area.all(), today=today, yellow_within=2)
        return {"statements": len(views.plans), "plans": views.plans}
    finally:
        views.close()


def in_process(url: str, params: dict[str, str], today: date, times: int = 20) -> float:
    views = PostgresViews(url, max_size=1)
    try:
        took = []
        for _ in range(times):
            started = time.perf_counter()
            ledger_page(views, query_of(params), Area.all(), today=today, yellow_within=2)
            took.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(took), 2)
    finally:
        views.close()


def over_http(url: str, paths: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from serving import free_port, wait_healthy

    env = env_for(url)
    port = free_port()
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "2", "--projections", "external"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    out = []
    try:
        wait_healthy(base, server, timeout=120)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(f'wrk.headers["Authorization"] = "Bearer {token(env)}"\n')
        for path in paths:
            row: dict[str, Any] = {}
            for connections in (1, 8):
                runs = [wrk(base, path, script.name, connections, args.seconds) for _ in range(args.runs)]
                row[f"c{connections}"] = {
                    k: round(statistics.median(r[k] for r in runs), 2) for k in ("p50", "p99", "rps", "errors")
                }
            out.append(row)
            print(f"http {path[:60]}: {row}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def catch_up(url: str, schema: str, records: int, runs: int) -> dict[str, Any]:
    """The ledger's catch-up over the first `records` log records, with and without the index."""
    index = next(s for s in POSTGRES_INDEXES if "ledger_cases_grams" in s)
    cases = build_cases(settings(url))
    views = PostgresViews(url)
    rates: dict[str, list[float]] = {"with_index": [], "without_index": []}
    try:
        runner = Runner(cases, views, Ledger(cases.vault))
        for _ in range(runs):
            for label in ("without_index", "with_index"):
                with views.transaction() as cur:
                    cur.execute("TRUNCATE ledger_cases, ledger_whistles, board_states")
                    cur.execute("UPDATE projection_tracking SET position = 0 WHERE projection = 'ledger'")
                    cur.execute("DROP INDEX IF EXISTS ledger_cases_grams")
                    if label == "with_index":
                        cur.execute(index)
                started = time.perf_counter()
                done = runner.catch_up(stop=records)
                rates[label].append(done / (time.perf_counter() - started))
                print(f"catch-up {label}: {rates[label][-1]:,.0f} log records/s", file=sys.stderr)
    finally:
        views.close()
        cases.close()
    return {"records": records, **{k: [round(r) for r in v] for k, v in rates.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", required=True, help="a schema filled and projected by bench/province.py")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--catch-up", type=int, default=0, help="log records to time the ledger's catch-up over")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    schema = args.reuse
    url = f"{PG}?schema={schema}"
    today = date.today()
    results: dict[str, Any] = {"date": today.isoformat(), "args": vars(args)}
    with psycopg.connect(PG, options=f"-c search_path={schema}") as conn:
        results["cases"] = conn.execute("SELECT count(*) FROM ledger_cases").fetchone()[0]  # type: ignore[index]
        index = "SELECT pg_relation_size('ledger_cases_grams'), pg_relation_size('ledger_cases')"
        results["index_bytes"], results["table_bytes"] = conn.execute(index).fetchone()  # type: ignore[misc]
        chosen = searches(conn)
    if args.catch_up:
        results["catch_up"] = catch_up(url, schema, args.catch_up, args.runs)
        (ROOT / "bench" / "results" / "ledger-search-catch-up.json").write_text(json.dumps(results, indent=2))
        return
    results["searches"] = []
    for label, params in chosen:
        plan = explain(url, params, today)
        row = {"search": label, "params": params, "in_process_ms": in_process(url, params, today), **plan}
        results["searches"].append(row)
        print(f"{label}: {row['in_process_ms']} ms in-process\n" + "\n\n".join(plan["plans"]) + "\n", file=sys.stderr)
    if not args.no_http:
        paths = ["/ledger?" + "&".join(f"{k}={quote(v)}" for k, v in p.items()) for _, p in chosen]
        for row, figures in zip(results["searches"], over_http(url, paths, args), strict=True):
            row.update(figures)
    out = ROOT / "bench" / "results" / f"ledger-search-{results['cases']}.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print("| search | in-process ms | c1 p50 | c1 p99 | c8 p50 | c8 p99 | c8 req/s |")
    print("|---|---|---|---|---|---|---|")
    for row in results["searches"]:
        c1, c8 = row.get("c1", {}), row.get("c8", {})
        figures = " | ".join(str(f.get(k, "")) for f in (c1, c8) for k in ("p50", "p99"))
        print(f"| {row['search']} | {row['in_process_ms']} | {figures} | {c8.get('rps', '')} |")


if __name__ == "__main__":
    main()
