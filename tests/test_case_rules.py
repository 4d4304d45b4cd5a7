"""Every rule of the case, on the pure aggregate (no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from cases import errors
from cases.case import Case
from cases.vocabulary import FeedbackMethod, HandlingType, Satisfaction, Status, SuggestionOutcome, Tier
from reference.model import DEMO_REFERENCE, ReferenceData, load_policy
from tests.factories import (
    CLERK,
    GRID,
    GRID_LEADER,
    HOUSING,
    LEADER,
    LEADER_ELSEWHERE,
    OTHER_TOWNSHIP,
    POLICE,
    RESIDENT,
    SECOND_GRID_LEADER,
    SUPERVISOR,
    TOWNSHIP,
    URBAN,
    registration,
)

REF = ReferenceData.load(DEMO_REFERENCE)
POLICY = load_policy()
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def registered() -> Case:
    fields = registration()
    return Case.register(
        case_id=uuid4(),
        number="350105001-20260302-0001",
        actor=CLERK,
        at=T0,
        units=REF.units_of(GRID) or {},
        channel=fields["channel"],
        category=fields["category"],
        title=fields["title"],
        description=fields["description"],
        location=fields["location"],
        petitioner={"name": fields["petitioner_name"], "phone": fields["petitioner_phone"]},
    )


def classified(handling_type: HandlingType = HandlingType.COMMITTED, tier: Tier = Tier.BIG) -> Case:
    case = registered()
    version = POLICY.in_force(date(2026, 3, 2))
    case.classify(
        CLERK,
        at(0.1),
        handling_type=handling_type,
        tier=tier,
        deadlines=version.deadlines(handling_type, tier, date(2026, 3, 2)),
        policy_version=version.version,
    )
    return case


def assigned(**kw: object) -> Case:
    case = classified(**kw)  # type: ignore[arg-type]
    leader = REF.grid_leaders[GRID_LEADER.id]
    case.assign(CLERK, at(0.2), assignee=leader.id, assignee_name=leader.name, assignee_grids=leader.grids)
    return case


def accepted(**kw: object) -> Case:
    case = assigned(**kw)
    case.accept(GRID_LEADER, at(1))
    return case


def whistled() -> Case:
    case = accepted()
    case.whistle(TOWNSHIP, at(2), departments=["zhujian", "chengguan"], reason="违章搭建导致楼顶渗水")
    return case


def rectified(**kw: object) -> Case:
    case = accepted(**kw)
    case.plan_rectification(
        GRID_LEADER,
        at(3),
        measures="拆除违建，修复防水层",
        responsible_unit="区住建局",
        responsible_person="王建国",
        deadline=date(2026, 3, 20),
    )
    case.rectify(GRID_LEADER, at(48), summary="违建已拆除，防水层已重做")
    return case


def closed() -> Case:
    case = rectified()
    case.verify(RESIDENT, at(50), passed=True, reason="")
    case.close_case(GRID_LEADER, at(51), summary="整改达标，居民检验通过")
    return case


def test_a_registered_case_carries_who_when_and_its_units() -> None:
    case = registered()
    event = case.collect_events()[0]
    assert isinstance(event, Case.Registered)
    assert event.actor == {"id": "CL001", "role": "intake_clerk", "unit": None}
    assert event.timestamp == T0
    assert event.units["grid"] == GRID and event.units["street"] == "350105001"
    assert case.status == Status.REGISTERED


def test_only_intake_roles_register() -> None:
    with pytest.raises(errors.ActorNotAllowedError):
        Case.register(
            case_id=uuid4(),
            number="n",
            actor=RESIDENT,
            at=T0,
            units={},
            channel="hotline",
            category="housing",
            title="t",
            description="d",
            location="l",
            petitioner={},
        )


def test_every_later_event_carries_number_units_and_actor() -> None:
    case = whistled()
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == ["Registered", "Classified", "Assigned", "Accepted", "WhistleBlown"]
    for event in events[1:]:
        assert event.number == case.number
        assert event.units["street"] == "350105001"
        assert event.actor["role"]


def test_classifying_fixes_deadlines_and_records_the_policy_version() -> None:
    case = classified(HandlingType.COMMITTED, Tier.SMALL)
    assert case.policy_version == "13710-v1"
    assert case.deadlines["accept"]["due"] == "2026-03-03"
    assert case.deadlines["resolve"]["due"] == "2026-03-11"
    with pytest.raises(errors.IllegalTransitionError):
        case.classify(
            CLERK, at(1), handling_type=HandlingType.IMMEDIATE, tier=Tier.SMALL, deadlines={}, policy_version="x"
        )


def test_assigning_requires_a_leader_of_the_cases_grid() -> None:
    case = classified()
    elsewhere = REF.grid_leaders[LEADER_ELSEWHERE]
    with pytest.raises(errors.AssigneeNotInGridError):
        case.assign(CLERK, at(1), assignee=elsewhere.id, assignee_name=elsewhere.name, assignee_grids=elsewhere.grids)


def test_assigning_before_classification_is_refused() -> None:
    case = registered()
    leader = REF.grid_leaders[GRID_LEADER.id]
    with pytest.raises(errors.IllegalTransitionError):
        case.assign(CLERK, at(1), assignee=leader.id, assignee_name=leader.name, assignee_grids=leader.grids)


def test_only_the_assignee_accepts() -> None:
    case = assigned()
    with pytest.raises(errors.NotAssigneeError):
        case.accept(SECOND_GRID_LEADER, at(1))
    case.accept(GRID_LEADER, at(1))
    assert case.status == Status.IN_PROGRESS and case.accepted_at == at(1)


def test_a_returned_case_must_be_reassigned_before_anyone_accepts_it() -> None:
    case = assigned()
    with pytest.raises(errors.NotAssigneeError):
        case.return_case(SECOND_GRID_LEADER, at(1), reason="不属于本网格")
    case.return_case(GRID_LEADER, at(1), reason="地址属于隔壁网格")
    assert case.status == Status.RETURNED and case.assignee is None
    with pytest.raises(errors.IllegalTransitionError):
        case.accept(GRID_LEADER, at(2))
    second = REF.grid_leaders[SECOND_GRID_LEADER.id]
    case.assign(CLERK, at(2), assignee=second.id, assignee_name=second.name, assignee_grids=second.grids)
    case.accept(SECOND_GRID_LEADER, at(3))
    assert case.assignee == SECOND_GRID_LEADER.id


def test_progress_is_reported_by_someone_handling_the_case() -> None:
    case = accepted()
    with pytest.raises(errors.ActorNotAllowedError):
        case.report_progress(SECOND_GRID_LEADER, at(2), progress="x")
    case.report_progress(GRID_LEADER, at(2), progress="已联系物业")
    assert case.progress_reports == 1


def test_only_the_township_of_the_cases_street_blows_the_whistle() -> None:
    case = accepted()
    with pytest.raises(errors.ActorNotAllowedError):
        case.whistle(GRID_LEADER, at(2), departments=["zhujian"], reason="r")
    with pytest.raises(errors.NotInAreaError):
        case.whistle(OTHER_TOWNSHIP, at(2), departments=["zhujian"], reason="r")
    with pytest.raises(errors.NoWhistleError):
        case.whistle(TOWNSHIP, at(2), departments=[], reason="r")
    case.whistle(TOWNSHIP, at(2), departments=["zhujian", "chengguan"], reason="r")
    assert case.whistles[0]["departments"] == ["chengguan", "zhujian"]


def test_whistling_needs_an_accepted_case() -> None:
    with pytest.raises(errors.IllegalTransitionError):
        assigned().whistle(TOWNSHIP, at(2), departments=["zhujian"], reason="r")


def test_only_a_whistled_department_reports_in_once_per_whistle() -> None:
    case = whistled()
    with pytest.raises(errors.NotWhistledError):
        case.report_in(POLICE, at(3))
    case.report_in(HOUSING, at(3))
    event = case.collect_events()[-1]
    assert isinstance(event, Case.DepartmentReported) and event.seconds_to_report == 3600
    with pytest.raises(errors.AlreadyReportedError):
        case.report_in(HOUSING, at(4))
    case.whistle(TOWNSHIP, at(5), departments=["zhujian"], reason="再次召集")
    case.report_in(HOUSING, at(6))
    assert case.whistles[1]["reported"].keys() == {"zhujian"}


def test_consultation_comes_after_a_whistle_and_is_led_by_a_whistled_department() -> None:
    case = accepted()
    with pytest.raises(errors.NoWhistleError):
        case.consult(TOWNSHIP, at(2), outcome="o", lead_department="zhujian")
    case.whistle(TOWNSHIP, at(2), departments=["zhujian", "chengguan"], reason="r")
    with pytest.raises(errors.LeadDepartmentNotWhistledError):
        case.consult(TOWNSHIP, at(3), outcome="o", lead_department="gongan")
    case.consult(TOWNSHIP, at(3), outcome="住建牵头，城管配合拆违", lead_department="zhujian")
    assert case.lead_department == "zhujian"
    case.plan_rectification(
        HOUSING, at(4), measures="m", responsible_unit="住建", responsible_person="p", deadline=date(2026, 3, 9)
    )
    case.rectify(URBAN, at(30), summary="已拆除")


def test_a_leader_takes_only_a_hard_case() -> None:
    with pytest.raises(errors.NotHardCaseError):
        accepted(tier=Tier.BIG).take_lead(LEADER, at(2), leader_name="孙大军")
    case = accepted(tier=Tier.HARD)
    with pytest.raises(errors.ActorNotAllowedError):
        case.take_lead(TOWNSHIP, at(2), leader_name="x")
    case.take_lead(LEADER, at(2), leader_name="孙大军")
    assert case.leaders == [LEADER.id]
    case.report_progress(LEADER, at(3), progress="已召开专题会")


def test_a_rectification_plan_cannot_be_due_in_the_past() -> None:
    case = accepted()
    with pytest.raises(errors.DeadlinePassedError):
        case.plan_rectification(
            GRID_LEADER, at(2), measures="m", responsible_unit="u", responsible_person="p", deadline=date(2026, 3, 1)
        )


def test_extension_only_before_the_limit_and_only_later() -> None:
    case = accepted(tier=Tier.SMALL)
    due = date.fromisoformat(case.deadlines["resolve"]["due"])
    with pytest.raises(errors.ActorNotAllowedError):
        case.extend(GRID_LEADER, at(2), new_due=due + timedelta(days=5), reason="r")
    with pytest.raises(errors.DeadlineNotLaterError):
        case.extend(TOWNSHIP, at(2), new_due=due, reason="r")
    case.extend(TOWNSHIP, at(2), new_due=due + timedelta(days=5), reason="需等待材料")
    assert case.deadlines["resolve"]["due"] == (due + timedelta(days=5)).isoformat()
    late = datetime.combine(due + timedelta(days=6), datetime.min.time(), UTC)
    with pytest.raises(errors.DeadlinePassedError):
        case.extend(TOWNSHIP, late, new_due=due + timedelta(days=30), reason="r")


def test_rectifying_needs_an_accepted_case() -> None:
    with pytest.raises(errors.IllegalTransitionError):
        assigned().rectify(GRID_LEADER, at(2), summary="s")


def test_a_failed_verification_reopens_rectification() -> None:
    case = rectified()
    with pytest.raises(errors.IllegalTransitionError):
        case.verify(RESIDENT, at(49), passed=False, reason="  ")
    case.verify(RESIDENT, at(49), passed=False, reason="下雨仍漏水")
    assert case.status == Status.RECTIFYING
    with pytest.raises(errors.VerificationRequiredError):
        case.close_case(GRID_LEADER, at(50), summary="s")
    case.rectify(GRID_LEADER, at(70), summary="重新做了防水")
    case.verify(RESIDENT, at(72), passed=True, reason="")
    assert case.status == Status.VERIFIED


def test_verification_needs_a_rectified_case_and_a_resident() -> None:
    with pytest.raises(errors.IllegalTransitionError):
        accepted().verify(RESIDENT, at(2), passed=True, reason="")
    with pytest.raises(errors.ActorNotAllowedError):
        rectified().verify(GRID_LEADER, at(49), passed=True, reason="")


def test_closing_requires_a_passed_verification() -> None:
    case = rectified()
    with pytest.raises(errors.VerificationRequiredError):
        case.close_case(GRID_LEADER, at(49), summary="s")
    case.verify(RESIDENT, at(50), passed=True, reason="")
    case.close_case(GRID_LEADER, at(51), summary="s")
    assert case.status == Status.CLOSED and case.closed_at == at(51)
    with pytest.raises(errors.CaseClosedError):
        case.close_case(GRID_LEADER, at(52), summary="s")


def test_a_suggestion_closes_once_adopted_or_answered() -> None:
    case = accepted(handling_type=HandlingType.SUGGESTION, tier=Tier.SMALL)
    with pytest.raises(errors.IllegalTransitionError):
        case.close_case(GRID_LEADER, at(2), summary="s")
    case.close_case(GRID_LEADER, at(2), summary="设立爱心驿站", suggestion_outcome=SuggestionOutcome.ADOPTED)
    assert case.status == Status.CLOSED and case.suggestion_outcome == "adopted"


def test_feedback_uses_one_of_the_six_methods_by_someone_handling_it() -> None:
    case = closed()
    with pytest.raises(errors.ActorNotAllowedError):
        case.give_feedback(SECOND_GRID_LEADER, at(52), method=FeedbackMethod.HOME_VISIT, content="c")
    with pytest.raises(errors.IllegalTransitionError):
        assigned().give_feedback(CLERK, at(1), method=FeedbackMethod.ONLINE, content="c")
    case.give_feedback(GRID_LEADER, at(52), method=FeedbackMethod.HOME_VISIT, content="上门答复整改结果")
    assert case.feedback[0]["method"] == "home_visit"
    assert len(FeedbackMethod) == 6


def test_rating_once_and_only_after_closing() -> None:
    with pytest.raises(errors.IllegalTransitionError):
        rectified().rate(RESIDENT, at(49), satisfaction=Satisfaction.SATISFIED, comment="")
    case = closed()
    with pytest.raises(errors.ActorNotAllowedError):
        case.rate(GRID_LEADER, at(53), satisfaction=Satisfaction.SATISFIED, comment="")
    case.rate(RESIDENT, at(53), satisfaction=Satisfaction.BASICALLY_SATISFIED, comment="还行")
    with pytest.raises(errors.AlreadyRatedError):
        case.rate(RESIDENT, at(54), satisfaction=Satisfaction.SATISFIED, comment="")
    assert case.rating == "basically_satisfied"


def test_supervision_notices_only_on_open_cases_by_the_supervision_office() -> None:
    case = accepted()
    with pytest.raises(errors.ActorNotAllowedError):
        case.supervise(TOWNSHIP, at(2), responsible_unit="u", new_due=date(2026, 3, 10), notice="n")
    with pytest.raises(errors.DeadlinePassedError):
        case.supervise(SUPERVISOR, at(2), responsible_unit="u", new_due=date(2026, 3, 1), notice="n")
    case.supervise(SUPERVISOR, at(2), responsible_unit="罗星街道", new_due=date(2026, 3, 10), notice="督办函")
    assert case.supervision_notices[0]["new_due"] == "2026-03-10"
    with pytest.raises(errors.CaseClosedError):
        closed().supervise(SUPERVISOR, at(60), responsible_unit="u", new_due=date(2026, 3, 30), notice="n")


def test_a_closed_case_refuses_further_handling() -> None:
    case = closed()
    with pytest.raises(errors.CaseClosedError):
        case.report_progress(GRID_LEADER, at(60), progress="p")
    with pytest.raises(errors.CaseClosedError):
        case.whistle(TOWNSHIP, at(60), departments=["zhujian"], reason="r")


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    case = closed()
    events = case.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.__dict__ == case.__dict__


def test_recomputing_deadlines_keeps_an_extension() -> None:
    case = accepted(tier=Tier.SMALL)
    due = date.fromisoformat(case.deadlines["resolve"]["due"])
    case.extend(TOWNSHIP, at(2), new_due=due + timedelta(days=5), reason="r")
    shifted = {name: {**d, "due": "2026-12-31"} for name, d in case.deadlines.items()}
    assert case.recompute_deadlines(CLERK, at(3), deadlines=shifted, policy_version="13710-v1")
    assert case.deadlines["resolve"]["due"] == (due + timedelta(days=5)).isoformat()
    assert case.deadlines["accept"]["due"] == "2026-12-31"


def test_every_command_of_the_table_takes_its_body_fields() -> None:
    import inspect

    from cases.commands import COMMANDS
    from commands.cases import Cases

    for command in COMMANDS:
        fields = {name for name in command.body.model_fields if name != "actor"}
        # The application's method when it adds checks, else the case's own: what `Cases.act` calls.
        method = getattr(Cases, command.name, None) or getattr(Case, command.name)
        parameters = inspect.signature(method).parameters
        assert fields <= parameters.keys(), (command.name, fields - parameters.keys())
