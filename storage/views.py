"""The read side's database: the same SQL on SQLite and PostgreSQL.

Views are written by projection runners and read by HTTP workers. SQL is
written once with `?` placeholders (rewritten for psycopg), using only syntax
both stores share (ON CONFLICT upserts, standard aggregates).
"""

from __future__ import annotations

import fcntl
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from config.settings import Settings

Row = dict[str, Any]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class _SqliteCursor:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self.conn.execute(sql, tuple(params))
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SqliteViews:
    """One connection per thread; writers serialise on SQLite's own lock."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteCursor(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return _SqliteCursor(self._conn()).execute(sql, params)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class _PostgresCursor:
    def __init__(self, cur: psycopg.Cursor[Row]) -> None:
        self.cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.cur.execute(_pg(sql), tuple(params))
        return self.cur.fetchall() if self.cur.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(_pg(sql), rows)


def upsert(cur: Cursor, table: str, columns: Sequence[str], key: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT … ON CONFLICT DO UPDATE for a batch of rows. On PostgreSQL the rows
    are copied into a temporary table and merged by one statement: a round trip
    per batch, not per row (the projections' catch-up, issue 16)."""
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    if isinstance(cur, _PostgresCursor) and len(rows) > 1:
        stage = f"stage_{table}"
        cur.cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS")
        with cur.cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}")
        return
    cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) {conflict}", rows)


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresViews:
    dialect = "postgres"

    def __init__(self, url: str, *, max_size: int = 4) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = query.get("schema", ["public"])[0]
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.schema = schema
        self.pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            # Autocommit: a single read is one round trip, not BEGIN, the query and COMMIT (three);
            # transaction() still opens a real transaction for work of more than one statement.
            kwargs={"row_factory": dict_row, "options": f"-c search_path={schema}", "autocommit": True},
            open=True,
        )

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PostgresCursor(cur)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement, atomic on its own."""
        with self.pool.connection() as conn, conn.cursor() as cur:
            return _PostgresCursor(cur).execute(sql, params)

    def close(self) -> None:
        self.pool.close()


def create_schema(views: SqliteViews | PostgresViews, statements: Sequence[str], cur: Cursor | None = None) -> None:
    """Run CREATE … IF NOT EXISTS statements; on PostgreSQL under a lock,
    because concurrent CREATE TABLE IF NOT EXISTS can still collide in its catalog."""
    if cur is None:
        with views.transaction() as cur:
            create_schema(views, statements, cur)
        return
    if isinstance(views, PostgresViews):
        cur.execute("SELECT pg_advisory_xact_lock(?)", [zlib.crc32(b"minqing:projection:ddl")])
    for statement in statements:
        cur.execute(statement)


def table_names(statements: Sequence[str]) -> list[str]:
    """The tables that CREATE TABLE statements make."""
    return [m.group(1) for ddl in statements if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", ddl))]


def missing_tables(store: SqliteViews | PostgresViews, names: Sequence[str]) -> list[str]:
    if isinstance(store, PostgresViews):
        rows = store.query("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()")
    else:
        rows = store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    present = {row["name"] for row in rows}
    return [name for name in names if name not in present]


class SchemaMissingError(RuntimeError):
    """The store has not been migrated: only `minqing migrate` creates tables."""

    def __init__(self, missing: Sequence[str]) -> None:
        names = ", ".join(missing[:3]) + (f", … ({len(missing)})" if len(missing) > 3 else "")
        super().__init__(
            f"数据库尚未建表（缺少 {names}），请先运行 `minqing migrate`。"
            f" The database schema is missing ({names}): run `minqing migrate` first."
        )


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """One migration at a time: a PostgreSQL advisory lock, or a file lock beside the SQLite store."""
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        with psycopg.connect(conninfo, autocommit=True) as conn:
            key = zlib.crc32(b"minqing:migrate")
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    with settings.sqlite_path.with_name(settings.sqlite_path.name + ".migrate.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_views(settings: Settings) -> SqliteViews | PostgresViews:
    if settings.database_url:
        return PostgresViews(settings.database_url)
    path = settings.sqlite_path.with_name(settings.sqlite_path.stem + "-views.sqlite3")
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteViews(path)


def dialect_of(cur: Cursor) -> str:
    """ "postgres" or "sqlite": for the few expressions the two stores spell differently."""
    return "postgres" if isinstance(cur, _PostgresCursor) else "sqlite"
