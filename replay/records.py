"""Stored event rows as they sit in the log, with their global positions.

eventsourcing reads a case's events without their notification ids, and an
audit needs the stored bytes as well as the decoded event, so these few
queries go to the recorder's own tables, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from commands.errors import CaseNotFoundError
from commands.notices import TRIGGERS, notice_id
from commands.records import CaseNumberIssued, log_table


@dataclass(frozen=True)
class Record:
    position: int
    stored: StoredEvent


_sql = log_table  # (position column, table, placeholder)


def stream_records(app: Application, originator_id: UUID) -> list[Record]:
    """Every stored event of one stream in version order, with its position."""
    recorder: Any = app.recorder  # the SQLite or PostgreSQL recorder: both have a datastore
    column, table, mark = _sql(recorder)
    key: Any = originator_id if isinstance(recorder, PostgresApplicationRecorder) else originator_id.hex
    statement = (
        f"SELECT {column} AS position, originator_version, topic, state FROM {table} "
        f"WHERE originator_id = {mark} ORDER BY originator_version"
    )
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(statement, (key,))
        rows = cur.fetchall()
    return [
        Record(
            int(row["position"]),
            StoredEvent(originator_id, int(row["originator_version"]), row["topic"], bytes(row["state"])),
        )
        for row in rows
    ]


def resolve_case(app: Application, reference: str) -> UUID:
    """A case id, or a case number as printed on the receipt (罗星街道-…)."""
    try:
        return UUID(reference)
    except ValueError:
        pass
    stored = app.recorder.select_events(CaseNumberIssued.stream_id(reference.strip().upper()), limit=1)
    if not stored:
        raise CaseNotFoundError(reference)
    issued = cast(CaseNumberIssued, app.mapper.to_domain_event(stored[0]))
    return UUID(str(issued.case_id))


def streams_records(app: Application, originator_ids: list[UUID]) -> list[Record]:
    """Every stored event of several streams in log order, with its position (a case's notices)."""
    if not originator_ids:
        return []
    recorder: Any = app.recorder
    column, table, mark = _sql(recorder)
    pg = isinstance(recorder, PostgresApplicationRecorder)
    keys: list[Any] = [i if pg else i.hex for i in originator_ids]
    statement = (
        f"SELECT {column} AS position, originator_id, originator_version, topic, state FROM {table} "
        f"WHERE originator_id IN ({', '.join([mark] * len(keys))}) ORDER BY {column}"
    )
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(statement, keys)
        rows = cur.fetchall()
    return [
        Record(
            int(row["position"]),
            StoredEvent(
                row["originator_id"] if pg else UUID(row["originator_id"]),
                int(row["originator_version"]),
                row["topic"],
                bytes(row["state"]),
            ),
        )
        for row in rows
    ]


def notice_outcomes(app: Application, case_id: UUID, records: list[Record]) -> list[tuple[int, Any]]:
    """(position, event) of what became of the case's notices (sent, failed, stopped), in log
    order. Their streams are named by the versions of the case's events that queue a notice
    (commands/notices.py: TRIGGERS), read from the stored topics: only those are asked for."""
    ids = [notice_id(case_id, r.stored.originator_version) for r in records if _queues_notice(r.stored.topic)]
    out = []
    for record in streams_records(app, ids):
        if record.stored.originator_version > 1:  # the first is the queued notice: bookkeeping
            out.append((record.position, app.mapper.to_domain_event(record.stored)))
    return out


def _queues_notice(topic: str) -> bool:
    return topic.rpartition(".")[2] in TRIGGERS  # "cases.case:Case.Closed" -> "Closed"
