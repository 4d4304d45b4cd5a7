"""Rebuild read models from the first event into fresh tables, then swap them
in with no downtime for readers, and say whether the result equals the live one.

The rebuilt tables live apart (a schema of their own on PostgreSQL, a file of
their own on SQLite) while they catch up; the live runner keeps serving. The
swap is one transaction on the live store that holds the projection's
tracking row: the rebuilt copy is first brought to exactly the live position,
so the two are compared event for event, and the live runner simply carries
on from the same position over the new tables. Readers see the old tables
until the commit and the new ones after it.

The audit chain is evidence, not a read model: it is never rebuilt from the
log it vouches for.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from commands.cases import Cases
from config.settings import Settings
from projections.ledger import Ledger
from projections.runner import Projection, Runner, create_tables, tracked_position
from storage.views import PostgresViews, SqliteViews
from storage.views import table_names as statement_tables

REBUILDABLE: dict[str, Callable[[Cases], Projection]] = {"ledger": lambda cases: Ledger(cases.vault)}
MAX_SWAP_ATTEMPTS = 20


def table_names(projection: Projection) -> list[str]:
    return statement_tables(projection.tables)


@dataclass
class Outcome:
    projection: str
    events: int = 0
    seconds: float = 0.0
    position: int = 0
    live_position: int | None = None
    swapped: bool = False
    equal: bool | None = None
    differences: dict[str, dict[str, int]] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        rate = round(self.events / self.seconds) if self.seconds else None
        return {**self.__dict__, "seconds": round(self.seconds, 3), "events_per_second": rate}


class Shadow:
    """Where a rebuild is written: beside the live views, never in them."""

    def __init__(self, settings: Settings, live: SqliteViews | PostgresViews, name: str) -> None:
        self.live = live
        if isinstance(live, PostgresViews):
            self.schema = f"{live.schema}_{name}"[:63]
            with live.transaction() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                cur.execute(f'CREATE SCHEMA "{self.schema}"')
            parts = urlsplit(settings.database_url or "")
            query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"schema": self.schema}
            self.views: SqliteViews | PostgresViews = PostgresViews(urlunsplit(parts._replace(query=urlencode(query))))
            self.qualifier = f'"{self.schema}".'
        else:
            self.path = live.path.with_name(f"{live.path.stem}-{name}.sqlite3")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.views = SqliteViews(self.path)
            self.qualifier = "shadow."

    def drop(self) -> None:
        self.views.close()
        if isinstance(self.live, PostgresViews):
            with self.live.transaction() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        else:
            for leftover in [self.path, *self.path.parent.glob(f"{self.path.name}[-.]*")]:
                leftover.unlink(missing_ok=True)


def _differences(cur: Any, tables: list[str], qualifier: str) -> dict[str, dict[str, int]]:
    found = {}
    for table in tables:
        only_live = cur.execute(
            f"SELECT COUNT(*) AS n FROM (SELECT * FROM {table} EXCEPT SELECT * FROM {qualifier}{table}) d"
        )
        only_new = cur.execute(
            f"SELECT COUNT(*) AS n FROM (SELECT * FROM {qualifier}{table} EXCEPT SELECT * FROM {table}) d"
        )
        found[table] = {"only_live": int(only_live[0]["n"]), "only_rebuilt": int(only_new[0]["n"])}
    return found


class _SqliteSwap:
    """One connection to the live file with the rebuilt file attached."""

    def __init__(self, live: SqliteViews, shadow: Shadow) -> None:
        self.conn = sqlite3.connect(live.path, isolation_level=None, timeout=30)
        self.conn.execute("ATTACH DATABASE ? AS shadow", (str(shadow.path),))

    def execute(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, tuple(params))
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self.conn.close()


def rebuild(
    cases: Cases,
    settings: Settings,
    live: SqliteViews | PostgresViews,
    name: str,
    *,
    swap: bool = True,
    keep_as: str | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> tuple[Outcome, Shadow | None]:
    """Rebuild one projection. With `swap`, the result replaces the live tables;
    without, it is kept apart (as `keep_as`) for a side-by-side reading."""
    projection = REBUILDABLE[name](cases)
    tables = table_names(projection)
    create_tables(live, projection)
    shadow = Shadow(settings, live, keep_as or "rebuild")
    create_tables(shadow.views, projection)  # a fresh store: this is its migration
    runner = Runner(cases, shadow.views, projection)
    outcome = Outcome(name)
    started = time.perf_counter()
    target = cases.recorder.max_notification_id() or 0
    report = progress(name, target) if progress else None
    # From the empty shadow tables: the fast way (rows kept between batches, projections.catch_up).
    outcome.events += runner.catch_up(stop=target, progress=report)
    if not swap:
        outcome.seconds = time.perf_counter() - started
        outcome.position = runner.position
        return outcome, shadow
    try:
        _swap(live, shadow, runner, tables, outcome)
    finally:
        shadow.drop()
    outcome.seconds = time.perf_counter() - started
    return outcome, None


def _swap(
    live: SqliteViews | PostgresViews, shadow: Shadow, runner: Runner, tables: list[str], outcome: Outcome
) -> None:
    name = runner.projection.name
    sqlite_swap = _SqliteSwap(live, shadow) if isinstance(live, SqliteViews) else None
    try:
        for _ in range(MAX_SWAP_ATTEMPTS):
            # Bring the rebuilt copy to where the live one is, outside any lock…
            seen = tracked_position(live, name)
            if seen > runner.position:
                outcome.events += runner.catch_up(stop=seen)
            # …then hold the live tracking row, and swap if nothing moved meanwhile.
            if sqlite_swap:
                sqlite_swap.execute("BEGIN IMMEDIATE")
                try:
                    if _swap_in(sqlite_swap, runner, tables, outcome, "shadow."):
                        sqlite_swap.execute("COMMIT")
                        return
                    sqlite_swap.execute("ROLLBACK")
                except BaseException:
                    sqlite_swap.execute("ROLLBACK")
                    raise
            else:
                assert isinstance(live, PostgresViews)
                with live.transaction() as cur:
                    if _swap_in(cur, runner, tables, outcome, shadow.qualifier):
                        return
        outcome.note = f"the live projection kept moving; not swapped after {MAX_SWAP_ATTEMPTS} attempts"
    finally:
        if sqlite_swap:
            sqlite_swap.close()


def _swap_in(cur: Any, runner: Runner, tables: list[str], outcome: Outcome, qualifier: str) -> bool:
    name = runner.projection.name
    lock = " FOR UPDATE" if qualifier != "shadow." else ""
    live_position = int(
        cur.execute(f"SELECT position FROM projection_tracking WHERE projection = ?{lock}", [name])[0]["position"]
    )
    rebuilt = runner.position
    if live_position > rebuilt:
        return False  # the live runner moved on: catch up again and retry
    outcome.live_position = live_position
    outcome.position = rebuilt
    if live_position == rebuilt:
        outcome.differences = _differences(cur, tables, qualifier)
        outcome.equal = not any(d["only_live"] or d["only_rebuilt"] for d in outcome.differences.values())
    else:
        outcome.note = f"the live view was behind ({live_position} < {rebuilt}): not compared"
        cur.execute("UPDATE projection_tracking SET position = ? WHERE projection = ?", [rebuilt, name])
    for table in tables:
        cur.execute(f"DROP TABLE {table}")
    if qualifier == "shadow.":
        # SQLite cannot move a table between files: copy it inside this transaction.
        for ddl in runner.projection.tables:
            cur.execute(ddl)
        for table in tables:
            cur.execute(f"INSERT INTO {table} SELECT * FROM shadow.{table}")
    else:
        schema = cur.execute("SELECT current_schema() AS s")[0]["s"]
        for table in tables:
            cur.execute(f'ALTER TABLE {qualifier}{table} SET SCHEMA "{schema}"')
    outcome.swapped = True
    return True
