"""The three rates (三率) and the composite score, by unit, person, channel or
month, with the counts behind each rate. Formulas: docs/read-models.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from cases.policy import PolicyVersion
from projections import rollup
from projections.area import Area, and_area, unit_filter
from projections.counts import COUNTS, COUNTS_SQL
from storage.views import PostgresViews, SqliteViews

GROUPS = {
    "district": ("district", "district_name"),
    "street": ("street", "street_name"),
    "community": ("community", "community_name"),
    "grid": ("grid", "grid_name"),
    "department": ("lead_department", "lead_department"),
    "grid_leader": ("assignee", "assignee_name"),
    "channel": ("channel", "channel"),
    "category": ("category", "category"),
    "month": ("registered_month", "registered_month"),
}


def rates(counts: dict[str, Any], policy: PolicyVersion) -> dict[str, float | None]:
    def ratio(numerator: int, denominator: int) -> float | None:
        return round(numerator / denominator, 4) if denominator else None

    satisfied = counts["satisfied"] + (counts["basically_satisfied"] if policy.count_basically_satisfied else 0)
    response = ratio(counts["responded"], counts["dispatched"])
    # 解决率 judges the problem: its main case's call-back (a duplicate closes with it, unverified).
    resolution = ratio(counts["resolved"], counts.get("problem_callbacks", counts["callbacks"]))
    satisfaction = ratio(satisfied, counts["callbacks"])
    parts = [p for p in (response, resolution, satisfaction) if p is not None]
    composite = (
        round(100 * sum(w * p for w, p in zip(policy.score_weights, parts, strict=True)), 2)
        if len(parts) == len(policy.score_weights)
        else None
    )
    return {
        "response_rate": response,
        "resolution_rate": resolution,
        "satisfaction_rate": satisfaction,
        "composite_score": composite,
    }


def scores(
    views: SqliteViews | PostgresViews,
    policy: PolicyVersion,
    area: Area,
    *,
    by: str = "street",
    where: str = "",
    params: list[Any] | None = None,
    from_rollup: bool = False,
    counted: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`where` names ledger columns; with `from_rollup`, key columns of the roll-up only (same names).
    `counted`: the groups' rows (unit, name, COUNTS) already read (projections.reports)."""
    key, label = GROUPS[by]
    filters, filter_params = and_area(area, where, params or [])
    if counted is not None:
        rows = counted
    elif from_rollup:
        rows = views.query(rollup.grouped(key, label, list(COUNTS), filters), filter_params)
    else:
        selected = f"{key} AS unit, MAX({label}) AS name, {COUNTS_SQL} FROM ledger_cases"
        rows = views.query(f"SELECT {selected} WHERE {filters} GROUP BY {key}", filter_params)
    groups = []
    for row in rows:
        counts = {k: int(v or 0) for k, v in row.items() if k not in ("unit", "name")}
        groups.append({"unit": row["unit"], "name": row["name"], "counts": counts, **rates(counts, policy)})
    groups.sort(key=lambda g: (g["composite_score"] is None, -(g["composite_score"] or 0), str(g["unit"])))
    for rank, group in enumerate(groups, 1):
        group["rank"] = rank if group["composite_score"] is not None else None
    return {
        "by": by,
        "policy_version": policy.version,
        "weights": dict(zip(("response", "resolution", "satisfaction"), policy.score_weights, strict=True)),
        "count_basically_satisfied": policy.count_basically_satisfied,
        "groups": groups,
    }


@dataclass(frozen=True)
class ScoresQuery:
    """What `/scores` may ask, typed: the route only parses; the SQL is built here."""

    by: str = "street"
    unit: str | None = None  # a district, street, community, grid or department code
    month: str | None = None  # YYYY-MM of registration
    registered_from: date | None = None
    registered_to: date | None = None


def scores_of(views: SqliteViews | PostgresViews, policy: PolicyVersion, area: Area, q: ScoresQuery) -> dict[str, Any]:
    where: list[str] = []
    params: list[Any] = []
    if q.unit:
        clause, unit_params = unit_filter(q.unit)
        where.append(clause)
        params += unit_params
    if q.month:
        where.append("registered_month = ?")
        params.append(q.month)
    if q.registered_from:
        where.append("registered_date >= ?")
        params.append(q.registered_from.isoformat())
    if q.registered_to:
        where.append("registered_date <= ?")
        params.append(q.registered_to.isoformat())
    # Registration days are finer than the roll-up's months: a day range reads the rows.
    from_rollup = rollup.covers(area) and not (q.registered_from or q.registered_to)
    return scores(views, policy, area, by=q.by, where=" AND ".join(where), params=params, from_rollup=from_rollup)
