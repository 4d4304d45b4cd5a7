"""Whistle evaluation (吹哨报到评价): per department, how often it was
whistled, how fast it reported in, the cases it led and how they ended. A
department that transferred its part (转办) before reporting in is counted in
`transferred`, not in `not_reported`."""

from __future__ import annotations

from typing import Any

from projections import rollup
from projections.area import Area
from projections.counts import LED_CONDITIONS
from storage.views import PostgresViews, SqliteViews


def department_evaluation(
    views: SqliteViews | PostgresViews,
    departments: dict[str, str],
    area: Area,
    *,
    report_in_within_hours: int,
    month: str | None = None,
) -> dict[str, Any]:
    """Per department; a department's area is its own row, any other area counts the whistles and led cases in it."""
    limit_seconds = report_in_within_hours * 3600
    if area.department:
        whistles_in, whistle_params = "department = ?", [area.department]
        led_in, led_params = "lead_department = ?", [area.department]
    else:
        led_in, led_params = area.cases()
        whistles_in, whistle_params = f"case_id IN (SELECT case_id FROM ledger_cases WHERE {led_in})", led_params
        if area.everywhere:
            whistles_in, whistle_params = "1 = 1", []  # every whistle: no need to look the cases up
    whistle_filter, params = ("AND blown_month = ?", [month]) if month else ("", [])
    in_area = [*whistle_params, *params]
    # Counted and the median taken in the database: the whistles never come to Python.
    if area.everywhere and rollup.covers(area):
        summed = rollup.whistle_counts(views, report_in_within_hours, month)  # a province's: from the roll-up
    else:
        summed = views.query(
            "SELECT department, COUNT(*) AS whistled, COUNT(seconds_to_report) AS reported_in, "
            "SUM(CASE WHEN seconds_to_report <= ? THEN 1 ELSE 0 END) AS on_time, "
            "SUM(CASE WHEN seconds_to_report IS NULL AND transferred_at IS NOT NULL THEN 1 ELSE 0 END) AS transferred "
            f"FROM ledger_whistles WHERE {whistles_in} {whistle_filter} GROUP BY department",
            [limit_seconds, *in_area],
        )
    counts = {r["department"]: r for r in summed}
    reported = {code: int(r["reported_in"] or 0) for code, r in counts.items()}
    # Every whistle of the area (no month, no case looked up): each department's middle is read off
    # its (department, seconds_to_report) index instead of ranking them all (a province's evaluation).
    direct = (area.everywhere or area.department is not None) and month is None
    where = f"{whistles_in} {whistle_filter}"
    medians = (middle_medians if direct else ranked_medians)(views, where, in_area, reported)
    led_filter, month_params = ("AND registered_month = ?", [month]) if month else ("", [])
    if rollup.covers(area):
        # The cases led, summed from the roll-up (its lead_department is '' where the ledger's is NULL).
        sums = ", ".join(f"SUM({name}) AS {name}" for name in LED_CONDITIONS)
        sql = (
            f"SELECT lead_department AS department, SUM(received) AS led, {sums} FROM {rollup.TABLE} "
            f"WHERE {led_in} AND lead_department <> '' {led_filter} GROUP BY lead_department"
        )
    else:
        sums = ", ".join(f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS {name}" for name, c in LED_CONDITIONS.items())
        sql = (
            f"SELECT lead_department AS department, COUNT(*) AS led, {sums} FROM ledger_cases "
            f"WHERE {led_in} AND lead_department IS NOT NULL {led_filter} GROUP BY lead_department"
        )
    led = {r["department"]: r for r in views.query(sql, [*led_params, *month_params])}
    result = []
    for code in sorted(set(counts) | set(led)):
        whistles = counts.get(code, {})
        whistled, reported_in = int(whistles.get("whistled") or 0), int(whistles.get("reported_in") or 0)
        transferred = int(whistles.get("transferred") or 0)
        cases_led = led.get(code, {})
        result.append(
            {
                "department": code,
                "name": departments.get(code, code),
                "whistled": whistled,
                "reported_in": reported_in,
                "not_reported": whistled - reported_in - transferred,
                "reported_on_time": int(whistles.get("on_time") or 0),
                "median_hours_to_report": round(medians[code] / 3600, 2) if code in medians else None,
                "cases_led": int(cases_led.get("led") or 0),
                "led_closed": int(cases_led.get("led_closed") or 0),
                "led_open": int(cases_led.get("led") or 0) - int(cases_led.get("led_closed") or 0),
                "led_satisfied": int(cases_led.get("led_satisfied") or 0),
                "led_dissatisfied": int(cases_led.get("led_dissatisfied") or 0),
                "transferred": transferred,
            }
        )
    return {"report_in_within_hours": report_in_within_hours, "month": month, "departments": result}


def ranked_medians(
    views: SqliteViews | PostgresViews, where: str, params: list[Any], reported: dict[str, int]
) -> dict[str, float]:
    """Every department's median time to report in, of the whistles `where` selects, in one ranking."""
    return {
        r["department"]: float(r["median"])
        for r in views.query(
            "SELECT department, AVG(seconds_to_report) AS median FROM ("
            "SELECT department, seconds_to_report, "
            "ROW_NUMBER() OVER (PARTITION BY department ORDER BY seconds_to_report) AS rn, "
            "COUNT(*) OVER (PARTITION BY department) AS n FROM ledger_whistles "
            f"WHERE seconds_to_report IS NOT NULL AND {where}"
            ") ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY department",
            params,
        )
    }


def middle_medians(
    views: SqliteViews | PostgresViews, where: str, params: list[Any], reported: dict[str, int]
) -> dict[str, float]:
    """The same, a department at a time: its `reported` count says where its middle one or two are
    (one statement, a UNION ALL of the departments)."""
    departments = sorted(d for d, n in reported.items() if n)
    if not departments:
        return {}
    middle = (
        "SELECT ? AS department, AVG(seconds_to_report) AS median FROM (SELECT seconds_to_report "
        f"FROM ledger_whistles WHERE department = ? AND seconds_to_report IS NOT NULL AND {where} "
        "ORDER BY seconds_to_report LIMIT ? OFFSET ?) middle"
    )
    rows = views.query(
        " UNION ALL ".join([middle] * len(departments)),
        [p for d in departments for p in (d, d, *params, 2 - reported[d] % 2, (reported[d] - 1) // 2)],
    )
    return {r["department"]: float(r["median"]) for r in rows}
