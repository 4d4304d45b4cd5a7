"""Catching a projection up fast: the log read in bulk and decoded with cached
lookups, and (while a runner catches up) the view's rows kept in memory between
batches, so that a batch reads back nothing and writes new rows with COPY.

The result is the same as applying the batches one by one the normal way
(tests/test_rebuild_equivalence.py); each batch still commits its rows with its
tracking position in one transaction (projections.runner).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from eventsourcing.persistence import Mapper, find_id_convertor
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from commands.records import CASE_TOPIC_PREFIX
from projections import board_states
from storage.views import Cursor, PostgresViews, Row, SqliteViews, _PostgresCursor, upsert

# A batch while catching up: large enough that most cases begin and end in one.
CATCH_UP_BATCH = 60_000
# Cases whose rows are kept in memory while catching up (~6 KB each): past this the older half
# is forgotten and later batches read back what they miss, as the live runner does.
CACHE_LIMIT = 200_000
# Records to go from which a catch-up from empty drops the secondary indexes and makes them again
# at the end: 8,000 ledger rows took 1,132 ms into the indexed table, 140 ms into its key alone.
INDEXES_AHEAD = 100_000


class Decoder:
    """`mapper.to_domain_event` for a stored row's parts, its per-topic lookups done once."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        self.decode_state = mapper.transcoder.decode
        self.plain = mapper.cipher is None and mapper.compressor is None
        self.classes: dict[tuple[str, type], tuple[type, int, Any]] = {}

    def __call__(self, topic: str, originator_id: Any, version: int, state: bytes) -> Any:
        key = (topic, type(originator_id))
        known = self.classes.get(key)
        if known is None:
            cls = resolve_topic(topic)
            convert = find_id_convertor(cls, cast(Hashable, key[1]))
            known = self.classes[key] = (cls, getattr(cls, "class_version", 1), convert)
        cls, class_version, convert = known
        if not self.plain:
            if self.mapper.cipher:
                state = self.mapper.cipher.decrypt(state)
            if self.mapper.compressor:
                state = self.mapper.compressor.decompress(state)
        event_state: dict[str, Any] = self.decode_state(state)
        event_state["originator_id"] = convert(originator_id)
        event_state["originator_version"] = version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event


