"""The 13710 board as it stood at a past moment, judged against that moment's date.

The open cases' board rows as they stood are kept by the ledger projection
(projections.board_states): the board at t is one query over the states valid
at t. With closed cases included, the ledger is folded again from the events
up to that moment into a private in-memory view (a replay of the log)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from cases.case import Case
from cases.clock import local_date
from commands.cases import Cases
from commands.records import CASE_TOPIC_PREFIX
from projections.area import Area, and_area
from projections.board import board
from projections.board_states import valid_at
from projections.ledger import Ledger
from projections.runner import create_tables
from storage.views import Cursor, PostgresViews, Row, SqliteViews

PAGE = 5000
# Events are timestamped when decided and logged when committed, so the log's
# time order can lag by the length of a transaction; read a little past the moment.
SKEW = timedelta(minutes=1)


def board_at(
    cases: Cases,
    views: SqliteViews | PostgresViews,
    moment: datetime,
    area: Area,
    *,
    yellow_within: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    if options.get("include_closed"):
        return replayed_board_at(cases, moment, area, yellow_within=yellow_within, **options)
    day = local_date(moment)
    margin = yellow_within if yellow_within is not None else cases.policy.in_force(day).board_yellow_within_working_days
    valid = valid_at(moment)
    with _reader(views) as reader:
        # board() ANDs the caller's area into the states as it does into the ledger (they carry its columns).
        result = board(
            reader, area, today=day, yellow_within=margin, table="board_states", extra_where=valid, **options
        )
        in_area, params = and_area(area, *valid)
        (events,) = reader.query(f"SELECT SUM(version) AS n FROM board_states WHERE {in_area}", params)
    # The events behind the area's open cases' states at that moment.
    return {**result, "at": moment.isoformat(), "replayed_events": int(events["n"] or 0)}


class _OnCursor:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.cur.execute(sql, params)


@contextmanager
def _reader(views: SqliteViews | PostgresViews) -> Iterator[Any]:
    if not isinstance(views, PostgresViews):
        yield views
        return
    with views.transaction() as cur:
        # PostgreSQL multiplies the selectivities of span_to > t and span_from <= t as if they were
        # independent (a quarter of the states) and scans them all; the states valid at t are a few
        # thousand, found by the index (measured: 337 ms scanning, 25 ms through the index, 200 days back).
        cur.execute("SET LOCAL enable_seqscan = off")
        # The same misestimate plans parallel workers for a few thousand rows: their start-up cost more
        # than the scan (measured 200 days back: 23 / 18 / 16 ms a query with two workers).
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield _OnCursor(cur)


def replayed_board_at(
    cases: Cases, moment: datetime, area: Area, *, yellow_within: int | None = None, **options: Any
) -> dict[str, Any]:
    views = SqliteViews(Path(":memory:"))
    try:
        ledger = Ledger(cases.vault)
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
