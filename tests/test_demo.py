"""The demo loader drives the real commands along every path of the lifecycle."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from cases.clock import utc_now
from commands.records import CASE_TOPIC_PREFIX
from config.settings import Settings
from demo.stories import load_demo
from service import build_cases
from tests.factories import migrated

NOW = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)  # a Friday afternoon in China

EVENT_TYPES = (
    "Registered",
    "Classified",
    "Assigned",
    "Returned",
    "Accepted",
    "ProgressReported",
    "WhistleBlown",
    "DepartmentReported",
    "ConsultationHeld",
    "LeaderTookCase",
    "RectificationPlanned",
    "DeadlineExtended",
    "Rectified",
    "ResidentVerified",
    "Closed",
    "FeedbackGiven",
    "Rated",
    "SupervisionNoticeIssued",
)


def test_the_demo_covers_every_event_of_a_case_in_time_order(tmp_path: Path) -> None:
    cases = build_cases(migrated(Settings(sqlite_path=tmp_path / "demo.sqlite3")))
    try:
        summary = load_demo(cases, count=120, now=NOW)

        assert cases.clock is utc_now  # the real clock is back
        events = [
            cases.mapper.to_domain_event(n)
            for n in cases.recorder.select_notifications(start=1, limit=100000)
            if n.topic.startswith(CASE_TOPIC_PREFIX)
        ]
        kinds = Counter(type(e).__name__ for e in events)
        missing = [k for k in EVENT_TYPES if not kinds[k]]
        assert not missing, f"no {missing} in {kinds}"
        verdicts = {e.passed for e in events if type(e).__name__ == "ResidentVerified"}
        assert verdicts == {True, False}
        assert {e.method for e in events if type(e).__name__ == "FeedbackGiven"} == {
            "home_visit",
            "on_site",
            "online",
            "hotline_callback",
            "written_reply",
            "meeting",
        }
        outcomes = {e.suggestion_outcome for e in events if type(e).__name__ == "Closed"}
        assert {"adopted", "answered"} <= outcomes

        # One case per registration; the log reads in time order, none after `now`.
        registered = [e for e in events if type(e).__name__ == "Registered"]
        assert len(registered) == summary["cases"] == 120
        assert all(re.fullmatch(r"1[3-9]\d{9}", cases.vault.unseal(e.petitioner)["phone"]) for e in registered)
        stamps = [e.timestamp for e in events]
        assert stamps == sorted(stamps) and stamps[-1] <= NOW
        assert summary["events"] == len(events)

        # A return in a two-leader grid goes to the other leader.
        by_case: dict[object, list] = {}
        for e in events:
            by_case.setdefault(e.originator_id, []).append(e)
        handovers = [
            [e.assignee for e in history if type(e).__name__ == "Assigned"]
            for history in by_case.values()
            if any(type(e).__name__ == "Returned" for e in history)
        ]
        assert any(len(set(a)) == 2 for a in handovers)

        # Some cases are left open, some of them overdue and supervised.
        closed = {e.originator_id for e in events if type(e).__name__ == "Closed"}
        assert summary["closed"] == len(closed)
        assert summary["open"] == 120 - len(closed) - summary["closed_with_main"] > 0
        supervised_open = {e.originator_id for e in events if type(e).__name__ == "SupervisionNoticeIssued"} - closed
        assert supervised_open
        assert summary["failed_verifications"] > 0 and summary["whistled"] > 0 and summary["suggestions"] > 0
    finally:
        cases.close()


def test_the_same_seed_tells_the_same_stories(tmp_path: Path) -> None:
    summaries, titles = [], []
    for run in ("a", "b"):
        cases = build_cases(migrated(Settings(sqlite_path=tmp_path / f"{run}.sqlite3")))
        try:
            summaries.append(load_demo(cases, count=30, now=NOW))
            titles.append(
                [
                    cases.mapper.to_domain_event(n).title
                    for n in cases.recorder.select_notifications(start=1, limit=100000)
                    if n.topic == f"{CASE_TOPIC_PREFIX}Registered"
                ]
            )
        finally:
            cases.close()
    assert summaries[0] == summaries[1] and titles[0] == titles[1]
