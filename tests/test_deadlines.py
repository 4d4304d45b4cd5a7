"""China's working-day calendar and the versioned 13710 policy."""

from __future__ import annotations

from datetime import date

import pytest

from cases.calendar import add_months, add_working_days, is_known_year, is_working_day
from cases.policy import Policy
from cases.vocabulary import HandlingType, Tier
from reference.model import load_policy

UNANNOUNCED_YEAR = 2099


def test_2026_make_up_days_are_working_days() -> None:
    assert is_working_day(date(2026, 1, 4)) == (True, False)  # Sunday, make-up for New Year
    assert is_working_day(date(2026, 2, 14)) == (True, False)  # Saturday before Spring Festival
    assert is_working_day(date(2026, 2, 28)) == (True, False)  # Saturday after it


def test_2026_holidays_are_not_working_days() -> None:
    assert is_working_day(date(2026, 10, 1)) == (False, False)
    assert is_working_day(date(2026, 10, 7)) == (False, False)
    assert is_working_day(date(2026, 2, 17)) == (False, False)  # Spring Festival
    assert is_working_day(date(2026, 3, 7)) == (False, False)  # an ordinary Saturday


def test_one_working_day_after_new_years_eve_is_the_make_up_sunday() -> None:
    assert add_working_days(date(2026, 1, 2), 1).day == date(2026, 1, 4)


def test_national_day_week_is_skipped() -> None:
    assert add_working_days(date(2026, 9, 30), 1).day == date(2026, 10, 8)


def test_same_day_limit_on_a_holiday_falls_on_the_next_working_day() -> None:
    assert add_working_days(date(2026, 10, 3), 0).day == date(2026, 10, 8)
    assert add_working_days(date(2026, 3, 2), 0).day == date(2026, 3, 2)


def test_a_month_limit_lands_on_a_working_day() -> None:
    assert add_months(date(2026, 1, 31), 1).day == date(2026, 2, 28)  # make-up Saturday: working
    assert add_months(date(2026, 9, 3), 1).day == date(2026, 10, 8)  # 10-03 is a holiday


def test_a_year_without_an_official_table_falls_back_to_weekdays_and_says_so() -> None:
    assert not is_known_year(UNANNOUNCED_YEAR)
    due = add_working_days(date(UNANNOUNCED_YEAR, 1, 2), 1)  # a Friday
    assert due.day == date(UNANNOUNCED_YEAR, 1, 5) and due.provisional
    assert not add_working_days(date(2026, 3, 2), 7).provisional


@pytest.mark.parametrize(
    ("handling_type", "tier", "accept", "progress", "resolve"),
    [
        (HandlingType.COMMITTED, Tier.SMALL, "2026-03-03", "2026-03-05", "2026-03-11"),
        (HandlingType.ESCALATED, Tier.BIG, "2026-03-03", "2026-03-05", "2026-04-02"),
        (HandlingType.COMMITTED, Tier.HARD, "2026-03-03", "2026-03-05", "2026-04-02"),
        (HandlingType.IMMEDIATE, Tier.SMALL, "2026-03-02", "2026-03-02", "2026-03-02"),
    ],
)
def test_13710_deadlines(handling_type: HandlingType, tier: Tier, accept: str, progress: str, resolve: str) -> None:
    deadlines = load_policy().in_force(date(2026, 3, 2)).deadlines(handling_type, tier, date(2026, 3, 2))
    assert {k: v["due"] for k, v in deadlines.items()} == {"accept": accept, "progress": progress, "resolve": resolve}
    assert all(v["policy_version"] == "13710-v1" and not v["provisional"] for v in deadlines.values())


def test_the_policy_in_force_on_a_day_is_the_latest_version_started_by_then() -> None:
    base = {"default": {"accept": {"working_days": 1}, "resolve": {"working_days": 7}}, "name": "n"}
    policy = Policy.parse(
        {
            "versions": [
                {**base, "version": "v1", "effective_from": "2020-01-01"},
                {**base, "version": "v2", "effective_from": "2026-07-01", "default": {"resolve": {"working_days": 5}}},
            ]
        }
    )
    assert policy.in_force(date(2026, 6, 30)).version == "v1"
    assert policy.in_force(date(2026, 7, 1)).version == "v2"
    with pytest.raises(LookupError):
        policy.in_force(date(2019, 12, 31))


@pytest.mark.parametrize(
    "bad",
    [
        {"default": {"resolve": {}}},
        {"default": {"resolve": {"working_days": 1, "months": 1}}},
        {"default": {"resolv": {"working_days": 1}}},
        {"default": {"resolve": {"working_days": -1}}},
        {"default": {}, "by_tier": {"huge": {}}},
    ],
)
def test_a_malformed_policy_is_refused(bad: dict) -> None:
    with pytest.raises((ValueError, KeyError)):
        Policy.parse({"versions": [{"version": "v", "name": "n", "effective_from": "2020-01-01", **bad}]})
