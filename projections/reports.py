"""Periodic reports: monthly bulletin (一月一通报), quarterly public notice
(一季一公示, personal data masked) and yearly summary (一年一总结), for any
unit and period."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any

from cases.policy import PolicyVersion
from commands.errors import InvalidInputError
from projections import rollup
from projections.area import Area, and_area
from projections.counts import COUNTS, PROBLEM, REPORT_CONDITIONS
from projections.scores import GROUPS, scores
from reference.model import ReferenceData
from security.masking import mask_name, mask_phone
from storage.views import PostgresViews, Row, SqliteViews

KINDS = {"monthly": "一月一通报", "quarterly": "一季一公示", "yearly": "一年一总结"}
LEVELS = ("district", "street", "community", "grid")
CHILD = {"district": "street", "street": "community", "community": "grid", "grid": "grid"}
MASKING_NOTICE = "本公示已对诉求人姓名、电话等个人信息进行脱敏处理。"


def period_bounds(kind: str, period: str) -> tuple[date, date, str]:
    patterns = {"monthly": r"(\d{4})-(\d{2})", "quarterly": r"(\d{4})-Q([1-4])", "yearly": r"(\d{4})"}
    match = re.fullmatch(patterns[kind], period)
    if not match:
        examples = {"monthly": "2026-03", "quarterly": "2026-Q1", "yearly": "2026"}
        raise InvalidInputError("period", f"{KINDS[kind]}的期间格式应如 {examples[kind]}")
    year = int(match.group(1))
    if kind == "yearly":
        return date(year, 1, 1), date(year, 12, 31), f"{year}年"
    if kind == "quarterly":
        q = int(match.group(2))
        first, last = 3 * q - 2, 3 * q
        return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1]), f"{year}年第{q}季度"
    month = int(match.group(2))
    if not 1 <= month <= 12:
        raise InvalidInputError("period", "月份应在 01 到 12 之间")
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), f"{year}年{month}月"


def unit_level(reference: ReferenceData, unit: str) -> tuple[str, str]:
    for units in reference.grids.values():
        for level in LEVELS:
            if units[level] == unit:
                return level, units[f"{level}_name"]
    raise InvalidInputError("unit", f"未知的单位编码 {unit}")


def report(
    views: SqliteViews | PostgresViews,
    reference: ReferenceData,
    policy: PolicyVersion,
    area: Area,
    *,
    kind: str,
    period: str,
    unit: str | None,
    today: date,
    cases_limit: int | None = None,
    cases_after: str | None = None,
) -> dict[str, Any]:
    """The report of `unit` (default: the caller's own unit, else the district), counting only the area's cases.

    The quarterly notice lists the period's cases by number: all of them (`cases_limit` None: the printed
    notice, the .xlsx), or a page of `cases_limit` after the number `cases_after` (the JSON API: a
    province's quarter is hundreds of thousands of rows, megabytes no dashboard should fetch at once)."""
    start, end, label = period_bounds(kind, period)
    district = next(iter(reference.grids.values()))["district"]
    code = unit or area.home_unit or district
    level, unit_name = unit_level(reference, code)
    scope, scope_params = and_area(area, f"{level} = ?", [code])
    as_of = min(end, today).isoformat()
    # A period is whole months: registered_month BETWEEN its first and last month selects the rows
    # registered from its first to its last day, on the ledger and on the roll-up alike.
    first, last = start.isoformat()[:7], end.isoformat()[:7]
    from_rollup = rollup.covers(area)
    count = _figures_from_rollup if from_rollup else _figures_from_rows
    figures = count(views, scope, scope_params, start.isoformat(), end.isoformat(), as_of)
    where, params = f"{scope} AND registered_month BETWEEN ? AND ?", [*scope_params, first, last]
    bys = [level, CHILD[level], "channel", "category", *(["month"] if kind == "yearly" else [])]
    counted: dict[str, list[dict[str, Any]]] = {}
    if from_rollup:  # every grouping of the report from one pass over the roll-up where the store can
        filters, filter_params = and_area(area, where, params)
        grouped = rollup.grouped_at_once(views, [GROUPS[by] for by in bys], list(COUNTS), filters, filter_params)
        counted = {by: grouped[GROUPS[by][0]] for by in bys}

    def scored(by: str) -> dict[str, Any]:
        rows = counted.get(by)
        return scores(views, policy, area, by=by, where=where, params=params, from_rollup=from_rollup, counted=rows)

    overall = scored(level)["groups"]
    ranking = scored(CHILD[level])
    body: dict[str, Any] = {
        "kind": kind,
        "kind_label": KINDS[kind],
        "title": f"{unit_name}{label}民情诉求办理{KINDS[kind][-2:]}",
        "unit": code,
        "unit_name": unit_name,
        "level": level,
        "period": period,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": as_of,
        "figures": figures,
        "rates": overall[0] if overall else None,
        "ranking": ranking["groups"],
        "by_channel": _breakdown(views, "channel", where, params, counted.get("channel")),
        "by_category": _breakdown(views, "category", where, params, counted.get("category")),
    }
    if kind == "yearly":
        body["by_month"] = scored("month")["groups"]
    if kind == "quarterly":
        body["masking"] = MASKING_NOTICE
        if cases_limit is None:
            listed = views.query(f"SELECT {NOTICE_COLUMNS} FROM ledger_cases WHERE {where} ORDER BY number", params)
        else:
            listed = _notice_page(views, scope, scope_params, start, end, cases_limit + 1, cases_after)
            more = len(listed) > cases_limit
            listed = listed[:cases_limit]
            body["cases_total"] = figures["received"]  # every petition registered in the period, as listed
            body["cases_next"] = listed[-1]["number"] if more else None  # pass as `after` for the next page
        body["cases"] = [
            {
                "number": r["number"],
                "title": r["title"],
                "community_name": r["community_name"],
                "petitioner": mask_name(r["petitioner_name"]),
                "phone": mask_phone(r["petitioner_phone"]),
                "status": r["status"],
                "closed_date": r["closed_date"],
                "rating": r["rating"],
            }
            for r in listed
        ]
    return body


NOTICE_COLUMNS = "number, title, community_name, petitioner_name, petitioner_phone, status, closed_date, rating"


def _notice_page(
    views: SqliteViews | PostgresViews,
    scope: str,
    scope_params: list[Any],
    start: date,
    end: date,
    limit: int,
    after: str | None,
) -> list[Row]:
    """`limit` of the period's cases by number after `after`: each month's first `limit` from the index on
    (registered_month, number), merged. One scan in number order over the whole period would pass every
    other period's rows (numbers lead with the street, not the date)."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month.isoformat()[:7])
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    past = " AND number > ?" if after is not None else ""
    one = f"SELECT * FROM (SELECT {NOTICE_COLUMNS} FROM ledger_cases WHERE {scope} AND registered_month = ?{past} "
    one += f"ORDER BY number LIMIT {int(limit)}) m"
    params: list[Any] = []
    for m in months:
        params += [*scope_params, m, *([after] if after is not None else [])]
    union = " UNION ALL ".join([one] * len(months))
    return views.query(f"SELECT * FROM ({union}) p ORDER BY number LIMIT {int(limit)}", params)


def _figures_from_rows(
    views: SqliteViews | PostgresViews, scope: str, scope_params: list[Any], s: str, e: str, as_of: str
) -> dict[str, int]:
    received_in = "registered_date BETWEEN ? AND ?"
    closed_in = "closed_date BETWEEN ? AND ?"
    # Every petition counts as received; the rest count the problem once (its main case): a linked
    # duplicate closes, runs late and is whistled or supervised with its main case (PROBLEM).
    conditions: dict[str, tuple[str, list[Any]]] = {
        "received": (received_in, [s, e]),
        "problems": (f"{received_in} AND {PROBLEM}", [s, e]),
        "duplicates": (f"{received_in} AND NOT {PROBLEM}", [s, e]),
        "closed": (f"{closed_in} AND {PROBLEM}", [s, e]),
        "closed_on_time": (f"{closed_in} AND {REPORT_CONDITIONS['closed_on_time']}", [s, e]),
        "open_at_end": (f"registered_date <= ? AND (closed_date IS NULL OR closed_date > ?) AND {PROBLEM}", [e, e]),
        "overdue_at_end": (f"{_OVERDUE} AND {PROBLEM}", [e, as_of, as_of]),
        "whistled": (f"{received_in} AND {REPORT_CONDITIONS['whistled']}", [s, e]),
        "supervised": (f"{received_in} AND {REPORT_CONDITIONS['supervised']}", [s, e]),
        "reopened": (f"{received_in} AND reopened_count > 0", [s, e]),  # 不满意重办 (issue 17)
    }
    # One pass over the unit's rows for every figure (was one query per figure).
    sums = ", ".join(f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS {name}" for name, (c, _) in conditions.items())
    (counted,) = views.query(
        f"SELECT {sums} FROM ledger_cases WHERE {scope}",
        [p for _, ps in conditions.values() for p in ps] + scope_params,
    )
    return {name: int(counted[name] or 0) for name in conditions}


_OVERDUE = "registered_date <= ? AND resolve_due < ? AND (closed_date IS NULL OR closed_date > ?)"


def _figures_from_rollup(
    views: SqliteViews | PostgresViews, scope: str, scope_params: list[Any], s: str, e: str, as_of: str
) -> dict[str, int]:
    """The same figures summed from the roll-up: each is a count column over the keys whose months say
    the case was registered in, closed in, or still open at the end of the period (see _figures_from_rows)."""
    first, last = s[:7], e[:7]
    registered = ("registered_month BETWEEN ? AND ?", [first, last])
    closed_in = ("closed_month BETWEEN ? AND ?", [first, last])
    open_at_end = ("registered_month <= ? AND (closed_month = '' OR closed_month > ?)", [last, last])
    sums: dict[str, tuple[str, tuple[str, list[Any]]]] = {
        "received": ("received", registered),
        "problems": ("problems", registered),
        "duplicates": ("duplicates", registered),
        "closed": ("problems", closed_in),  # a key with a closed month holds closed cases only
        "closed_on_time": ("closed_on_time", closed_in),
        "open_at_end": ("problems", open_at_end),
        "whistled": ("whistled", registered),
        "supervised": ("supervised", registered),
        "reopened": ("reopened", registered),
    }
    if as_of == e:
        # A period that has ended is judged at its last day: past the resolve limit there means
        # resolve_due + 1 day falls in its last month or before (due_month, projections.rollup).
        overdue = (f"{open_at_end[0]} AND due_month <> '' AND due_month <= ?", [*open_at_end[1], last])
        sums["overdue_at_end"] = ("problems", overdue)
    columns = ", ".join(f"SUM(CASE WHEN {c} THEN {n} ELSE 0 END) AS {name}" for name, (n, (c, _)) in sums.items())
    # Only keys registered in the period, closed in or after it, or not closed count in any figure.
    relevant = "(registered_month BETWEEN ? AND ? OR closed_month >= ? OR closed_month = '')"
    (counted,) = views.query(
        f"SELECT {columns} FROM {rollup.TABLE} WHERE {scope} AND {relevant}",
        [p for _, (_, ps) in sums.values() for p in ps] + scope_params + [first, last, first],
    )
    figures = {name: int(counted[name] or 0) for name in sums}
    if as_of != e:
        # The current period is judged today, a day the months cannot tell: from the open cases' rows
        # (few, through the partial index on the unclosed cases' resolve_due).
        (row,) = views.query(
            f"SELECT COUNT(*) AS n FROM ledger_cases WHERE {_OVERDUE} AND {PROBLEM} AND {scope}",
            [e, as_of, as_of, *scope_params],
        )
        figures["overdue_at_end"] = int(row["n"])
    order = ("received", "problems", "duplicates", "closed", "closed_on_time", "open_at_end", "overdue_at_end")
    return {name: figures[name] for name in (*order, "whistled", "supervised", "reopened")}


def _breakdown(
    views: SqliteViews | PostgresViews, column: str, where: str, params: list[Any], counted: list[Any] | None
) -> dict[str, int]:
    """Cases received per value of `column`: from the roll-up's groups (`counted`), else from the rows."""
    if counted is not None:
        rows = [{"k": r["unit"], "n": r["received"]} for r in counted]
    else:
        sql = f"SELECT {column} AS k, COUNT(*) AS n FROM ledger_cases WHERE {where} GROUP BY {column}"
        rows = views.query(sql, params)
    return {r["k"]: int(r["n"]) for r in sorted(rows, key=lambda r: (-int(r["n"]), str(r["k"])))}
