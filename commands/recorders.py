"""The library's log recorders with one check added to the save: the person keys that sealed
data in the saved events must still be live when the save commits.

Why (issue 15): a registration seals the petitioner's data with the person's key; looking the
key up in `person_keys` was a database round trip before every save. The vault now keeps the
keys it has used in memory, and the save itself proves the cached key still stands — in the
same transaction as the insert, so no extra round trip. On PostgreSQL the key rows are read
`FOR SHARE`: an erasure (`UPDATE … SET wrapped = NULL`) waits for this commit, or, if it
committed first, the check fails and the save with it (`PersonKeyGoneError`); the command then
forgets the key, seals again (a new person) and retries. On SQLite writers are serialised by
the file lock, which gives the same order.

The PostgreSQL save is the library's, sent more cheaply (issue 15): the same work (the key check,
the lock timeout, `LOCK TABLE … IN EXCLUSIVE MODE`, the notification, the insert and its `RETURNING
notification_id`) in one transaction, but (1) the rows go as four parallel arrays in binary, built
before the transaction (commands/pg_arrays.py) — the library sends one array of a composite type,
which psycopg dumps field by field in Python text format, escaping every byte of every state;
(2) `BEGIN … COMMIT` goes in one pipeline with the lock last, so the table lock is held for the
server's own work and the WAL flush, never across a round trip to this process (which, busy with
other requests, may take milliseconds to answer); (3) five statements instead of seven: the lock
timeout, the NOTIFY (as `pg_notify`) and the key check are one SELECT. Positions still follow
commit order: the lock is taken before the insert and released by the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import DataError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from commands.pg_arrays import BinaryArray, accept_binary_arrays, bytea_array, int8_array, text_array, uuid_array

MESSAGE = "a person key used by this save was erased"


class PersonKeyGoneError(DataError):
    """A person key the saved events were sealed with was erased meanwhile: nothing was saved."""


class PostgresLog(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        table = Identifier(datastore.schema, events_table_name)
        self.uuid_ids = datastore.originator_id_type == "uuid"
        self.insert_rows_statement = (
            SQL(
                "INSERT INTO {0} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::{1}[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
            )
            .format(table, Identifier(datastore.originator_id_type))
            .as_bytes(None)
        )
        # The person keys the batch sealed with, still live: a key gone divides by zero, and the
        # transaction fails with it. FOR SHARE: an erasure waits for this commit.
        keys_live = SQL(
            "(SELECT 1 / (count(*) = %s)::int FROM (SELECT 1 FROM {0} "
            "WHERE person_id = ANY(%s) AND wrapped IS NOT NULL FOR SHARE) AS keys)"
        ).format(Identifier(datastore.schema, "person_keys"))
        # The library's SET LOCAL lock_timeout and NOTIFY, as one statement (pg_notify is NOTIFY; both
        # take effect at commit), with the key check when the batch sealed personal data.
        prologue = SQL("SELECT set_config('lock_timeout', {0}, true), pg_notify({1}, '')").format(
            Literal(f"{datastore.lock_timeout}s"), Literal(self.channel_name)
        )
        self.prologue_statement = prologue.as_bytes(None)
        self.prologue_checking_keys_statement = (prologue + SQL(", ") + keys_live).as_bytes(None)
        self.lock_statement = SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(table).as_bytes(None)
        self.check_keys_statement = (SQL("SELECT ") + keys_live + SQL(" AS live")).as_bytes(None)  # the fallback

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events or self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        # Built before the transaction begins: none of this work is done under the table lock.
        ids = [e.originator_id for e in stored_events]
        columns = (
            uuid_array(cast(list[UUID], ids)) if self.uuid_ids else text_array(map(str, ids)),
            int8_array([e.originator_version for e in stored_events]),
            text_array([e.topic for e in stored_events]),
            bytea_array([e.state for e in stored_events]),
        )
        with self.datastore.get_connection() as conn:
            if conn.info.encoding == "utf-8":  # the topics above were encoded as UTF-8
                return self._save_in_one_pipeline(conn, columns, **kwargs)
        return super().insert_events(stored_events, **kwargs)  # after the connection went back to the pool

    def _save_in_one_pipeline(
        self, conn: Connection[DictRow], columns: tuple[BinaryArray, ...], **kwargs: Any
    ) -> list[int]:
        statements, insert = conn.cursor(), conn.cursor()
        accept_binary_arrays(insert)
        try:
            # One pipeline, one sync: the server runs BEGIN to COMMIT without waiting for this
            # process, and the lock comes last, just before the insert and the commit.
            with conn.pipeline():
                statements.execute(b"BEGIN")
                if persons := sorted(set(kwargs.get("persons") or ())):
                    statements.execute(self.prologue_checking_keys_statement, (len(persons), persons), prepare=True)
                else:
                    statements.execute(self.prologue_statement, prepare=True)
                statements.execute(self.lock_statement, prepare=True)
                insert.execute(self.insert_rows_statement, columns, prepare=True)
                statements.execute(b"COMMIT")
        except BaseException:
            # The transaction failed (a conflict, a key gone): nothing was saved. A connection
            # that cannot even roll back is closed by the pool.
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            raise
        # RETURNING gives the rows in the order of the arrays, as the library's insert does.
        return [row["notification_id"] for row in insert.fetchall()]

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        persons = sorted(set(kwargs.get("persons") or ()))
        if persons:
            curs.execute(self.check_keys_statement, (len(persons), persons))  # the library's save (fallbacks)


class SQLiteLog(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The insert first: it takes the write lock, so the check reads the latest keys (a read
        # first would pin an older snapshot, and its upgrade to a write could fail as "locked").
        positions = super()._insert_events(c, stored_events, **kwargs)
        persons = sorted(set(kwargs.get("persons") or ()))
        if persons:
            marks = ", ".join("?" for _ in persons)
            c.execute(f"SELECT count(*) FROM person_keys WHERE person_id IN ({marks}) AND wrapped IS NOT NULL", persons)
            if c.fetchone()[0] != len(persons):
                raise PersonKeyGoneError(MESSAGE)  # rolls the insert back
        return positions


def recorder_topic(persistence_module: str) -> str | None:
    if persistence_module == "eventsourcing.postgres":
        return f"{__name__}:PostgresLog"
    if persistence_module == "eventsourcing.sqlite":
        return f"{__name__}:SQLiteLog"
    return None


def is_key_gone(error: BaseException) -> bool:
    """The check failed (PostgreSQL reports it as a division by zero in the save's transaction)."""
    return isinstance(error, PersonKeyGoneError) or (isinstance(error, DataError) and "division by zero" in str(error))
