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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import DataError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

MESSAGE = "a person key used by this save was erased"


class PersonKeyGoneError(DataError):
    """A person key the saved events were sealed with was erased meanwhile: nothing was saved."""


class PostgresLog(PostgresApplicationRecorder):
    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        persons = sorted(set(kwargs.get("persons") or ()))
        if persons:
            # Pipelined with the insert: a key gone divides by zero and the transaction fails.
            curs.execute(
                SQL(
                    "SELECT 1 / (count(*) = %s)::int AS live FROM (SELECT 1 FROM {0} "
                    "WHERE person_id = ANY(%s) AND wrapped IS NOT NULL FOR SHARE) AS keys"
                ).format(Identifier(self.datastore.schema, "person_keys")),
                (len(persons), persons),
            )


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
