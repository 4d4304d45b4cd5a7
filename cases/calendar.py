"""China's official working-day calendar (法定节假日与调休).

The State Council announces each year's holidays and make-up working days in
late autumn; `chinesecalendar` carries the table up to the last announced year.
A date beyond it is judged by weekday alone and marked provisional, so the
deadlines it produced can be recomputed when the package learns the year.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar


@dataclass(frozen=True)
class Due:
    day: date
    provisional: bool  # some day in the count fell in a year without an official table


def is_known_year(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


# Days already judged (issue 15: counting working days was a twentieth of a classification's
# CPU). Kept for the table `chinese_calendar.is_workday` is now; a new table (a newer package,
# or a test's stand-in) starts afresh.
_judged: dict[date, tuple[bool, bool]] = {}
_judged_by: list[object] = [None]


def is_working_day(day: date) -> tuple[bool, bool]:
    """(working?, provisional?)"""
    table = chinese_calendar.is_workday
    if _judged_by[0] is not table:
        _judged.clear()
        _judged_by[0] = table
    known = _judged.get(day)
    if known is None:
        try:
            known = chinese_calendar.is_workday(day), False
        except NotImplementedError:
            known = day.weekday() < 5, True
        if len(_judged) < 100_000:
            _judged[day] = known
    return known


def add_working_days(start: date, days: int) -> Due:
    """The `days`-th working day after `start`; 0 means `start` itself, or the
    next working day when `start` is a holiday (a same-day case raised on a
    holiday is due on the first working day)."""
    provisional = False
    day = start
    working, unsure = is_working_day(day)
    provisional |= unsure
    remaining = days if working or days > 0 else 1
    while remaining > 0:
        day += timedelta(days=1)
        working, unsure = is_working_day(day)
        provisional |= unsure
        if working:
            remaining -= 1
    return Due(day, provisional)


def add_months(start: date, months: int) -> Due:
    """Same day `months` later (clamped to the month's end), moved forward to
    the next working day when it falls on a holiday."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = date(year, month, min(start.day, _calendar.monthrange(year, month)[1]))
    working, provisional = is_working_day(day)
    if working:
        return Due(day, provisional)
    later = add_working_days(day, 0)
    return Due(later.day, provisional or later.provisional)
