"""The 13710 board as it stood at a past moment: the ledger is folded again
from the events up to that moment into a private in-memory view, and the
board is judged against that moment's date. Nothing live is touched."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from cases.case import Case
from cases.clock import local_date
from commands.cases import Cases
from commands.records import CASE_TOPIC_PREFIX
from projections.area import Area
from projections.board import board
from projections.ledger import Ledger
from projections.runner import create_tables
from storage.views import SqliteViews

PAGE = 5000
# Events are timestamped when decided and logged when committed, so the log's
# time order can lag by the length of a transaction; read a little past the moment.
SKEW = timedelta(minutes=1)


def board_at(
    cases: Cases, moment: datetime, area: Area, *, yellow_within: int | None = None, **options: Any
) -> dict[str, Any]:
    views = SqliteViews(Path(":memory:"))
    try:
        ledger = Ledger()
        create_tables(views, ledger)
        after = 0
        replayed = 0
        while True:
            page = cases.recorder.select_notifications(start=after + 1, limit=PAGE)
            if not page:
                break
            events = []
            past_moment = False
            for n in page:
                if not n.topic.startswith(CASE_TOPIC_PREFIX):
                    continue
                event = cast(Case.Event, cases.mapper.to_domain_event(n))
                if event.timestamp <= moment:
                    events.append((n.id, event))
                elif event.timestamp > moment + SKEW:
                    past_moment = True
            with views.transaction() as cur:
                ledger.apply_batch(cur, events)
            replayed += len(events)
            after = page[-1].id
            if past_moment:
                break
        day = local_date(moment)
        margin = (
            yellow_within if yellow_within is not None else cases.policy.in_force(day).board_yellow_within_working_days
        )
        result = board(views, area, today=day, yellow_within=margin, **options)
        return {**result, "at": moment.isoformat(), "replayed_events": replayed}
    finally:
        views.close()