class LogReader:
    """The next records of the log: (records read, last position, the case events decoded).

    On PostgreSQL one SELECT of the stored columns as tuples, the state of records that are
    not case events left out; on SQLite the recorder's own page."""

    def __init__(self, recorder: Any, mapper: Mapper[Any]) -> None:
        self.recorder = recorder
        self.decode = Decoder(mapper)
        self.statement = None
        if isinstance(recorder, PostgresApplicationRecorder):
            self.statement = SQL(
                "SELECT notification_id, originator_id, originator_version, topic, "
                "CASE WHEN starts_with(topic, %s) THEN state END FROM {schema}.{table} "
                "WHERE notification_id >= %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
            ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))

    def read(self, start: int, limit: int, stop: int | None) -> tuple[int, int, list[tuple[int, Any]]]:
        decode = self.decode
        if self.statement is None:
            page = self.recorder.select_notifications(start=start, limit=limit, stop=stop)
            rows: Sequence[tuple[Any, ...]] = [
                (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in page
            ]
        else:
            with self.recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
                params = (CASE_TOPIC_PREFIX, start, stop if stop is not None else 2**62, limit)
                curs.execute(self.statement, params, prepare=True)
                rows = curs.fetchall()
        if not rows:
            return 0, 0, []
        events = [
            (position, decode(topic, originator_id, version, bytes(state)))
            for position, originator_id, version, topic, state in rows
            if topic.startswith(CASE_TOPIC_PREFIX)
        ]
        return len(rows), rows[-1][0], events


class StoredRows:
    """The live way: a batch reads back the rows it touches and writes them with an upsert."""

    sums_rollup_at_end = False  # the live way moves a derived table (the roll-up) with every batch

    def load(self, cur: Cursor, table: str, case_ids: Sequence[str]) -> list[Row]:
        rows: list[Row] = []
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows += cur.execute(f"SELECT * FROM {table} WHERE case_id IN ({marks})", chunk)
        return rows

    def write(self, cur: Cursor, table: str, columns: tuple[str, ...], key: tuple[str, ...], rows: list[Row]) -> None:
        # Every row holds every column (read back whole, or made from the column tuple): a C getter.
        values = itemgetter(*columns)
        upsert(cur, table, columns, key, [values(r) for r in rows])

    def write_states(self, cur: Cursor, states: board_states.StateKeeper) -> None:
        states.write(cur)


class CachedRows(StoredRows):
    """The rows known to be in the tables as of the last commit, kept between batches.

    `complete` when the tables were empty when it began: a row it does not hold does not
    exist, so nothing is read back. A row it does not hold is new, and new rows are copied
    in without ON CONFLICT. Valid only while no one else writes these tables, and only
    while every batch commits: a runner drops it on any error (Ledger.caching)."""

    def __init__(
        self, keys: dict[str, tuple[str, ...]], *, complete: bool, limit: int = CACHE_LIMIT, sums_at_end: bool = False
    ) -> None:
        self.complete = complete
        self.sums_rollup_at_end = sums_at_end  # the derived table is held back (caching_rows)
        self.limit = limit
        self.known: dict[str, dict[str, dict[tuple[Any, ...], Row]]] = {}
        self.forgotten: set[str] = set()  # cases whose rows left memory: written with ON CONFLICT
        self.keys: dict[str, Callable[[Row], tuple[Any, ...]]] = {
            table: itemgetter(*key) if len(key) > 1 else (lambda r, k=key[0]: (r[k],))  # type: ignore[misc]
            for table, key in keys.items()
        }

    def load(self, cur: Cursor, table: str, case_ids: Sequence[str]) -> list[Row]:
        known = self.known.setdefault(table, {})
        missing = [c for c in case_ids if c not in known]
        if missing and not self.complete:
            found = super().load(cur, table, missing)
            for case_id in missing:
                known[case_id] = {}
            key = self.keys[table]
            for row in found:
                known[row["case_id"]][key(row)] = row
        return [row for case_id in case_ids for row in known.get(case_id, {}).values()]

    def write(self, cur: Cursor, table: str, columns: tuple[str, ...], key: tuple[str, ...], rows: list[Row]) -> None:
        known = self.known.setdefault(table, {})
        key_of = self.keys[table]
        new: list[Row] = []
        stored: list[Row] = []
        forgotten = self.forgotten
        for row in rows:
            case_id = row["case_id"]
            (stored if case_id in forgotten or key_of(row) in known.get(case_id, {}) else new).append(row)
        if stored:
            super().write(cur, table, columns, key, stored)
        if new:
            insert(cur, table, columns, new)
        for row in rows:
            known.setdefault(row["case_id"], {})[key_of(row)] = row
        if len(known) > self.limit:
            self._forget_oldest(len(known) // 2)

    def _forget_oldest(self, count: int) -> None:
        """The cases seen first (in a log read in order, mostly closed long ago) leave memory;
        from then on what is not held is read back, as the live way does."""
        for known in self.known.values():
            for case_id in list(itertools.islice(known, count)):
                del known[case_id]
                # Its rows may be written later in this very batch: merged then, never copied.
                self.forgotten.add(case_id)
        self.complete = False

    def write_states(self, cur: Cursor, states: board_states.StateKeeper) -> None:
        # The open states stored before: one UPDATE joined to the changes, not one per case.
        if states.stored and isinstance(cur, _PostgresCursor):
            changes = [(case_id, c.get("version"), c.get("span_to")) for case_id, c in states.stored.items()]
            cur.cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_state_changes "
                "(case_id TEXT, version BIGINT, span_to BIGINT) ON COMMIT DELETE ROWS"
            )
            with cur.cur.copy("COPY stage_state_changes (case_id, version, span_to) FROM STDIN") as copy:
                for change in changes:
                    copy.write_row(change)
            cur.cur.execute(
                "UPDATE board_states b SET version = COALESCE(s.version, b.version), "
                "span_to = COALESCE(s.span_to, b.span_to) FROM stage_state_changes s "
                "WHERE b.case_id = s.case_id AND b.span_to = %s",
                (board_states.OPEN_END,),
            )
            states.stored = {}
        # A new state's key (case, version) is never stored before: copied in, no conflict check.
        new = list(states.new.values())
        states.new = {}
        states.write(cur)
        if new:
            row = itemgetter(*board_states.STATE_COLUMNS)
            insert_values(cur, "board_states", board_states.STATE_COLUMNS, [row(r) for r in new])


def insert(cur: Cursor, table: str, columns: tuple[str, ...], rows: list[Row]) -> None:
    values = itemgetter(*columns)
    insert_values(cur, table, columns, [values(r) for r in rows])


def insert_values(cur: Cursor, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """New rows: COPY on PostgreSQL, one prepared INSERT on SQLite."""
    names = ", ".join(columns)
    if isinstance(cur, _PostgresCursor):
        with cur.cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


@dataclass(frozen=True)
class Derived:
    """A table summed from the projection's own rows (the ledger's roll-up): while catching up from
    empty it is held back, then made again from the rows in one statement, not moved every batch."""

    hold_back: Callable[[Cursor], None]  # marks it stale, in its own transaction, before the first batch
    made_again: Callable[[Cursor], None]  # sums it from the rows and clears the mark, in one transaction


@contextmanager
def caching_rows(
    holder: Any,
    views: SqliteViews | PostgresViews,
    keys: dict[str, tuple[str, ...]],
    *,
    ahead: int = 0,
    derived: Derived | None = None,
) -> Iterator[CachedRows | None]:
    """From empty tables only: `holder.rows` is a CachedRows for the block, then back to the
    live way, also on error (a rolled-back batch leaves the rows in memory ahead of the tables).
    Over tables that hold rows, nothing changes (yields None): another writer (erasure,
    security.erasure) may have changed them, and a cache would write its stale copy back.
    With at least INDEXES_AHEAD records to go on PostgreSQL, the tables' secondary indexes are
    dropped meanwhile and made again at the end (one sort each instead of an insert per row).
    A `derived` table is made again at the end if the block ends without error; after an error
    it stays marked stale, and the live way sums it again before it next moves it."""
    tables = [*keys, "board_states"]
    if any(views.query(f"SELECT 1 AS x FROM {table} LIMIT 1") for table in tables):
        yield None
        return
    dropped = _drop_indexes(views, tables) if isinstance(views, PostgresViews) and ahead >= INDEXES_AHEAD else []
    if derived:
        with views.transaction() as cur:
            derived.hold_back(cur)
    live = holder.rows
    holder.rows = CachedRows(keys, complete=True, limit=CACHE_LIMIT, sums_at_end=derived is not None)
    ended = False
    try:
        yield holder.rows
        ended = True
    finally:
        holder.rows = live
        _made_again(views, dropped, derived.made_again if derived and ended else None)


def _made_again(
    views: SqliteViews | PostgresViews, indexes: list[str], derived: Callable[[Cursor], None] | None
) -> None:
    """The dropped indexes and the derived table, on two connections at once: the search's GIN
    index alone takes about as long as all the others (7.2 s of 9.5 s on 20,000 cases)."""
    made = [definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1) for definition in indexes]
    slow: list[str | Callable[[Cursor], None]] = [definition for definition in made if " USING gin " in definition]
    rest: list[str | Callable[[Cursor], None]] = [definition for definition in made if definition not in slow]
    if derived:
        rest.append(derived)
    groups = [group for group in (slow, rest) if group]

    def run(group: list[str | Callable[[Cursor], None]]) -> None:
        with views.transaction() as cur:
            for step in group:
                if isinstance(step, str):
                    cur.execute(step)
                else:
                    step(cur)

    if len(groups) < 2 or not isinstance(views, PostgresViews):
        for group in groups:
            run(group)
        return
    with ThreadPoolExecutor(len(groups), thread_name_prefix="made-again") as pool:
        for done in [pool.submit(run, group) for group in groups]:
            done.result()


def _drop_indexes(views: PostgresViews, tables: list[str]) -> list[str]:
    """Drops the indexes of `tables` that back no constraint; returns their definitions.
    Should the process die before it makes them again, `minqing migrate` does."""
    with views.transaction() as cur:
        found = cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(?) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)",
            [tables],
        )
        for index in found:
            cur.execute(f'DROP INDEX "{index["indexname"]}"')
    return [index["indexdef"] for index in found]
