"""The 13710 supervision board: every case under supervision with its four
checkpoints and a colour, and counts by unit, as of a given moment."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from projections.area import Area
from projections.checkpoints import RED, YELLOW, colour, evaluate
from storage.views import PostgresViews, SqliteViews

UNIT_COLUMNS = {
    "district": "district",
    "street": "street",
    "community": "community",
    "grid": "grid",
    "department": "lead_department",
}
BOARD_FILTERS = ("handling_type", "tier", "status", "channel")
UNIT_NAMES = {"district": "district_name", "street": "street_name", "community": "community_name", "grid": "grid_name"}

BOARD_COLUMNS = (
    "case_id, number, title, status, handling_type, tier, channel, district, district_name, street, street_name, "
    "community, community_name, grid, grid_name, assignee_name, lead_department, accepted_date, progress_date, "
    "resolved_date, closed_date, accept_due, progress_due, resolve_due, supervision_due, supervision_count, "
    "deadlines_provisional"
)


def unit_filter(unit: str | None) -> tuple[str, list[str]]:
    """Match a unit code at any level of the hierarchy, or a department."""
    if not unit:
        return "", []
    columns = ("district", "street", "community", "grid", "lead_department")
    return "(" + " OR ".join(f"{c} = ?" for c in columns) + ")", [unit] * len(columns)


def board(
    views: SqliteViews | PostgresViews,
    area: Area,
    *,
    today: date,
    yellow_within: int,
    unit: str | None = None,
    by: str = "street",
    colour_filter: str | None = None,
    include_closed: bool = False,
    limit: int = 100,
    filters: dict[str, str] | None = None,
) -> dict[str, Any]:
    in_area, params = area.cases()
    where = [in_area, "accept_due IS NOT NULL"]
    for column, value in (filters or {}).items():
        if column not in BOARD_FILTERS:
            raise ValueError(f"not a board filter: {column}")
        where.append(f"{column} = ?")
        params.append(value)
    if not include_closed:
        where.append("status <> 'closed'")
    clause, unit_params = unit_filter(unit)
    if clause:
        where.append(clause)
        params += unit_params
    rows = views.query(f"SELECT {BOARD_COLUMNS} FROM ledger_cases WHERE {' AND '.join(where)}", params)

    cases = []
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, str] = {}
    group_column = UNIT_COLUMNS[by]
    for row in rows:
        checkpoints = evaluate(row, today)
        light = colour(checkpoints, today, yellow_within)
        key = row.get(group_column) or "(none)"
        counts[key][light] += 1
        counts[key]["supervised"] += row["supervision_count"] or 0
        names[key] = row.get(UNIT_NAMES.get(by, ""), key) or key
        if colour_filter is None or light == colour_filter:
            cases.append({**_summary(row), "colour": light, "checkpoints": checkpoints})
    rank = {RED: 0, YELLOW: 1}
    cases.sort(key=lambda c: (rank.get(c["colour"], 2), c["checkpoints"]["resolved"]["due"] or "", c["number"]))
    totals = Counter[str]()
    for c in counts.values():
        totals.update(c)
    return {
        "as_of": today.isoformat(),
        "yellow_within_working_days": yellow_within,
        "totals": {k: totals.get(k, 0) for k in ("red", "yellow", "green", "supervised")} | {"cases": len(rows)},
        "by": by,
        "units": [
            {"unit": key, "name": names[key], **{k: c.get(k, 0) for k in ("red", "yellow", "green", "supervised")}}
            for key, c in sorted(counts.items(), key=lambda kv: (-kv[1]["red"], kv[0]))
        ],
        "cases": cases[:limit],
        "cases_total": len(cases),
    }


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("case_id", "number", "title", "status", "handling_type", "tier", "channel", "street_name", "community_name")
    return {k: row[k] for k in keys} | {
        "grid": row["grid"],
        "grid_name": row["grid_name"],
        "assignee_name": row["assignee_name"],
        "lead_department": row["lead_department"],
        "supervision_count": row["supervision_count"],
        "provisional_deadlines": row["deadlines_provisional"] == "yes",
    }
