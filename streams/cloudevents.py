"""A case event as a CloudEvents 1.0 JSON object, the one shape every stream
(feed, live stream, webhooks) publishes. Personal data is masked here."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from cases.case import Case
from commands.cases import PersonalDataVault
from commands.notices import OUTCOME_LABELS, OUTCOMES, NoticeFailed, NoticeSent, NoticeStopped
from replay.history import EVENT_LABELS, notice_payload, payload

Outcome = NoticeSent | NoticeFailed | NoticeStopped
NOTICE_OUTCOMES = (NoticeSent, NoticeFailed, NoticeStopped)

SPECVERSION = "1.0"
TYPE_PREFIX = "cn.minqing.case."
DEFAULT_SOURCE = "urn:minqing:cases"

# Every stored topic of a case event: the feed reads only these rows, never the
# bookkeeping records (case numbers, idempotency) that share the log.
EVENT_CLASSES: dict[str, type[Case.Registered | Case.Event | Outcome]] = {
    **{
        name: cls
        for name in EVENT_LABELS
        if isinstance(cls := getattr(Case, name, None), type) and issubclass(cls, Case.Registered | Case.Event)
    },
    # What became of a notice to the resident (commands/notices.py): published as the case's.
    **OUTCOMES,
}
CASE_TOPICS: tuple[str, ...] = tuple(get_topic(cls) for cls in EVENT_CLASSES.values())
TOPIC_BY_NAME: dict[str, str] = {name: get_topic(cls) for name, cls in EVENT_CLASSES.items()}


def event_type(name: str) -> str:
    return TYPE_PREFIX + name


def sequence(position: int) -> str:
    # The CloudEvents sequence extension is a string that must sort in order:
    # zero-padded, it sorts as text exactly as the positions sort as numbers.
    return f"{position:020d}"


def case_of(event: Case.Event | Outcome) -> UUID:
    """The case an event is about: its stream, or for a notice the case that queued it."""
    return UUID(event.case_id) if isinstance(event, NOTICE_OUTCOMES) else event.originator_id


def to_cloud_event(
    position: int,
    event: Case.Event | Outcome,
    source: str = DEFAULT_SOURCE,
    *,
    clear: bool = False,
    vault: PersonalDataVault | None = None,
) -> dict[str, Any]:
    """Masked personal data unless `clear` (a reader entitled to it, with the vault that holds the keys)."""
    name = type(event).__name__
    notice = isinstance(event, NOTICE_OUTCOMES)
    return {
        "specversion": SPECVERSION,
        "id": f"{event.originator_id}/{event.originator_version}",
        "source": source,
        "type": event_type(name),
        "subject": f"cases/{case_of(event)}",
        "time": event.timestamp.isoformat(),
        "datacontenttype": "application/json",
        "sequence": sequence(position),
        "casenumber": event.number,
        # A notice is not a version of the case: it names the version of the event that queued it.
        "caseversion": event.case_version if isinstance(event, NOTICE_OUTCOMES) else event.originator_version,
        "data": {
            "label": OUTCOME_LABELS[name] if notice else EVENT_LABELS.get(name, name),
            "schema_version": getattr(type(event), "class_version", 1),
            "actor": event.actor,
            "units": event.units,
            **(notice_payload(event) if notice else payload(cast(Case.Event, event), clear=clear, vault=vault)),
        },
    }


def encode(cloud_event: dict[str, Any]) -> bytes:
    return orjson.dumps(cloud_event)
