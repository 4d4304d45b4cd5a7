"""The petition case (诉求件): every action is an immutable event.

Public methods check the rules and receive every computed value (time, ids,
deadlines) from the caller; the events' `apply` methods only assign, because
they run again on every replay. Each event carries its actor, the case number
and the case's units, so a reader never needs to load the aggregate.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack
from uuid import UUID

from eventsourcing.domain import Aggregate

from cases import errors
from cases.actor import Actor
from cases.clock import local_date
from cases.commands import BY_NAME, CaseCommand, OnCase
from cases.evidence import STAGES, Stage
from cases.vocabulary import (
    SATISFACTION_LABELS,
    STATUS_LABELS,
    FeedbackMethod,
    HandlingType,
    Role,
    Satisfaction,
    Status,
    SuggestionOutcome,
    Tier,
)

IMPORTING_ROLES = frozenset({Role.INTAKE_CLERK, Role.ADMIN})
# What a linked duplicate still takes on its own: its petitioner's feedback and rating, and the
# commands of the link itself (the case explains why a second link is refused).
# Each petitioner keeps their own contact: feedback, the follow-up call, notices, their evidence and place.
WHILE_LINKED = frozenset({
    "give_feedback", "rate", "link_duplicate", "unlink_duplicate", "recompute_deadlines", "follow_up",
    "opt_out_notices", "attach", "locate",
})  # fmt: skip


class Registration(TypedDict):
    """What registering a petition takes (Case.register, Case.import_order): the Registered
    event's fields, with the case's id, the moment and the actor."""

    case_id: UUID
    number: str
    actor: Actor
    at: datetime
    units: dict[str, Any]
    channel: str
    category: str
    title: str
    description: str
    location: str
    petitioner: dict[str, str]
    latitude: NotRequired[float | None]
    longitude: NotRequired[float | None]
    media_url: NotRequired[str | None]


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
        attachments: list[dict[str, Any]]  # AttachmentAdded; absent until the first (Case.evidence())
        closed_at: datetime | None
        suggestion_outcome: str | None
        feedback: list[dict[str, Any]]
        rating: str | None
        supervision_notices: list[dict[str, Any]]
        progress_reports: int
        reopened_count: int
        reopened_at: datetime | None
        follow_ups: list[dict[str, Any]]
        requests: list[dict[str, Any]]
        latitude: float | None
        longitude: float | None
        media_url: str | None
        main_case: str | None  # duplicates: the main case this one follows while linked
        main_number: str | None
        duplicates: tuple[str, ...]  # a main case: its linked duplicates' ids
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
        # Places (issue 18): WGS-84, and a photo's address as an Open311 client sent it. Defaulted,
        # so a Registered stored before they existed loads with None (tests/test_places.py).
        latitude: float | None = None
        longitude: float | None = None
        media_url: str | None = None

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
            case.reopened_count = 0
            case.reopened_at = None
            case.follow_ups = []
            case.requests = []
            case.latitude = self.latitude
            case.longitude = self.longitude
            case.media_url = self.media_url

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

    # --- second handling, transfers and approvals (issue 17) ---------------

    class FollowUpCalled(Event):
        """回访: the intake office calls the petitioner back after closing; a call that
        reaches them and hears the problem is not solved is grounds to reopen."""

        reached: bool
        resolved: bool
        note: str

        def apply(self, case: Case) -> None:
            case.follow_ups.append(
                {
                    "round": case.reopened_count,
                    "at": self.timestamp.isoformat(),
                    "reached": self.reached,
                    "resolved": self.resolved,
                }
            )

    class Reopened(Event):
        """不满意重办: back to its grid leader, who signs for it again, with fresh deadlines
        counted from the reopening; the rating of the round is cleared so the resident rates again."""

        reopen_no: int
        grounds: str  # "dissatisfied" (a dissatisfied rating) or "follow_up" (a failed follow-up call)
        reason: str
        deadlines: dict[str, Any]
        policy_version: str

        def apply(self, case: Case) -> None:
            case.reopened_count = self.reopen_no
            case.reopened_at = self.timestamp
            for request in case.requests:  # a request of the closed round lapses with it
                if request["state"] == "pending":
                    request["state"] = "lapsed"
            case.status = Status.ASSIGNED if case.assignee else Status.RETURNED
            case.deadlines = self.deadlines
            case.policy_version = self.policy_version
            case.rating = None
            case.closed_at = None
            case.suggestion_outcome = None
            case.rectified_at = None
            case.accepted_at = None

    class Reassigned(Event):
        """改派: the dispatcher moves the case to another grid leader of its grid."""

        previous_assignee: str | None
        assignee: str
        assignee_name: str
        reason: str

        def apply(self, case: Case) -> None:
            case.assignee = self.assignee

    class Transferred(Event):
        """转办: a department hands its part (its whistles, and the lead if it had it) to another."""

        from_department: str
        to_department: str
        whistle_nos: list[int]
        lead: bool
        reason: str

        def apply(self, case: Case) -> None:
            for no in self.whistle_nos:
                whistle = case.whistles[no - 1]
                whistle["departments"] = sorted(
                    {*whistle["departments"]} - {self.from_department} | {self.to_department}
                )
                whistle.setdefault("transferred_in", {})[self.to_department] = self.timestamp.isoformat()
            if self.lead:
                case.lead_department = self.to_department

    class ExtensionRequested(Event):
        """延期申请: the deadline moves only once the township or supervision approves."""

        request_no: int
        new_due: str
        current_due: str
        reason: str

        def apply(self, case: Case) -> None:
            case.requests.append(
                {
                    "no": self.request_no,
                    "kind": "extension",
                    "new_due": self.new_due,
                    "reason": self.reason,
                    "requested_by": self.actor["id"],
                    "requested_at": self.timestamp.isoformat(),
                    "state": "pending",
                }
            )

    class ReturnRequested(Event):
        """退单申请: the case stays with its assignee until the township or supervision approves."""

        request_no: int
        reason: str

        def apply(self, case: Case) -> None:
            case.requests.append(
                {
                    "no": self.request_no,
                    "kind": "return",
                    "reason": self.reason,
                    "requested_by": self.actor["id"],
                    "requested_at": self.timestamp.isoformat(),
                    "state": "pending",
                }
            )

    class RequestDecided(Event):
        """审批: approved (followed by its DeadlineExtended or Returned) or refused, with a reason."""

        request_no: int
        kind: str
        approved: bool
        reason: str

        def apply(self, case: Case) -> None:
            request = case.requests[self.request_no - 1]
            request["state"] = "approved" if self.approved else "refused"
            request["decided_by"] = self.actor["id"]
            request["decided_at"] = self.timestamp.isoformat()

    # --- imported hotline work orders (12345 / 110 非警务), issue 17 --------------
    class OrderImported(Event):
        """The case came from a hotline platform's export: the platform's own order number
        (an external id, unique per platform) and the time the platform registered it."""

        platform: str
        external_id: str
        received_at: str | None
        source: str

        def apply(self, case: Case) -> None:
            case.__dict__["imported"] = {
                "platform": self.platform,
                "external_id": self.external_id,
                "received_at": self.received_at,
            }

    # --- places (issue 18) ---------------------------------------------------

    class Located(Event):
        """The case's point set or corrected after registration (WGS-84; `coordinate_system`
        says what the actor gave, converted before the event)."""

        latitude: float
        longitude: float
        coordinate_system: str
        reason: str

        def apply(self, case: Case) -> None:
            case.latitude = self.latitude
            case.longitude = self.longitude

    # --- duplicates (重复件 / 并案) ------------------------------------------
    # A duplicate is linked to a main case by a command on the duplicate; the main case records
    # the attachment in the same transaction (Cases.link_duplicate). While linked the duplicate
    # follows the main case: it closes with it (ClosedWithMain, one per duplicate, saved with the
    # main case's Closed) and takes no command of its own but feedback, rating and unlinking.

    class LinkedAsDuplicate(Event):
        main_case: str
        main_number: str
        main_status: str  # where the main case stood: the ledger shows the duplicate there
        reason: str

        def apply(self, case: Case) -> None:
            case.main_case = self.main_case
            case.main_number = self.main_number

    class DuplicateAttached(Event):
        duplicate_case: str
        duplicate_number: str
        reason: str

        def apply(self, case: Case) -> None:
            case.duplicates = (*case.duplicates, self.duplicate_case)

    class DuplicateUnlinked(Event):
        main_case: str
        main_number: str
        status: str  # the duplicate's own status, where it resumes
        reason: str

        def apply(self, case: Case) -> None:
            case.main_case = None
            case.main_number = None

    class DuplicateDetached(Event):
        duplicate_case: str
        duplicate_number: str
        reason: str

        def apply(self, case: Case) -> None:
            case.duplicates = tuple(d for d in case.duplicates if d != self.duplicate_case)

    class ClosedWithMain(Closed):
        """The duplicate's own closing, decided by the main case's (a Closed, so every reader of
        closings counts it; its type says it followed the main case)."""

        main_case: str
        main_number: str

    # Not yet linked, and no duplicates: the state of every case until a link (no annotation,
    # or the library would make them __init__ parameters).
    main_case = None
    main_number = None
    duplicates = ()
    # --- attachments as evidence (cases/evidence.py) ---------------------------------------

    class AttachmentAdded(Event):
        """A file added to the case. The bytes live in the attachment store, under their sha256;
        the event keeps what the file is, never what it shows. `sha256` is None for a link that
        was kept but not fetched (an Open311 media_url from a host the deployment does not allow)."""

        stage: str
        sha256: str | None
        content_type: str | None
        size: int | None
        name: str
        location_removed: bool  # GPS metadata was stripped before the hash was taken
        url: str | None  # where it came from (Open311 media_url), if it came from a link

        def apply(self, case: Case) -> None:
            case.attachments = [
                *case.evidence(),
                {
                    "stage": self.stage,
                    "sha256": self.sha256,
                    "content_type": self.content_type,
                    "size": self.size,
                    "name": self.name,
                    "location_removed": self.location_removed,
                    "url": self.url,
                    "added_at": self.timestamp.isoformat(),
                    "added_by": self.actor,
                },
            ]

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
    def register(cls, *, notices: bool = True, **registration: Unpack[Registration]) -> Case:
        actor = registration["actor"]
        if actor.role not in (Role.INTAKE_CLERK, Role.GRID_LEADER):
            raise errors.ActorNotAllowedError("只有民情信息员（登记员）或网格长可以登记诉求。")
        case = cls._registered(**registration)
        if not notices:
            case._decline_notices(actor, registration["at"])  # 登记时即表示不接收短信：saved with the registration
        return case

    @classmethod
    def _registered(cls, **registration: Unpack[Registration]) -> Case:
        """The Registered event of a petition registered here or imported (import_order)."""
        fields: dict[str, Any] = {"latitude": None, "longitude": None, "media_url": None, **registration}
        case_id, at, actor = fields.pop("case_id"), fields.pop("at"), fields.pop("actor")
        return cls._create(cls.Registered, id=case_id, timestamp=at, actor=actor.as_dict(), **fields)

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
        # A department a case was transferred to (转办) is timed from the transfer.
        blown_at = datetime.fromisoformat(whistle.get("transferred_in", {}).get(department, whistle["blown_at"]))
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
        current = self._extendable(at, new_due)
        self._emit(
            self.DeadlineExtended,
            actor,
            at,
            deadline="resolve",
            previous_deadline=current.isoformat(),
            new_due=new_due.isoformat(),
            reason=reason,
        )

    def _extendable(self, at: datetime, new_due: date) -> date:
        current = date.fromisoformat(self.deadlines["resolve"]["due"])
        if local_date(at) > current:
            raise errors.DeadlinePassedError(f"办结时限 {current} 已过，延期须在时限届满前申请；请改由督查室发督办函。")
        if new_due <= current:
            raise errors.DeadlineNotLaterError(f"新的时限必须晚于现有时限 {current}。")
        return current

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

    # --- second handling, transfers and approvals (issue 17) ---------------

    def follow_up(self, actor: Actor, at: datetime, *, reached: bool, resolved: bool, note: str) -> None:
        self._may(actor, "follow_up")
        if not reached and resolved:
            raise errors.IllegalTransitionError("未联系上诉求人时不能记录“问题已解决”：请把“已解决”改为否。")
        self._emit(self.FollowUpCalled, actor, at, reached=reached, resolved=resolved, note=note)

    def reopen(
        self, actor: Actor, at: datetime, *, reason: str, deadlines: dict[str, Any], policy_version: str
    ) -> None:
        self._may(actor, "reopen")
        self._emit(
            self.Reopened,
            actor,
            at,
            reopen_no=self.reopened_count + 1,
            grounds=self._reopen_grounds(),
            reason=reason,
            deadlines=deadlines,
            policy_version=policy_version,
        )

    def _reopen_grounds(self) -> str:
        if self.rating in (Satisfaction.SATISFIED, Satisfaction.BASICALLY_SATISFIED):
            label = SATISFACTION_LABELS[Satisfaction(self.rating)]
            raise errors.ReopenNotWarrantedError(
                f"居民对案件 {self.number} 的评议为“{label}”，不能重办；只有评议不满意或回访未解决的案件可以重办。"
            )
        if self.rating == Satisfaction.DISSATISFIED:
            return "dissatisfied"
        calls = [f for f in self.follow_ups if f["round"] == self.reopened_count and f["reached"]]
        if calls and not calls[-1]["resolved"]:
            return "follow_up"
        raise errors.ReopenNotWarrantedError(
            f"案件 {self.number} 没有不满意评议，也没有回访未解决的记录：请先回访或请居民评议，再决定是否重办。"
        )

    def reassign(
        self,
        actor: Actor,
        at: datetime,
        *,
        assignee: str,
        assignee_name: str,
        assignee_grids: frozenset[str],
        reason: str,
    ) -> None:
        self._may(actor, "reassign")
        if assignee == self.assignee:
            raise errors.SameAssigneeError(f"本案已由{assignee_name}（{assignee}）承办，请改派给其他网格长。")
        if self.units["grid"] not in assignee_grids:
            raise errors.AssigneeNotInGridError(
                f"{assignee_name}不是本案所在网格（{self.units['grid_name']}）的网格长，请改派给该网格的网格长。"
            )
        self._emit(
            self.Reassigned,
            actor,
            at,
            previous_assignee=self.assignee,
            assignee=assignee,
            assignee_name=assignee_name,
            reason=reason,
        )

    def transfer(self, actor: Actor, at: datetime, *, to_department: str, reason: str) -> None:
        self._may(actor, "transfer")
        mine = actor.unit or ""
        holding = [w for w in self.whistles if mine in w["departments"]]
        if not holding and self.lead_department != mine:
            raise errors.NotWhistledError(f"部门 {mine} 没有承办本案的任务，无可转办。")
        if (
            to_department == mine
            or self.lead_department == to_department
            or any(to_department in w["departments"] for w in holding)
        ):
            raise errors.AlreadyOnCaseError(
                f"部门 {to_department} 已在承办本案的同一任务，不能转办给它；请选择另一个职能部门。"
            )
        self._emit(
            self.Transferred,
            actor,
            at,
            from_department=mine,
            to_department=to_department,
            whistle_nos=[w["no"] for w in holding],
            lead=self.lead_department == mine,
            reason=reason,
        )

    def request_extension(self, actor: Actor, at: datetime, *, new_due: date, reason: str) -> None:
        self._may(actor, "request_extension")
        self._no_pending("extension")
        current = self._extendable(at, new_due)
        self._emit(
            self.ExtensionRequested,
            actor,
            at,
            request_no=len(self.requests) + 1,
            new_due=new_due.isoformat(),
            current_due=current.isoformat(),
            reason=reason,
        )

    def request_return(self, actor: Actor, at: datetime, *, reason: str) -> None:
        self._may(actor, "request_return")
        self._no_pending("return")
        self._emit(self.ReturnRequested, actor, at, request_no=len(self.requests) + 1, reason=reason)

    def decide_request(self, actor: Actor, at: datetime, *, request_no: int, approved: bool, reason: str) -> None:
        self._may(actor, "decide_request")
        if actor.role == Role.TOWNSHIP and actor.unit != self.units["street"]:
            raise errors.NotInAreaError(f"本案属于{self.units['street_name']}，只有该镇（街道）或督查室可以审批。")
        if not 1 <= request_no <= len(self.requests):
            raise errors.RequestNotFoundError(f"案件 {self.number} 没有第 {request_no} 号申请。")
        request = self.requests[request_no - 1]
        if request["state"] != "pending":
            state = {"approved": "已被批准", "refused": "已被驳回"}.get(request["state"], "已随案件重办失效")
            raise errors.RequestDecidedError(f"第 {request_no} 号申请{state}，不能再次审批。")
        kind = request["kind"]
        if approved and kind == "extension":
            current = date.fromisoformat(self.deadlines["resolve"]["due"])
            if date.fromisoformat(request["new_due"]) <= current:
                raise errors.DeadlineNotLaterError(
                    f"办结时限已是 {current}，申请的新时限 {request['new_due']} 并不更晚：请驳回本申请。"
                )
        still_assigned = self.status == Status.ASSIGNED and self.assignee == request["requested_by"]
        if approved and kind == "return" and not still_assigned:
            raise errors.RequestOutdatedError("提交退单申请后，案件已被签收、改派或退回，申请已失效：请驳回本申请。")
        self._emit(self.RequestDecided, actor, at, request_no=request_no, kind=kind, approved=approved, reason=reason)
        if approved and kind == "extension":
            self._emit(
                self.DeadlineExtended,
                actor,
                at,
                deadline="resolve",
                previous_deadline=self.deadlines["resolve"]["due"],
                new_due=request["new_due"],
                reason=request["reason"],
            )
        elif approved:
            self._emit(self.Returned, actor, at, reason=request["reason"])

    def _no_pending(self, kind: str) -> None:
        pending = [r for r in self.requests if r["kind"] == kind and r["state"] == "pending"]
        if pending:
            what = "延期" if kind == "extension" else "退单"
            raise errors.RequestPendingError(
                f"第 {pending[-1]['no']} 号{what}申请尚待审批：请等镇（街道）或督查室审批后再申请。"
            )

    # --- imported hotline work orders (12345 / 110 非警务), issue 17 --------------

    @classmethod
    def import_order(
        cls,
        *,
        platform: str,
        external_id: str,
        received_at: datetime | None,
        source: str,
        **registration: Unpack[Registration],
    ) -> Case:
        """A work order exported by a hotline platform: registered like any petition (the same
        event, so every reader counts it), then marked with the platform's order number."""
        actor: Actor = registration["actor"]
        if actor.role not in IMPORTING_ROLES:
            raise errors.ActorNotAllowedError("只有民情信息员（登记员）或系统管理员可以导入热线工单。")
        if received_at is not None and received_at > registration["at"]:
            raise errors.CaseError(f"平台登记时间 {received_at.isoformat()} 晚于导入时间，请核对。")
        case = cls._registered(**registration)
        case._emit(
            cls.OrderImported,
            actor,
            registration["at"],
            platform=platform,
            external_id=external_id,
            received_at=received_at.isoformat() if received_at is not None else None,
            source=source,
        )
        return case

    @property
    def imported(self) -> dict[str, Any] | None:
        """The platform and order number of an imported case; None for one registered here."""
        found: dict[str, Any] | None = self.__dict__.get("imported")
        return found

    @property
    def received_at(self) -> datetime:
        """When the resident's petition was received: the platform's registration time of an
        imported work order (never later than Minqing's registration), else Minqing's own."""
        platform = (self.imported or {}).get("received_at")
        if platform is None:
            return self.registered_at
        return min(datetime.fromisoformat(platform), self.registered_at)

    # --- places (issue 18) ---------------------------------------------------

    def locate(
        self, actor: Actor, at: datetime, *, latitude: float, longitude: float, coordinate_system: str, reason: str
    ) -> bool:
        """Sets or corrects the case's point (already WGS-84 and inside the district); False if unchanged."""
        self._may(actor, "locate")
        if (latitude, longitude) == (self.latitude, self.longitude):
            return False
        self._emit(
            self.Located,
            actor,
            at,
            latitude=latitude,
            longitude=longitude,
            coordinate_system=coordinate_system,
            reason=reason,
        )
        return True

    # --- duplicates (重复件 / 并案) ------------------------------------------

    def link_as_duplicate(self, actor: Actor, at: datetime, *, main: Case, reason: str) -> None:
        """This case is a duplicate of `main` (loaded by the application, which saves both)."""
        self._may(actor, "link_duplicate")
        if self.main_case is not None:
            raise errors.AlreadyLinkedError(
                f"案件 {self.number} 已并入主件 {self.main_number}；如需改并其他主件，请先取消并案。"
            )
        if main.id == self.id:
            raise errors.DuplicateOfItselfError(f"案件 {self.number} 不能并入它自己，请填写另一件的编号。")
        if main.main_case is not None:
            raise errors.MainIsDuplicateError(
                f"{main.number} 本身是重复件（已并入 {main.main_number}），请直接并入主件 {main.main_number}。"
            )
        if self.duplicates:
            raise errors.HasDuplicatesError(
                f"案件 {self.number} 已是 {len(self.duplicates)} 件重复件的主件，不能再并入其他案件；"
                "请先取消这些重复件的并案。"
            )
        if main.status == Status.CLOSED:
            raise errors.MainCaseClosedError(
                f"主件 {main.number} 已销号，不能再并入；如问题复发，请将本案作为新件办理。"
            )
        if not main.works_on(actor):
            raise errors.MainNotInAreaError(f"主件 {main.number} 不在您的管辖范围内，只能并入本辖区的案件。")
        self._emit(
            self.LinkedAsDuplicate,
            actor,
            at,
            main_case=str(main.id),
            main_number=main.number,
            main_status=str(main.status),
            reason=reason,
        )
        main._emit(
            main.DuplicateAttached, actor, at, duplicate_case=str(self.id), duplicate_number=self.number, reason=reason
        )

    def unlink_duplicate(self, actor: Actor, at: datetime, *, main: Case, reason: str) -> None:
        """Undo a wrong link: the case resumes where it stood; `main` records the detachment."""
        self._may(actor, "unlink_duplicate")
        if self.main_case is None:
            raise errors.NotLinkedError(f"案件 {self.number} 不是重复件，无需取消并案。")
        if str(main.id) != self.main_case:
            raise errors.NotLinkedError(f"案件 {self.number} 并入的是 {self.main_number}，不是 {main.number}。")
        self._emit(
            self.DuplicateUnlinked,
            actor,
            at,
            main_case=self.main_case,
            main_number=self.main_number or "",
            status=str(self.status),
            reason=reason,
        )
        main._emit(
            main.DuplicateDetached, actor, at, duplicate_case=str(self.id), duplicate_number=self.number, reason=reason
        )

    def close_with_main(self, actor: Actor, at: datetime, *, main: Case, summary: str) -> None:
        """The main case closes: so does this duplicate, with its own closing event."""
        if self.main_case != str(main.id):
            raise errors.NotLinkedError(f"案件 {self.number} 没有并入 {main.number}，不能随其销号。")
        if self.status == Status.CLOSED:
            raise errors.CaseClosedError(f"案件 {self.number} 已销号。")
        self._emit(
            self.ClosedWithMain,
            actor,
            at,
            handling_type=str(self.handling_type or main.handling_type or ""),
            suggestion_outcome=main.suggestion_outcome,
            summary=f"随主件 {main.number} 一并销号。{summary}".strip(),
            main_case=str(main.id),
            main_number=main.number,
        )

    # --- attachments as evidence ---------------------------------------------

    def evidence(self) -> list[dict[str, Any]]:
        return list(getattr(self, "attachments", None) or [])

    def check_attach(self, actor: Actor, stage: Stage) -> None:
        """The table's roles and statuses for `attach`, then the stage's own (before the file is stored)."""
        self._may(actor, "attach")
        rule = STAGES[stage]
        if actor.role not in rule.roles:
            roles = "、".join(sorted(rule.roles))
            raise errors.ActorNotAllowedError(f"角色 {actor.role} 不能添加“{rule.label}”附件；可以的角色：{roles}。")
        if self.status not in rule.when:
            allowed = "、".join(STATUS_LABELS[s] for s in rule.when)
            raise errors.IllegalTransitionError(
                f"案件 {self.number} 当前状态为“{STATUS_LABELS[self.status]}”，不能添加“{rule.label}”附件"
                f"（只在{allowed}时可以）。"
            )
        if rule.handler and not self.works_on(actor):
            raise errors.ActorNotAllowedError(
                f"{actor.id}（{actor.role}）不是本案的承办人，不能添加“{rule.label}”附件。"
            )

    def attach(
        self,
        actor: Actor,
        at: datetime,
        *,
        stage: Stage,
        sha256: str | None,
        content_type: str | None,
        size: int | None,
        name: str,
        location_removed: bool = False,
        url: str | None = None,
    ) -> bool:
        """False when the same file (or link) is already attached at that stage: nothing to add."""
        self.check_attach(actor, stage)
        if any(a["stage"] == stage and (a["sha256"], a["url"]) == (sha256, url) for a in self.evidence()):
            return False
        self._emit(
            self.AttachmentAdded,
            actor,
            at,
            stage=str(stage),
            sha256=sha256,
            content_type=content_type,
            size=size,
            name=name,
            location_removed=location_removed,
            url=url,
        )
        return True

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
        if self.main_case is not None and name not in WHILE_LINKED:
            raise errors.LinkedAsDuplicateError(
                f"案件 {self.number} 已作为重复件并入主件 {self.main_number}，随主件办理、随主件销号，"
                f"不能单独{command.label}；如并案有误，请先取消并案。"
            )
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
