"""Recurring problems (每月一题): the month's most frequent problems by category and place, and
the places and persons that petition again and again, so the office can pick the month's problem.

Live queries over the ledger rows (docs/read-models.md, "Recurring problems"): every fact they
need (category, units, location, month, the petitioner's pseudonym, the main case of a duplicate)
is already a column, so a second projection would only copy them. A person is grouped by the
pseudonym the vault derives from the keyed hash of the phone (`petitioner_id`), and shown by a
keyed hash of that, never by name or number in clear.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from commands.errors import InvalidInputError
from projections.area import Area, and_area
from storage.views import PostgresViews, SqliteViews

LEVELS = {"street": "street_name", "community": "community_name", "grid": "grid_name"}
PROBLEMS = "SUM(CASE WHEN main_case IS NULL THEN 1 ELSE 0 END)"  # a linked duplicate is its main case's problem
CASE_FIELDS = "case_id, number, title, category, registered_date, status, main_number, street_name, community_name"
PERSON_SALT = b"recurring-person/"
CASES_SHOWN = 50  # of each group: the office reads a few, the count says how many


@dataclass(frozen=True)
class RecurringQuery:
    """What `/recurring` may ask, typed: the route only parses; the SQL is built here."""

    month: str  # YYYY-MM of registration
    level: str = "community"  # the place the month's problems are counted by: street, community or grid
    window: int = 3  # months, ending with `month`, in which repeats are looked for
    min_count: int = 2  # petitions that make a repeat
    limit: int = 10


def month_range(month: str, window: int) -> tuple[str, str]:
    """(first month of the window, the month), both YYYY-MM; 422 on `month` if it is no month."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise InvalidInputError("month", "月份格式应如 2026-03（月份在 01 到 12 之间）")
    year, number = int(found.group(1)), int(found.group(2))
    index = year * 12 + number - 1 - (window - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}", month


def recurring(
    views: SqliteViews | PostgresViews,
    area: Area,
    q: RecurringQuery,
    *,
    categories: dict[str, str],
    keyed: Callable[[bytes], str],
    today: date,
) -> dict[str, Any]:
    if q.level not in LEVELS:
        raise InvalidInputError("level", f"可选：{'、'.join(LEVELS)}")
    first, month = month_range(q.month, q.window)
    in_month, month_params = and_area(area, "registered_month = ?", [month])
    in_window, window_params = and_area(area, "registered_month BETWEEN ? AND ?", [first, month])

    (totals,) = views.query(
        f"SELECT COUNT(*) AS petitions, {PROBLEMS} AS problems FROM ledger_cases WHERE {in_month}", month_params
    )
    by_category = views.query(
        f"SELECT category, COUNT(*) AS petitions, {PROBLEMS} AS problems FROM ledger_cases WHERE {in_month} "
        "GROUP BY category ORDER BY COUNT(*) DESC, category LIMIT ?",
        [*month_params, q.limit],
    )
    name = LEVELS[q.level]
    by_place = views.query(
        f"SELECT category, {q.level} AS unit, MAX({name}) AS name, MAX(street_name) AS street_name, "
        f"COUNT(*) AS petitions, {PROBLEMS} AS problems, MIN(registered_date) AS first_date, "
        f"MAX(registered_date) AS last_date FROM ledger_cases WHERE {in_month} "
        f"GROUP BY category, {q.level} ORDER BY COUNT(*) DESC, {PROBLEMS} DESC, {q.level}, category LIMIT ?",
        [*month_params, q.limit],
    )
    for place in by_place:
        place["cases"] = _cases(
            views, in_month, month_params, f"category = ? AND {q.level} = ?", [place["category"], place["unit"]]
        )

    # Repeats: at least `min_count` petitions in the window, at least one of them this month.
    repeated = "HAVING COUNT(*) >= ? AND SUM(CASE WHEN registered_month = ? THEN 1 ELSE 0 END) > 0"
    places = views.query(
        "SELECT grid, MAX(grid_name) AS grid_name, MAX(community_name) AS community_name, "
        "MAX(street_name) AS street_name, location, COUNT(*) AS petitions, "
        f"{PROBLEMS} AS problems FROM ledger_cases WHERE {in_window} GROUP BY grid, location {repeated} "
        "ORDER BY COUNT(*) DESC, grid, location LIMIT ?",
        [*window_params, q.min_count, month, q.limit],
    )
    for place in places:
        place["cases"] = _cases(
            views, in_window, window_params, "grid = ? AND location = ?", [place["grid"], place["location"]]
        )
    persons = views.query(
        "SELECT petitioner_id, MAX(petitioner_name) AS petitioner, COUNT(*) AS petitions, "
        f"{PROBLEMS} AS problems FROM ledger_cases WHERE {in_window} AND petitioner_id IS NOT NULL "
        f"GROUP BY petitioner_id {repeated} ORDER BY COUNT(*) DESC, petitioner_id LIMIT ?",
        [*window_params, q.min_count, month, q.limit],
    )
    repeat_persons = []
    for person in persons:
        cases = _cases(views, in_window, window_params, "petitioner_id = ?", [person["petitioner_id"]])
        repeat_persons.append(
            {
                # A keyed hash of the pseudonym: the same person reads the same in every report, and
                # nothing in it leads back to the person without the vault's key.
                "person": keyed(PERSON_SALT + str(person["petitioner_id"]).encode())[:16],
                "petitioner": person["petitioner"],  # the ledger's masked name (张**), or none once erased
                "petitions": int(person["petitions"]),
                "problems": int(person["problems"] or 0),
                "categories": sorted({c["category"] for c in cases}),
                "cases": cases,
            }
        )

    def named(row: dict[str, Any]) -> dict[str, Any]:
        counts = {"petitions": int(row["petitions"]), "problems": int(row["problems"] or 0)}
        return {**row, **counts, "category_name": categories.get(row["category"], row["category"])}

    top = [named(p) for p in by_place]
    return {
        "month": month,
        "window": {"from_month": first, "to_month": month, "months": q.window},
        "as_of": today.isoformat(),
        "level": q.level,
        "petitions": int(totals["petitions"] or 0),
        "problems": int(totals["problems"] or 0),
        "by_category": [named(c) for c in by_category],
        "by_place": top,
        # The office picks the month's problem (每月一题) from these: the most petitions about one
        # category in one place; ties go to the one with more separate problems.
        "candidate": top[0] if top else None,
        "repeat_places": [{**p, "petitions": int(p["petitions"]), "problems": int(p["problems"] or 0)} for p in places],
        "repeat_persons": repeat_persons,
    }


def _cases(
    views: SqliteViews | PostgresViews, scope: str, scope_params: list[Any], where: str, params: list[Any]
) -> list[dict[str, Any]]:
    return views.query(
        f"SELECT {CASE_FIELDS} FROM ledger_cases WHERE {scope} AND {where} "
        f"ORDER BY registered_date, number LIMIT {CASES_SHOWN}",
        [*scope_params, *params],
    )
