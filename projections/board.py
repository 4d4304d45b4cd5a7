"""The 13710 supervision board: every case under supervision with its four
checkpoints and a colour, and counts by unit, as of a given moment."""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.area import Area, unit_filter
from projections.checkpoints import GREEN, RED, YELLOW, colour_sql, evaluate
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
    "deadlines_provisional, next_due, reopened_count"
)


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
    table: str = "ledger_cases",
    extra_where: tuple[str, list[Any]] = ("", []),
) -> dict[str, Any]:
    """Judged in the database: each row's colour is a CASE over the next_due
    column the ledger keeps, so no open row is loaded into Python but the
    `limit` listed. `table`/`extra_where` let the board at a past moment run
    the same query over the kept board states (replay.board_at), which carry
    the area's columns too, so the caller's area is ANDed in on either table."""
    in_area, params = area.cases()
    where = [in_area, "accept_due IS NOT NULL"]
    if extra_where[0]:
        where.append(extra_where[0])
        params += extra_where[1]
    for column, value in (filters or {}).items():
        if column not in BOARD_FILTERS:
            raise ValueError(f"not a board filter: {column}")
        where.append(f"{column} = ?")
        params.append(value)
    if not include_closed:
        where.append("status <> 'closed'")
    if table == "ledger_cases":  # a linked duplicate is no item of its own (board_states hold none)
        where.append("main_case IS NULL")
    clause, unit_params = unit_filter(unit)
    if clause:
        where.append(clause)
        params += unit_params
    light = colour_sql(today, yellow_within)
    group = UNIT_COLUMNS[by]
    name = UNIT_NAMES.get(by, group)
    counts = views.query(
        f"SELECT {group} AS unit, MAX({name}) AS name, COUNT(*) AS cases, SUM(supervision_count) AS supervised, "
        "SUM(CASE WHEN reopened_count > 0 THEN 1 ELSE 0 END) AS reopened, "
        + ", ".join(f"SUM(CASE WHEN {light} = '{c}' THEN 1 ELSE 0 END) AS {c}" for c in (RED, YELLOW, GREEN))
        + f" FROM {table} WHERE {' AND '.join(where)} GROUP BY {group}",
        params,
    )
    if colour_filter is not None:
        where.append(f"{light} = ?")
        params.append(colour_filter)
    rank = f"CASE {light} WHEN '{RED}' THEN 0 WHEN '{YELLOW}' THEN 1 ELSE 2 END"
    # Ranked first on the ids alone (on PostgreSQL an index-only scan of the open cases' covering
    # index), then only the listed rows are read whole: sorting every open row with its wide
    # columns (title, names) visited each one's page, most of the board's time on a province.
    ranked = views.query(
        f"SELECT case_id FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY {rank}, COALESCE(resolve_due, ''), number LIMIT ?",
        [*params, limit],
    )
    order = {r["case_id"]: i for i, r in enumerate(ranked)}
    # A ledger row is one per case; a case's board states are told apart by the moment's span.
    listed, listed_params = (f"{extra_where[0]} AND ", list(extra_where[1])) if extra_where[0] else ("", [])
    rows = (
        views.query(
            f"SELECT {BOARD_COLUMNS}, {light} AS colour FROM {table} "
            f"WHERE {listed}case_id IN ({', '.join('?' * len(order))})",
            [*listed_params, *order],
        )
        if order
        else []
    )
    rows.sort(key=lambda r: order[r["case_id"]])
    keys = ("red", "yellow", "green", "supervised")
    units: list[dict[str, Any]] = [
        {
            "unit": r["unit"] or "(none)",
            "name": r["name"] or r["unit"] or "(none)",
            **{k: int(r[k] or 0) for k in (*keys, "reopened")},
        }
        for r in counts
    ]
    units.sort(key=lambda u: (-u["red"], u["unit"]))
    totals = {k: sum(u[k] for u in units) for k in keys} | {"cases": sum(int(r["cases"]) for r in counts)}
    return {
        "as_of": today.isoformat(),
        "yellow_within_working_days": yellow_within,
        "totals": totals,
        "by": by,
        "units": units,
        "cases": [{**_summary(r), "colour": r["colour"], "checkpoints": evaluate(r, today)} for r in rows],
        "cases_total": totals[colour_filter] if colour_filter else totals["cases"],
        # Open cases reopened at least once (不满意重办); each listed case carries its reopened_count.
        "reopened": sum(u["reopened"] for u in units),
    }


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("case_id", "number", "title", "status", "handling_type", "tier", "channel", "street_name", "community_name")
    return {k: row[k] for k in keys} | {
        "grid": row["grid"],
        "grid_name": row["grid_name"],
        "assignee_name": row["assignee_name"],
        "lead_department": row["lead_department"],
        "supervision_count": row["supervision_count"],
        "reopened_count": int(row["reopened_count"] or 0),
        "provisional_deadlines": row["deadlines_provisional"] == "yes",
    }
