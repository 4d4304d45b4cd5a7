"""Whistle evaluation (吹哨报到评价): per department, how often it was
whistled, how fast it reported in, the cases it led and how they ended."""

from __future__ import annotations

from statistics import median
from typing import Any

from projections.area import Area
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
    whistle_filter, params = ("AND blown_month = ?", [month]) if month else ("", [])
    seconds: dict[str, list[int]] = {}
    whistled: dict[str, int] = {}
    for row in views.query(
        f"SELECT department, seconds_to_report FROM ledger_whistles WHERE {whistles_in} {whistle_filter}",
        [*whistle_params, *params],
    ):
        whistled[row["department"]] = whistled.get(row["department"], 0) + 1
        if row["seconds_to_report"] is not None:
            seconds.setdefault(row["department"], []).append(int(row["seconds_to_report"]))
    led_filter, month_params = ("AND registered_month = ?", [month]) if month else ("", [])
    led = {
        r["department"]: r
        for r in views.query(
            "SELECT lead_department AS department, COUNT(*) AS led, "
            "SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS closed, "
            "SUM(CASE WHEN rating IN ('satisfied', 'basically_satisfied') THEN 1 ELSE 0 END) AS satisfied, "
            "SUM(CASE WHEN rating = 'dissatisfied' THEN 1 ELSE 0 END) AS dissatisfied "
            f"FROM ledger_cases WHERE {led_in} AND lead_department IS NOT NULL {led_filter} GROUP BY lead_department",
            [*led_params, *month_params],
        )
    }
    result = []
    for code in sorted(set(whistled) | set(led)):
        times = seconds.get(code, [])
        cases_led = led.get(code, {})
        result.append(
            {
                "department": code,
                "name": departments.get(code, code),
                "whistled": whistled.get(code, 0),
                "reported_in": len(times),
                "not_reported": whistled.get(code, 0) - len(times),
                "reported_on_time": sum(1 for s in times if s <= limit_seconds),
                "median_hours_to_report": round(median(times) / 3600, 2) if times else None,
                "cases_led": int(cases_led.get("led") or 0),
                "led_closed": int(cases_led.get("closed") or 0),
                "led_open": int(cases_led.get("led") or 0) - int(cases_led.get("closed") or 0),
                "led_satisfied": int(cases_led.get("satisfied") or 0),
                "led_dissatisfied": int(cases_led.get("dissatisfied") or 0),
            }
        )
    return {"report_in_within_hours": report_in_within_hours, "month": month, "departments": result}
