"""The rules of second handling, reassignment, transfer and approvals on the pure
aggregate (no I/O, no clock), and their replay: the events rebuild the same case."""

from __future__ import annotations

from datetime import date

import pytest

from cases import errors
from cases.case import Case
from cases.vocabulary import HandlingType, Satisfaction, Status, Tier
from tests.factories import CLERK, GRID_LEADER, HOUSING, RESIDENT, SECOND_GRID_LEADER, SUPERVISOR, TOWNSHIP
from tests.test_case_rules import POLICY, REF, accepted, assigned, at, closed, whistled

FRESH = POLICY.in_force(date(2026, 3, 12)).deadlines(HandlingType.COMMITTED, Tier.BIG, date(2026, 3, 12))


def reopen(case: Case, actor=CLERK, hours: float = 240) -> None:  # type: ignore[no-untyped-def]
    case.reopen(actor, at(hours), reason="不满意", deadlines=FRESH, policy_version="13710-v1")


def replayed(case: Case) -> Case:
    rebuilt: Case | None = None
    for event in case.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def test_a_dissatisfied_case_reopens_to_its_grid_leader_with_fresh_deadlines_and_rates_again() -> None:
    case = closed()
    case.rate(RESIDENT, at(60), satisfaction=Satisfaction.DISSATISFIED, comment="")
    reopen(case)
    assert (case.status, case.assignee, case.reopened_count, case.rating) == (Status.ASSIGNED, GRID_LEADER.id, 1, None)
    assert case.deadlines == FRESH and case.closed_at is None
    case.accept(GRID_LEADER, at(241))
    case.rectify(GRID_LEADER, at(242), summary="再修")
    case.verify(RESIDENT, at(243), passed=True, reason="")
    case.close_case(GRID_LEADER, at(244), summary="销号")
    case.rate(RESIDENT, at(245), satisfaction=Satisfaction.SATISFIED, comment="")
    assert case.rating == "satisfied" and len(case.verifications) == 2


@pytest.mark.parametrize("rating", [Satisfaction.SATISFIED, Satisfaction.BASICALLY_SATISFIED])
def test_no_reopening_on_a_satisfied_rating(rating: Satisfaction) -> None:
    case = closed()
    case.rate(RESIDENT, at(60), satisfaction=rating, comment="")
    case.follow_up(CLERK, at(61), reached=True, resolved=False, note="又坏了")
    with pytest.raises(errors.ReopenNotWarrantedError):
        reopen(case)


def test_a_failed_follow_up_is_a_ground_only_when_it_reached_the_resident_in_this_round() -> None:
    case = closed()
    with pytest.raises(errors.ReopenNotWarrantedError):
        reopen(case)
    case.follow_up(CLERK, at(60), reached=False, resolved=False, note="无人接听")
    with pytest.raises(errors.ReopenNotWarrantedError):
        reopen(case)
    case.follow_up(CLERK, at(61), reached=True, resolved=False, note="仍漏水")
    reopen(case, SUPERVISOR)
    case.accept(GRID_LEADER, at(241))
    case.rectify(GRID_LEADER, at(242), summary="再修")
    case.verify(RESIDENT, at(243), passed=True, reason="")
    case.close_case(GRID_LEADER, at(244), summary="销号")
    # The first round's failed call is no ground for a second reopening.
    with pytest.raises(errors.ReopenNotWarrantedError):
        reopen(case, hours=300)


def test_only_closed_cases_reopen_and_only_the_office_reopens() -> None:
    with pytest.raises(errors.IllegalTransitionError):
        reopen(accepted())
    case = closed()
    case.rate(RESIDENT, at(60), satisfaction=Satisfaction.DISSATISFIED, comment="")
    with pytest.raises(errors.ActorNotAllowedError):
        reopen(case, GRID_LEADER)


def test_reassignment_and_transfer_change_hands_and_replay_the_same() -> None:
    case = assigned()
    second = REF.grid_leaders[SECOND_GRID_LEADER.id]
    with pytest.raises(errors.SameAssigneeError):
        first = REF.grid_leaders[GRID_LEADER.id]
        case.reassign(CLERK, at(1), assignee=first.id, assignee_name=first.name, assignee_grids=first.grids, reason="x")
    case.reassign(CLERK, at(1), assignee=second.id, assignee_name=second.name, assignee_grids=second.grids, reason="x")
    assert (case.assignee, case.status) == (second.id, Status.ASSIGNED)

    handled = whistled()
    handled.transfer(HOUSING, at(3), to_department="shuiwu", reason="属水务")
    assert handled.whistles[0]["departments"] == ["chengguan", "shuiwu"]
    assert not handled.works_on(HOUSING)
    with pytest.raises(errors.NotWhistledError):
        handled.report_in(HOUSING, at(4))
    assert replayed(handled).whistles == handled.whistles


def test_an_approved_extension_moves_the_deadline_a_refused_one_does_not() -> None:
    case = accepted()
    due = case.deadlines["resolve"]["due"]
    case.request_extension(GRID_LEADER, at(2), new_due=date(2026, 4, 30), reason="等配件")
    assert case.deadlines["resolve"]["due"] == due
    with pytest.raises(errors.RequestPendingError):
        case.request_extension(GRID_LEADER, at(3), new_due=date(2026, 5, 30), reason="再等")
    case.decide_request(TOWNSHIP, at(4), request_no=1, approved=False, reason="按原时限")
    assert case.deadlines["resolve"]["due"] == due and case.requests[0]["state"] == "refused"
    case.request_extension(GRID_LEADER, at(5), new_due=date(2026, 4, 30), reason="确需")
    case.decide_request(SUPERVISOR, at(6), request_no=2, approved=True, reason="同意")
    assert case.deadlines["resolve"]["due"] == "2026-04-30" and case.deadlines["resolve"]["extended"]
    events = case.collect_events()
    assert [type(e).__name__ for e in events][-2:] == ["RequestDecided", "DeadlineExtended"]
    rebuilt: Case | None = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None and (rebuilt.deadlines, rebuilt.requests) == (case.deadlines, case.requests)
