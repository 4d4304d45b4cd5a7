"""Group load: the cases that concurrent commands of one process load are read in one query.

A command loads its case (every stored event of it) just before deciding. Like the saves
(commands/group_commit.py), loads that arrive while one is under way wait for it and are then
read together: `SELECT … WHERE originator_id = ANY(…)`, one round trip, one snapshot of the log.
Each command still decides on its case as the log holds it after it asked (the read starts
after the request arrived); a save decided on a version another writer has passed still fails
on the log's unique constraint and is re-run, exactly as before. PostgreSQL only: on SQLite
the log is a local file and a read is cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from commands.wakeup import Wakeup

MAX_BATCH = 64


class _Wanted:
    __slots__ = ("done", "error", "events", "key", "lead", "wake")

    def __init__(self, key: UUID) -> None:
        self.key = key
        self.wake = Wakeup()
        self.lead = False
        self.done = False
        self.events: list[StoredEvent] = []
        self.error: BaseException | None = None


class GroupLoad:
    def __init__(self, select_many: Callable[[list[UUID]], dict[UUID, list[StoredEvent]]]) -> None:
        self._select_many = select_many
        self._lock = threading.Lock()
        self._queue: list[_Wanted] = []
        self._busy = False
        self.batches = 0
        self.loaded = 0

    def stored_events(self, key: UUID) -> list[StoredEvent]:
        wanted = _Wanted(key)
        with self._lock:
            self._queue.append(wanted)
            if not self._busy:
                self._busy = wanted.lead = True
        if not wanted.lead:
            wanted.wake.wait()
        if not wanted.done:
            self._lead()
        if wanted.error is not None:
            raise wanted.error
        return wanted.events

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            found = self._select_many(sorted({w.key for w in batch}))
            self.batches += 1
            self.loaded += len(batch)
            for w in batch:
                w.events = found.get(w.key, [])
        except BaseException as error:
            for w in batch:
                w.error = error
        finally:
            for w in batch:
                w.done = True
                w.wake.set()
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].wake.set()
                else:
                    self._busy = False


Select = Callable[[list[UUID]], dict[UUID, list[StoredEvent]]]


def postgres_select_many(recorder: PostgresApplicationRecorder) -> Select:
    """Every stored event of these streams, in version order, in one query."""
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {0}.{1} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

    def select_many(keys: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        found: dict[UUID, list[StoredEvent]] = {}
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(keys),), prepare=True)
            for row in curs.fetchall():
                found.setdefault(row["originator_id"], []).append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
        return found

    return select_many


def project(events: Sequence[Any]) -> Any:
    """The aggregate from its domain events (the library's `project_aggregate`); None when the
    stream holds none, or is not an aggregate's (a number reservation, an idempotency record)."""
    aggregate = None
    for event in events:
        if not hasattr(event, "mutate"):
            return None
        aggregate = event.mutate(aggregate)
    return aggregate
