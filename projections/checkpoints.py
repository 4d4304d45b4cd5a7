"""13710 checkpoints of one ledger row, judged against a given day.

Computed when read, never stored: "overdue" depends on the clock at query
time, not on when the last event arrived.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cases.calendar import is_working_day

PENDING, ON_TIME, LATE, OVERDUE = "pending", "met_on_time", "met_late", "overdue"
GREEN, YELLOW, RED = "green", "yellow", "red"

# checkpoint -> (the ledger column of when it was met, the column of its due date)
CHECKPOINTS = {
    "deployed": ("accepted_date", "accept_due"),  # 1: deployed within a working day
    "progress": ("progress_date", "progress_due"),  # 3: progress within three
    "resolved": ("resolved_date", "resolve_due"),  # 7 / 10: resolved within the limit
    "cleared": ("closed_date", "clear_due"),  # 0: tracked to the end and cleared
}


def _clear_due(row: dict[str, Any]) -> str | None:
    # A supervision notice sets a new limit for the whole case.
    dues = [d for d in (row.get("resolve_due"), row.get("supervision_due")) if d]
    return max(dues) if dues else None


def evaluate(row: dict[str, Any], today: date) -> dict[str, dict[str, Any]]:
    result = {}
    for name, (met_column, due_column) in CHECKPOINTS.items():
        due = _clear_due(row) if due_column == "clear_due" else row.get(due_column)
        met = row.get(met_column)
        if due is None:
            state = ON_TIME if met else PENDING
        elif met:
            state = ON_TIME if met <= due else LATE
        else:
            state = OVERDUE if today.isoformat() > due else PENDING
        result[name] = {"due": due, "met": met, "state": state}
    return result


def next_due(row: dict[str, Any]) -> str | None:
    """The earliest due date of a checkpoint not yet met: the case is red once
    it is past, yellow once it is near. Kept by the ledger so the board is judged in SQL."""
    dues = []
    for met_column, due_column in CHECKPOINTS.values():
        due = _clear_due(row) if due_column == "clear_due" else row.get(due_column)
        if due and not row.get(met_column):
            dues.append(due)
    return min(dues) if dues else None


def yellow_until(today: date, yellow_within: int) -> date:
    """The last due date still yellow today: `yellow_within` working days ahead."""
    day, working = today, 0
    while True:
        following = date.fromordinal(day.toordinal() + 1)
        working += is_working_day(following)[0]
        if working > yellow_within:
            return day
        day = following


def colour_sql(today: date, yellow_within: int) -> str:
    """`colour` over the ledger's next_due column, for SQL (both stores)."""
    until = yellow_until(today, yellow_within).isoformat()
    return (
        f"CASE WHEN next_due IS NULL THEN '{GREEN}' WHEN next_due < '{today.isoformat()}' THEN '{RED}' "
        f"WHEN next_due <= '{until}' THEN '{YELLOW}' ELSE '{GREEN}' END"
    )


def working_days_until(today: date, due: date) -> int:
    """Working days left before `due` (0 when due today or earlier)."""
    days, day = 0, today
    while day < due:
        day = date.fromordinal(day.toordinal() + 1)
        if is_working_day(day)[0]:
            days += 1
    return days


def colour(checkpoints: dict[str, dict[str, Any]], today: date, yellow_within: int) -> str:
    states = [c["state"] for c in checkpoints.values()]
    if OVERDUE in states:
        return RED
    pending = sorted(c["due"] for c in checkpoints.values() if c["state"] == PENDING and c["due"])
    if pending and working_days_until(today, date.fromisoformat(pending[0])) <= yellow_within:
        return YELLOW
    return GREEN
