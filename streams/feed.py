"""The event feed: case events in global log order, filtered, in pages.

A page ends at `next_after`, the last log position it looked at: every
matching event at or before it has been returned, none after it. The next page
starts there, so pages never skip or repeat an event. This holds while writers
are busy because log positions follow commit order (PostgreSQL inserts take a
table lock; SQLite has one writer), so nothing can later appear below a
position a reader has already passed; rolled-back inserts only leave gaps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from cases.case import Case
from commands.cases import Cases
from commands.errors import InvalidInputError
from replay.history import case_event
from replay.records import notice_outcomes, stream_records
from streams.cloudevents import (
    CASE_TOPICS,
    DEFAULT_SOURCE,
    EVENT_CLASSES,
    NOTICE_OUTCOMES,
    TOPIC_BY_NAME,
    TYPE_PREFIX,
    case_of,
    to_cloud_event,
)

READ_BATCH = 500
SCAN_LIMIT = 20_000  # log rows one page may look at before answering (rare filters)


@dataclass(frozen=True)
class EventFilter:
    """Which events a consumer wants: event types, a unit (grid, community,
    street, district or department), a case. Empty means everything."""

    types: frozenset[str] = frozenset()
    unit: str | None = None
    case: UUID | None = None

    @classmethod
    def parse(cls, types: list[str] | None = None, unit: str | None = None, case: UUID | None = None) -> EventFilter:
        names = set()
        for raw in types or []:
            for item in raw.split(","):
                name = item.strip().removeprefix(TYPE_PREFIX)
                if not name:
                    continue
                if name not in EVENT_CLASSES:
                    raise InvalidInputError("type", f"未知的事件类型 {item.strip()}；可选：{', '.join(EVENT_CLASSES)}")
                names.add(name)
        return cls(frozenset(names), unit or None, case)

    def topics(self) -> tuple[str, ...]:
        return tuple(TOPIC_BY_NAME[n] for n in sorted(self.types)) if self.types else CASE_TOPICS

    def as_dict(self) -> dict[str, Any]:
        return {"types": sorted(self.types), "unit": self.unit, "case": str(self.case) if self.case else None}


def named_units(event: Case.Event) -> set[str]:
    """Units an event brings into a case: its own grid, community, street and
    district, departments whistled or reporting in, lead and responsible units."""
    units = {v for k, v in getattr(event, "units", {}).items() if not k.endswith("_name") and v}
    for name in ("department", "lead_department", "responsible_unit", "to_department"):  # to_department: 转办
        if value := getattr(event, name, None):
            units.add(value)
    for name in ("departments", "participants"):
        units.update(getattr(event, name, None) or [])
    if unit := (getattr(event, "actor", None) or {}).get("unit"):
        units.add(unit)
    return units


@dataclass
class _Known:
    through: int  # version up to which `joins` is complete
    joins: dict[str, int] = field(default_factory=dict)  # unit -> version at which it became involved


class Scope:
    """Which units a case involves as of each of its versions, so a
    department's stream carries a case from the whistle on. Units never leave
    a case, so a version's scope is every unit named at or before it."""

    def __init__(self, cases: Cases, *, keep: int = 100_000) -> None:
        self.cases = cases
        self.keep = keep
        self._known: OrderedDict[UUID, _Known] = OrderedDict()
        self._lock = threading.Lock()

    def involves(self, event: Case.Event, unit: str) -> bool:
        case_id, version = event.originator_id, event.originator_version
        with self._lock:
            known = self._known.get(case_id) or (_Known(0) if version == 1 else None)
            if known is not None and known.through == version - 1:
                # The next event of a case followed in order: no need to read its stream.
                self._join(known, version, named_units(event))
        if known is None or known.through < version:
            known = self._load(case_id)
        with self._lock:
            self._known[case_id] = known
            self._known.move_to_end(case_id)
            while len(self._known) > self.keep:
                self._known.popitem(last=False)
        joined = known.joins.get(unit)
        return joined is not None and joined <= version

    @staticmethod
    def _join(known: _Known, version: int, units: set[str]) -> None:
        for unit in units:
            known.joins.setdefault(unit, version)
        known.through = version

    def _load(self, case_id: UUID) -> _Known:
        known = _Known(0)
        for record in stream_records(self.cases, case_id):
            event = case_event(self.cases, record)
            self._join(known, event.originator_version, named_units(event))
        return known


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next_after: int
    more: bool  # stopped at the limit or the scan cap, not at the end of the log


class Feed:
    def __init__(self, cases: Cases, *, source: str = DEFAULT_SOURCE) -> None:
        self.cases = cases
        self.source = source
        self.scope = Scope(cases)

    def head(self) -> int:
        return self.cases.recorder.max_notification_id() or 0

    def matches(self, event: Case.Event, flt: EventFilter) -> bool:
        if flt.types and type(event).__name__ not in flt.types:
            return False
        if flt.case is not None and case_of(event) != flt.case:
            return False
        if flt.unit is not None and isinstance(event, NOTICE_OUTCOMES):
            return flt.unit in named_units(event)  # a notice carries the units of its case's registration
        return flt.unit is None or self.scope.involves(event, flt.unit)

    def cloud_event(self, position: int, event: Case.Event, clear: bool = False) -> dict[str, Any]:
        return to_cloud_event(position, event, self.source, clear=clear, vault=self.cases.vault)

    def page(
        self, flt: EventFilter, after: int, limit: int, *, clear: bool = False, scan_limit: int = SCAN_LIMIT
    ) -> Page:
        """`clear`: personal data decrypted, for readers entitled to it; masked otherwise."""
        if flt.case is not None:
            return self._case_page(flt, after, limit, clear)
        out: list[dict[str, Any]] = []
        cursor, scanned = after, 0
        mapper = self.cases.mapper
        # Everything at or below the head read now has committed (positions
        # follow commit order), so a short batch means the page reached it.
        head = self.head()
        while scanned < scan_limit:
            want = min(READ_BATCH, scan_limit - scanned)
            batch = self.cases.recorder.select_notifications(start=cursor + 1, limit=want, topics=flt.topics())
            for notification in batch:
                event = cast(Case.Event, mapper.to_domain_event(notification))  # flt.topics() are the case's
                cursor = notification.id
                if self.matches(event, flt):
                    out.append(self.cloud_event(notification.id, event, clear))
                    if len(out) == limit:
                        return Page(out, cursor, True)
            scanned += len(batch)
            if len(batch) < want:
                return Page(out, max(cursor, head), False)
        return Page(out, cursor, True)

    def _case_page(self, flt: EventFilter, after: int, limit: int, clear: bool) -> Page:
        assert flt.case is not None
        head = self.head()
        case_records = stream_records(self.cases, flt.case)
        events = [(r.position, case_event(self.cases, r)) for r in case_records if r.position > after]
        if case_records:
            # What became of its notices to the resident, in log order among its events.
            notices = notice_outcomes(self.cases, flt.case, case_records)
            events = sorted(events + [(p, e) for p, e in notices if p > after], key=lambda pe: pe[0])
        out: list[dict[str, Any]] = []
        for i, (position, event) in enumerate(events):
            if self.matches(event, flt):
                out.append(self.cloud_event(position, event, clear))
            if len(out) == limit:
                return Page(out, position, i < len(events) - 1)
        # The case's streams are complete up to the log's head as read now.
        return Page(out, max([after, head, *(p for p, _ in events)]), False)
