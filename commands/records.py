"""Events the application keeps beside the cases, in the same log so that they
commit atomically with the case events they guard."""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def fields_of(cls: type[_T]) -> type[_T]:
    """Tells the type checker what the library's metaclass does at run time: every
    DomainEvent is a frozen dataclass (a second `dataclass()` would fail on it)."""
    return cls


NAMESPACE = uuid5(NAMESPACE_URL, "https://minqing.example/")
# Positions and versions are BIGINT in both stores: a larger number from a client
# is a mistake to answer with 422, not a value to hand to the database.
MAX_POSITION = 2**62


@fields_of
class CaseNumberIssued(DomainEvent):
    """Reserves a case number: its stream is named by the number, so a second
    case given the same number conflicts on save instead of sharing it."""

    number: str
    case_id: str

    @staticmethod
    def stream_id(number: str) -> UUID:
        return uuid5(NAMESPACE, f"case-number/{number}")


@fields_of
class CommandRecorded(DomainEvent):
    """The first result of a command sent with an Idempotency-Key."""

    fingerprint: str
    result: dict[str, Any]

    @staticmethod
    def stream_id(key: str) -> UUID:
        return uuid5(NAMESPACE, f"idempotency/{key}")


@fields_of
class PersonErased(DomainEvent):
    """A petitioner's key was destroyed: who asked and when, in the hash-chained
    log (the person id is a pseudonym; nothing personal is recorded)."""

    person_id: str
    by: dict[str, Any]

    @staticmethod
    def stream_id(person_id: str) -> UUID:
        return uuid5(NAMESPACE, f"person/{person_id}")


def log_table(recorder: Any) -> tuple[str, str, str]:
    """(position column, table, placeholder) of the recorder's event table, for the few
    reads the library does not offer (positions of one stream's events)."""
    if isinstance(recorder, PostgresApplicationRecorder):
        return "notification_id", f'"{recorder.datastore.schema}"."{recorder.events_table_name}"', "%s"
    if isinstance(recorder, SQLiteApplicationRecorder):
        return "rowid", recorder.events_table_name, "?"
    raise TypeError(f"unsupported recorder {type(recorder).__name__}")


def event_position(recorder: Any, originator_id: UUID, version: int) -> int | None:
    """The log position of one stored event, or None if it is not there."""
    column, table, mark = log_table(recorder)
    key: Any = originator_id if isinstance(recorder, PostgresApplicationRecorder) else originator_id.hex
    statement = f"SELECT {column} AS position FROM {table} WHERE originator_id = {mark} AND originator_version = {mark}"
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(statement, (key, version))
        row = cur.fetchone()
    return None if row is None else int(row["position"])


def versions_taken(recorder: Any, keys: list[tuple[UUID, int]]) -> set[tuple[UUID, int]]:
    """Which of these (stream, version) pairs the log already holds: one query, so that a batch of
    saves that failed on a conflict can tell its conflicting commands from the others."""
    if not keys:
        return set()
    _, table, mark = log_table(recorder)
    postgres = isinstance(recorder, PostgresApplicationRecorder)
    ids = sorted({k[0] for k in keys})
    params: list[Any] = list(ids) if postgres else [i.hex for i in ids]
    statement = (
        f"SELECT originator_id, originator_version FROM {table} "
        f"WHERE originator_id IN ({', '.join(mark for _ in params)})"
    )
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    found = {(r["originator_id"] if postgres else UUID(r["originator_id"]), int(r["originator_version"])) for r in rows}
    return found & set(keys)


CASE_TOPIC_PREFIX = "cases.case:Case."


@fields_of
class ExternalOrderRecorded(DomainEvent):
    """Reserves a hotline platform's order number for one case: its stream is named by the
    platform and the number, so importing the same order again conflicts instead of adding a
    second case (issue 17)."""

    platform: str
    external_id: str
    case_id: str

    @staticmethod
    def stream_id(platform: str, external_id: str) -> UUID:
        return uuid5(NAMESPACE, f"external-order/{platform}/{external_id}")


def streams_present(recorder: Any, originator_ids: list[UUID]) -> set[UUID]:
    """Which of these streams have an event: one query per 500 (the import's uniqueness check)."""
    _, table, mark = log_table(recorder)
    postgres = isinstance(recorder, PostgresApplicationRecorder)
    found: set[UUID] = set()
    for i in range(0, len(originator_ids), 500):
        part = originator_ids[i : i + 500]
        keys: list[Any] = part if postgres else [x.hex for x in part]
        marks = ", ".join([mark] * len(part))
        statement = f"SELECT DISTINCT originator_id FROM {table} WHERE originator_id IN ({marks})"
        with recorder.datastore.transaction(commit=False) as cur:
            cur.execute(statement, keys)
            for row in cur.fetchall():
                value = row["originator_id"]
                found.add(value if isinstance(value, UUID) else UUID(str(value)))
    return found
