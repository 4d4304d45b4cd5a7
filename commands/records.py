"""Events the application keeps beside the cases, in the same log so that they
commit atomically with the case events they guard."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent

NAMESPACE = uuid5(NAMESPACE_URL, "https://minqing.example/")


class CaseNumberIssued(DomainEvent):
    """One per case number in a (street, day) sequence: the stream's version
    is the serial, so two writers racing for one number conflict on save."""

    number: str
    case_id: str

    @staticmethod
    def stream_id(street: str, day: str) -> UUID:
        return uuid5(NAMESPACE, f"case-number/{street}/{day}")


class CommandRecorded(DomainEvent):
    """The first result of a command sent with an Idempotency-Key."""

    fingerprint: str
    result: dict[str, Any]

    @staticmethod
    def stream_id(key: str) -> UUID:
        return uuid5(NAMESPACE, f"idempotency/{key}")


CASE_TOPIC_PREFIX = "cases.case:Case."
