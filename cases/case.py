"""The petition case (诉求件): every action is an immutable event.

Public methods check the rules and receive every computed value (time, ids,
deadlines) from the caller; the events' `apply` methods only assign, because
they run again on every replay. Each event carries its actor, the case number
and the case's units, so a reader never needs to load the aggregate.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from cases import errors
from cases.actor import Actor
from cases.clock import local_date
from cases.commands import BY_NAME, CaseCommand, OnCase
from cases.vocabulary import (
    STATUS_LABELS,
    FeedbackMethod,
    HandlingType,
    Role,
    Satisfaction,
    Status,
    SuggestionOutcome,
    Tier,
)


class Case(Aggregate):
    if TYPE_CHECKING:
        # The state, assigned only by the events' `apply` (declared here for the type checker).
        number: str
        units: dict[str, Any]
        channel: str
        category: str
        title: str
        description: str
        location: str
        petitioner: dict[str, Any]
        registered_at: datetime
        registered_by: dict[str, Any]
        status: Status
        handling_type: HandlingType | None
        tier: Tier | None
        deadlines: dict[str, Any]
        policy_version: str | None
        assignee: str | None
        accepted_at: datetime | None
        whistles: list[dict[str, Any]]
        lead_department: str | None
        leaders: list[str]
        rectification: dict[str, Any] | None
        rectified_at: datetime | None
        verifications: list[dict[str, Any]]
        closed_at: datetime | None
        suggestion_outcome: str | None
        feedback: list[dict[str, Any]]
        rating: str | None
        supervision_notices: list[dict[str, Any]]
        progress_reports: int
        notices_declined: bool  # set by NoticesOptedOut only: read with getattr(…, False)

    class Event(Aggregate.Event):
        actor: dict[str, Any]
        number: str
        units: dict[str, Any]

    class Registered(Aggregate.Created):
        actor: dict[str, Any]
        number: str
        units: dict[str, Any]
        channel: str
        category: str
        title: str
        description: str
        location: str
        petitioner: dict[str, str]

        def apply(self, case: Case) -> None:
            case.number = self.number
            case.units = self.units
            case.channel = self.channel
            case.category = self.category
            case.title = self.title
            case.description = self.description
            case.location = self.location
            case.petitioner = self.petitioner
            case.registered_at = self.timestamp
            case.registered_by = self.actor
            case.status = Status.REGISTERED
            case.handling_type = None
            case.tier = None
            case.deadlines = {}
            case.policy_version = None
            case.assignee = None
            case.accepted_at = None
            case.whistles = []
            case.lead_department = None
            case.leaders = []
            case.rectification = None
            case.rectified_at = None
            case.verifications = []
            case.closed_at = None
            case.suggestion_outcome = None
            case.feedback = []
            case.rating = None
            case.supervision_notices = []
            case.progress_reports = 0

    class Classified(Event):
        handling_type: str
        tier: str
        deadlines: dict[str, Any]
        policy_version: str

        def apply(self, case: Case) -> None:
            case.handling_type = HandlingType(self.handling_type)
            case.tier = Tier(self.tier)
            case.deadlines = self.deadlines
            case.policy_version = self.policy_version
            case.status = Status.CLASSIFIED

    class DeadlinesRecomputed(Event):
        deadlines: dict[str, Any]
        policy_version: str

        def apply(self, case: Case) -> None:
            case.deadlines = self.deadlines
            case.policy_version = self.policy_version

    class Assigned(Event):
        assignee: str
        assignee_name: str

        def apply(self, case: Case) -> None:
            case.assignee = self.assignee
            case.status = Status.ASSIGNED

    class Returned(Event):
        reason: str

        def apply(self, case: Case) -> None:
            case.assignee = None
            case.status = Status.RETURNED

    class Accepted(Event):
        def apply(self, case: Case) -> None:
            case.accepted_at = self.timestamp
            case.status = Status.IN_PROGRESS

    class ProgressReported(Event):
        progress: str

        def apply(self, case: Case) -> None:
            case.progress_reports += 1

    class WhistleBlown(Event):
        whistle_no: int
        departments: list[str]
        reason: str

        def apply(self, case: Case) -> None:
            case.whistles.append(
                {
                    "no": self.whistle_no,
                    "departments": list(self.departments),
                    "blown_at": self.timestamp.isoformat(),
                    "reported": {},
                }
            )

    class DepartmentReported(Event):
        whistle_no: int
        department: str
        seconds_to_report: int

        def apply(self, case: Case) -> None:
            whistle = case.whistles[self.whistle_no - 1]
            whistle["reported"][self.department] = self.timestamp.isoformat()

    class ConsultationHeld(Event):
        outcome: str
        lead_department: str
        participants: list[str]

        def apply(self, case: Case) -> None:
            case.lead_department = self.lead_department

    class LeaderTookCase(Event):
        leader: str
        leader_name: str

        def apply(self, case: Case) -> None:
            case.leaders.append(self.leader)

    class RectificationPlanned(Event):
        measures: str
        responsible_unit: str
        responsible_person: str
        deadline: str

        def apply(self, case: Case) -> None:
            case.rectification = {
                "measures": self.measures,
                "responsible_unit": self.responsible_unit,
                "responsible_person": self.responsible_person,
                "deadline": self.deadline,
            }
            case.status = Status.RECTIFYING

    class DeadlineExtended(Event):
        deadline: str
        previous_deadline: str
        new_due: str
        reason: str

        def apply(self, case: Case) -> None:
            case.deadlines = {
                **case.deadlines,
                self.deadline: {**case.deadlines[self.deadline], "due": self.new_due, "extended": True},
            }

    class Rectified(Event):
        summary: str

        def apply(self, case: Case) -> None:
            case.rectified_at = self.timestamp
            case.status = Status.RECTIFIED

    class ResidentVerified(Event):
        passed: bool
        reason: str

        def apply(self, case: Case) -> None:
            case.verifications.append({"passed": self.passed, "reason": self.reason})
            case.status = Status.VERIFIED if self.passed else Status.RECTIFYING

    class Closed(Event):
        handling_type: str
        suggestion_outcome: str | None
        summary: str

        def apply(self, case: Case) -> None:
            case.suggestion_outcome = self.suggestion_outcome
            case.closed_at = self.timestamp
            case.status = Status.CLOSED

    class FeedbackGiven(Event):
        """v2 records whether the petitioner was reached (回访未接通 is feedback
        attempted, not given). Every v1 feedback was delivered, so v1 reads as reached."""

        class_version = 2

        method: str
        content: str
        reached: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reached"] = True

        def apply(self, case: Case) -> None:
            case.feedback.append({"method": self.method, "at": self.timestamp.isoformat(), "reached": self.reached})

    class Rated(Event):
        satisfaction: str
        comment: str

        def apply(self, case: Case) -> None:
            case.rating = self.satisfaction

    class SupervisionNoticeIssued(Event):
        responsible_unit: str
        new_due: str
        notice: str

        def apply(self, case: Case) -> None:
            case.supervision_notices.append(
                {
                    "responsible_unit": self.responsible_unit,
                    "new_due": self.new_due,
                    "issued_at": self.timestamp.isoformat(),
                }
            )

    # --- notices to residents (短信): the petitioner declines them --------------

    class NoticesOptedOut(Event):
        """No more notices on this case; the notice worker stops them for the same person's
        other cases too (it reads who from the case: the event names nobody, so a masked
        reader of the feed cannot link one person's cases by it)."""

        def apply(self, case: Case) -> None:
            case.notices_declined = True

    # State is assigned by Registered.apply and later events (no class-level
    # annotations: the library would turn them into __init__ parameters).

    @classmethod
    def register(
        cls,
        *,
        case_id: UUID,
        number: str,
        actor: Actor,
        at: datetime,
        units: dict[str, Any],
        channel: str,
        category: str,
        title: str,
        description: str,
        location: str,
        petitioner: dict[str, str],
        notices: bool = True,
    ) -> Case:
        if actor.role not in (Role.INTAKE_CLERK, Role.GRID_LEADER):
            raise errors.ActorNotAllowedError("只有民情信息员（登记员）或网格长可以登记诉求。")
        case = cls._create(
            cls.Registered,
            id=case_id,
            timestamp=at,
            actor=actor.as_dict(),
            number=number,
            units=units,
            channel=channel,
            category=category,
            title=title,
            description=description,
            location=location,
            petitioner=petitioner,
        )
        if not notices:
            case._decline_notices(actor, at)  # 登记时即表示不接收短信：saved with the registration
        return case

    # --- commands -----------------------------------------------------------

    def classify(
        self,
        actor: Actor,
        at: datetime,
        *,
        handling_type: HandlingType,
        tier: Tier,
        deadlines: dict[str, Any],
        policy_version: str,
    ) -> None:
        self._may(actor, "classify")
        self._emit(
            self.Classified,
            actor,
            at,
            handling_type=handling_type.value,
            tier=tier.value,
            deadlines=deadlines,
            policy_version=policy_version,
        )

    def recompute_deadlines(
        self, actor: Actor, at: datetime, *, deadlines: dict[str, Any], policy_version: str
    ) -> bool:
        """Re-derive deadlines once a calendar year is published; False if unchanged."""
        self._may(actor, "recompute_deadlines")
        # Extensions and supervision limits are decisions, not derivations: keep them.
        merged = {
            name: deadlines.get(name, current) if not current.get("extended") else current
            for name, current in self.deadlines.items()
        }
        if merged == self.deadlines:
            return False
        self._emit(self.DeadlinesRecomputed, actor, at, deadlines=merged, policy_version=policy_version)
        return True

    def assign(
        self,
        actor: Actor,
        at: datetime,
        *,
        assignee: str,
        assignee_name: str,
        assignee_grids: frozenset[str],
    ) -> None:
        self._may(actor, "assign")
        if self.units["grid"] not in assignee_grids:
            raise errors.AssigneeNotInGridError(
                f"{assignee_name}不是本案所在网格（{self.units['grid_name']}）的网格长，请改派给该网格的网格长。"
            )
        self._emit(self.Assigned, actor, at, assignee=assignee, assignee_name=assignee_name)

    def return_case(self, actor: Actor, at: datetime, *, reason: str) -> None:
        self._may(actor, "return_case")
        self._emit(self.Returned, actor, at, reason=reason)

    def accept(self, actor: Actor, at: datetime) -> None:
        self._may(actor, "accept")
        self._emit(self.Accepted, actor, at)

    def report_progress(self, actor: Actor, at: datetime, *, progress: str) -> None:
        self._may(actor, "report_progress")
        self._emit(self.ProgressReported, actor, at, progress=progress)

    def whistle(self, actor: Actor, at: datetime, *, departments: list[str], reason: str) -> None:
        self._may(actor, "whistle")
        if not departments:
            raise errors.NoWhistleError("吹哨必须至少召集一个职能部门。")
        self._emit(
            self.WhistleBlown,
            actor,
            at,
            whistle_no=len(self.whistles) + 1,
            departments=sorted(set(departments)),
            reason=reason,
        )

    def report_in(self, actor: Actor, at: datetime) -> None:
        self._may(actor, "report_in")
        department = actor.unit or ""
        summoned = [w for w in self.whistles if department in w["departments"]]
        if not summoned:
            raise errors.NotWhistledError(f"本案没有向部门 {department} 吹哨，无需报到。")
        whistle = summoned[-1]
        if department in whistle["reported"]:
            raise errors.AlreadyReportedError(f"部门 {department} 已就第 {whistle['no']} 次吹哨报到，不能重复报到。")
        blown_at = datetime.fromisoformat(whistle["blown_at"])
        self._emit(
            self.DepartmentReported,
            actor,
            at,
            whistle_no=whistle["no"],
            department=department,
            seconds_to_report=max(0, int((at - blown_at).total_seconds())),
        )

    def consult(self, actor: Actor, at: datetime, *, outcome: str, lead_department: str) -> None:
        self._may(actor, "consult")
        if not self.whistles:
            raise errors.NoWhistleError("联动会商须在吹哨之后召开：请先吹哨召集部门。")
        whistled = sorted({d for w in self.whistles for d in w["departments"]})
        if lead_department not in whistled:
            raise errors.LeadDepartmentNotWhistledError(
                f"牵头部门 {lead_department} 不在被吹哨的部门（{'、'.join(whistled)}）之中。"
            )
        self._emit(
            self.ConsultationHeld,
            actor,
            at,
            outcome=outcome,
            lead_department=lead_department,
            participants=whistled,
        )

    def take_lead(self, actor: Actor, at: datetime, *, leader_name: str) -> None:
        self._may(actor, "take_lead")
        if self.tier != Tier.HARD:
            raise errors.NotHardCaseError("领导包案只适用于难事（分级为“难事”）的案件。")
        if actor.id in self.leaders:
            raise errors.IllegalTransitionError(f"{leader_name}已包案，无需重复。")
        self._emit(self.LeaderTookCase, actor, at, leader=actor.id, leader_name=leader_name)

    def plan_rectification(
        self,
        actor: Actor,
        at: datetime,
        *,
        measures: str,
        responsible_unit: str,
        responsible_person: str,
        deadline: date,
    ) -> None:
        self._may(actor, "plan_rectification")
        if deadline < local_date(at):
            raise errors.DeadlinePassedError(f"整改时限 {deadline} 已经过去，请定一个今天或以后的日期。")
        self._emit(
            self.RectificationPlanned,
            actor,
            at,
            measures=measures,
            responsible_unit=responsible_unit,
            responsible_person=responsible_person,
            deadline=deadline.isoformat(),
        )

    def extend(self, actor: Actor, at: datetime, *, new_due: date, reason: str) -> None:
        self._may(actor, "extend")
        current = date.fromisoformat(self.deadlines["resolve"]["due"])
        if local_date(at) > current:
            raise errors.DeadlinePassedError(f"办结时限 {current} 已过，延期须在时限届满前申请；请改由督查室发督办函。")
        if new_due <= current:
            raise errors.DeadlineNotLaterError(f"新的时限必须晚于现有时限 {current}。")
        self._emit(
            self.DeadlineExtended,
            actor,
            at,
            deadline="resolve",
            previous_deadline=current.isoformat(),
            new_due=new_due.isoformat(),
            reason=reason,
        )

    def rectify(self, actor: Actor, at: datetime, *, summary: str) -> None:
        self._may(actor, "rectify")
        self._emit(self.Rectified, actor, at, summary=summary)

    def verify(self, actor: Actor, at: datetime, *, passed: bool, reason: str) -> None:
        self._may(actor, "verify")
        if not passed and not reason.strip():
            raise errors.IllegalTransitionError("检验不通过时必须写明原因，整改单位才能据此返工。")
        self._emit(self.ResidentVerified, actor, at, passed=passed, reason=reason)

    def close_case(
        self,
        actor: Actor,
        at: datetime,
        *,
        summary: str,
        suggestion_outcome: SuggestionOutcome | None = None,
    ) -> None:
        self._may(actor, "close_case", status=False)  # its own: a suggestion needs no verification
        if self.status == Status.CLOSED:
            raise errors.CaseClosedError(f"案件 {self.number} 已销号。")
        if self.handling_type == HandlingType.SUGGESTION:
            self._require_status(BY_NAME["close_case"])
            if suggestion_outcome is None:
                raise errors.IllegalTransitionError("建议件销号须写明建议被采纳（adopted）还是已答复（answered）。")
        elif self.status != Status.VERIFIED:
            raise errors.VerificationRequiredError(
                f"案件当前状态为“{STATUS_LABELS[self.status]}”：须整改结果达标、居民检验通过后，方可销号。"
            )
        self._emit(
            self.Closed,
            actor,
            at,
            handling_type=str(self.handling_type),
            suggestion_outcome=suggestion_outcome.value if suggestion_outcome else None,
            summary=summary,
        )

    def give_feedback(
        self, actor: Actor, at: datetime, *, method: FeedbackMethod, content: str, reached: bool = True
    ) -> None:
        self._may(actor, "give_feedback")
        self._emit(self.FeedbackGiven, actor, at, method=method.value, content=content, reached=reached)

    def rate(self, actor: Actor, at: datetime, *, satisfaction: Satisfaction, comment: str) -> None:
        self._may(actor, "rate")
        if self.rating is not None:
            raise errors.AlreadyRatedError(f"案件 {self.number} 已经评议过，每件只能评议一次。")
        self._emit(self.Rated, actor, at, satisfaction=satisfaction.value, comment=comment)

    def supervise(self, actor: Actor, at: datetime, *, responsible_unit: str, new_due: date, notice: str) -> None:
        self._may(actor, "supervise")
        if new_due < local_date(at):
            raise errors.DeadlinePassedError(f"督办时限 {new_due} 已经过去，请定一个今天或以后的日期。")
        self._emit(
            self.SupervisionNoticeIssued,
            actor,
            at,
            responsible_unit=responsible_unit,
            new_due=new_due.isoformat(),
            notice=notice,
        )

    # --- notices to residents (短信) ------------------------------------------

    def opt_out_notices(self, actor: Actor, at: datetime) -> bool:
        """The resident, or a clerk on their behalf, declines notices; False if already declined."""
        self._may(actor, "opt_out_notices")
        return self._decline_notices(actor, at)

    def _decline_notices(self, actor: Actor, at: datetime) -> bool:
        if getattr(self, "notices_declined", False):
            return False
        self._emit(self.NoticesOptedOut, actor, at)
        return True

    # --- rules shared by commands ------------------------------------------

    def _emit(self, event_class: type[Case.Event], actor: Actor, at: datetime, **fields: Any) -> None:
        self.trigger_event(
            event_class,
            timestamp=at,
            actor=actor.as_dict(),
            number=self.number,
            units=self.units,
            **fields,
        )

    def _may(self, actor: Actor, name: str, *, status: bool = True) -> None:
        """The command table's roles, statuses and rule on this case (cases/commands.py), in that order."""
        command = BY_NAME[name]
        if actor.role not in command.roles:
            roles = "、".join(sorted(command.roles))
            raise errors.ActorNotAllowedError(f"角色 {actor.role} 不能{command.label}；可以的角色：{roles}。")
        if status:
            self._require_status(command)
        if command.on_case == OnCase.ASSIGNEE and actor.id != self.assignee:
            raise errors.NotAssigneeError(f"只有被派单的网格长（{self.assignee}）可以{command.label}本案。")
        if command.on_case == OnCase.OWN_STREET and actor.unit != self.units["street"]:
            raise errors.NotInAreaError(f"本案属于{self.units['street_name']}，只有该镇（街道）可以{command.label}。")
        if command.on_case == OnCase.HANDLER and not self.works_on(actor):
            raise errors.ActorNotAllowedError(f"{actor.id}（{actor.role}）不是本案的承办人，不能{command.label}。")

    def works_on(self, actor: Actor) -> bool:
        """Those working the case: its grid leader, its township, a summoned or lead department,
        a leader who took it, and the intake office. The door's area check starts here too."""
        unit = actor.unit
        return {
            Role.GRID_LEADER: self.assignee is not None and actor.id == self.assignee,
            Role.TOWNSHIP: unit is not None and unit == self.units["street"],
            Role.DEPARTMENT: unit is not None
            and (unit == self.lead_department or any(unit in w["departments"] for w in self.whistles)),
            Role.LEADER: actor.id in self.leaders,
            Role.INTAKE_CLERK: True,
        }.get(actor.role, False)

    def _require_status(self, command: CaseCommand) -> None:
        if self.status in command.when:
            return
        if self.status == Status.CLOSED:
            raise errors.CaseClosedError(f"案件 {self.number} 已销号，不能再{command.label}。")
        raise errors.IllegalTransitionError(
            f"案件 {self.number} 当前状态为“{STATUS_LABELS[self.status]}”，不能{command.label}。"
        )
