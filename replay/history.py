"""A case's full history: every event with its position, version, type, actor,
time and payload, and the time the case spent in each state and with each
holder (dwell time). Also the case as it stood at a version or a moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from cases.case import Case
from cases.vocabulary import STATUS_LABELS, Status
from commands.cases import Cases, PersonalDataVault
from commands.errors import CaseNotFoundError
from commands.notices import KIND_LABELS, OUTCOME_LABELS, STOP_REASONS
from replay.records import Record, notice_outcomes, stream_records
from security.personal import reveal

EVENT_LABELS: dict[str, str] = {
    "Registered": "登记",
    "Classified": "分类定时限",
    "DeadlinesRecomputed": "重算时限",
    "Assigned": "派单",
    "Returned": "退单",
    "Accepted": "签收",
    "ProgressReported": "报告进展",
    "WhistleBlown": "镇街吹哨",
    "DepartmentReported": "部门报到",
    "ConsultationHeld": "联动会商",
    "LeaderTookCase": "领导包案",
    "RectificationPlanned": "制定整改清单",
    "DeadlineExtended": "延期",
    "Rectified": "整改完成",
    "ResidentVerified": "居民检验",
    "Closed": "销号",
    "FeedbackGiven": "反馈",
    "Rated": "评议打分",
    "SupervisionNoticeIssued": "督办",
    # second handling, transfers and approvals (issue 17)
    "FollowUpCalled": "回访",
    "Reopened": "不满意重办",
    "Reassigned": "改派",
    "Transferred": "转办",
    "ExtensionRequested": "延期申请",
    "ReturnRequested": "退单申请",
    "RequestDecided": "审批",
    "OrderImported": "导入热线工单",
    "Located": "定位",
    # Duplicates (重复件 / 并案)
    "LinkedAsDuplicate": "并案（作为重复件并入主件）",
    "DuplicateAttached": "并入重复件",
    "DuplicateUnlinked": "取消并案",
    "DuplicateDetached": "重复件取消并案",
    "ClosedWithMain": "随主件销号",
    "AttachmentAdded": "添加附件",
    "NoticesOptedOut": "退订短信通知",
}

# Fields every event carries; the payload is what is particular to the event.
COMMON = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "number", "units"}
INTAKE = "intake"


@dataclass(frozen=True)
class Step:
    """One event with where the case stood right after it."""

    record: Record
    event: Case.Event
    status: Status
    holder: str | None


def case_event(cases: Cases, record: Record) -> Case.Event:
    """A stored row of a case's stream as the case's own event (every event of that stream is one)."""
    return cast(Case.Event, cases.mapper.to_domain_event(record.stored))


def replay_steps(cases: Cases, case_id: UUID) -> tuple[list[Step], Case]:
    records = stream_records(cases, case_id)
    if not records:
        raise CaseNotFoundError(case_id)
    steps: list[Step] = []
    case: Case | None = None
    for record in records:
        event = case_event(cases, record)
        case = event.mutate(case)
        assert case is not None
        steps.append(Step(record, event, case.status, holder(case)))
    assert case is not None
    return steps, case


def holder(case: Case) -> str | None:
    """Who holds the case: the intake centre until a grid leader has it, then
    the grid leader, the lead department after consultation, a leader who took
    it (包案). Nobody once it is closed."""
    if case.status == Status.CLOSED:
        return None
    if case.main_case is not None:
        return f"main:{case.main_number}"  # a linked duplicate is handled with its main case
    if case.status in (Status.REGISTERED, Status.CLASSIFIED, Status.RETURNED):
        return INTAKE
    if case.leaders:
        return f"leader:{case.leaders[-1]}"
    if case.lead_department:
        return f"department:{case.lead_department}"
    if case.assignee:
        return f"grid_leader:{case.assignee}"
    return INTAKE


def payload(event: Case.Event, *, clear: bool = False, vault: PersonalDataVault | None = None) -> dict[str, Any]:
    """The event's own fields; the petitioner's personal data is decrypted here,
    the one place a history is shaped for display: masked unless `clear`."""
    fields = {k: v for k, v in event.__dict__.items() if k not in COMMON}
    if "petitioner" in fields:
        fields["petitioner"] = reveal(fields["petitioner"], clear=clear, vault=vault)
    return fields


def history(cases: Cases, case_id: UUID, *, now: datetime | None = None, clear: bool = False) -> dict[str, Any]:
    steps, last = replay_steps(cases, case_id)
    now = now or cases.clock()
    events = []
    for step in steps:
        name = type(step.event).__name__
        events.append(
            {
                "position": step.record.position,
                "version": step.event.originator_version,
                "type": name,
                "label": EVENT_LABELS.get(name, name),
                "schema_version": getattr(type(step.event), "class_version", 1),
                "at": step.event.timestamp.isoformat(),
                "actor": step.event.actor,
                "status": str(step.status),
                "status_label": STATUS_LABELS[step.status],
                "holder": step.holder,
                "payload": payload(step.event, clear=clear, vault=cases.vault),
            }
        )
    events = _with_notices(cases, case_id, steps, events)
    return {
        "case_id": str(case_id),
        "number": last.number,
        "version": last.version,
        "status": str(last.status),
        "events": events,
        "dwell": dwell(steps, now),
    }


def _with_notices(cases: Cases, case_id: UUID, steps: list[Step], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The case's notices to the resident (已发送短信, 短信发送失败, 短信未发送) in log order among
    its events, each with where the case stood then; they are not versions of the case."""
    outcomes = notice_outcomes(cases, case_id, [s.record for s in steps])
    if not outcomes:
        return events
    for position, event in outcomes:
        before = [s for s in steps if s.record.position < position]
        step = before[-1] if before else steps[0]
        name = type(event).__name__
        events.append(
            {
                "position": position,
                "version": step.event.originator_version,
                "type": name,
                "label": OUTCOME_LABELS.get(name, name),
                "schema_version": 1,
                "at": event.timestamp.isoformat(),
                "actor": event.actor,
                "status": str(step.status),
                "status_label": STATUS_LABELS[step.status],
                "holder": step.holder,
                "payload": notice_payload(event),
            }
        )
    return sorted(events, key=lambda e: e["position"])


def notice_payload(event: Any) -> dict[str, Any]:
    """A notice outcome's own fields, with the reason a notice was stopped in words."""
    fields = {k: v for k, v in event.__dict__.items() if k not in COMMON}
    if "stop_reason" in fields:
        fields["stop_reason_label"] = STOP_REASONS.get(fields["stop_reason"], fields["stop_reason"])
    fields["kind_label"] = KIND_LABELS.get(fields.get("kind", ""), "")
    return fields


def dwell(steps: list[Step], now: datetime) -> dict[str, Any]:
    """Seconds in each state and with each holder, from one event to the next;
    the last open stretch runs to `now` and is marked ongoing."""
    by_status: dict[str, float] = {}
    by_holder: dict[str, float] = {}
    stretches: list[dict[str, Any]] = []
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        start = step.event.timestamp
        if step.status == Status.CLOSED:
            continue
        end = following.event.timestamp if following else now
        seconds = max(0.0, (end - start).total_seconds())
        status = str(step.status)
        by_status[status] = by_status.get(status, 0.0) + seconds
        who = step.holder or ""
        by_holder[who] = by_holder.get(who, 0.0) + seconds
        if stretches and stretches[-1]["status"] == status and stretches[-1]["holder"] == who:
            stretches[-1]["until"] = end.isoformat()
            stretches[-1]["seconds"] += seconds
        else:
            stretches.append(
                {
                    "status": status,
                    "holder": who,
                    "from": start.isoformat(),
                    "until": end.isoformat(),
                    "seconds": seconds,
                }
            )
    if stretches and steps[-1].status != Status.CLOSED:
        stretches[-1]["ongoing"] = True
    return {
        "by_status": [
            {"status": s, "label": STATUS_LABELS[Status(s)], "seconds": round(v, 3)} for s, v in by_status.items()
        ],
        "by_holder": [{"holder": h, "seconds": round(v, 3)} for h, v in by_holder.items()],
        "stretches": stretches,
    }


def case_at(cases: Cases, case_id: UUID, *, version: int | None = None, as_of: datetime | None = None) -> Case:
    """The case as it stood at a version, or at a moment (its last event at or
    before it). A moment before the case existed is 'not found'."""
    if as_of is None:
        current = cases.get_case(case_id, version=version)
        if version is not None and current.version < version:
            raise CaseNotFoundError(f"{case_id} 的第 {version} 版（当前只到第 {current.version} 版）")
        return current
    records = stream_records(cases, case_id)
    if not records:
        raise CaseNotFoundError(case_id)
    case: Case | None = None
    for record in records:
        event = case_event(cases, record)
        if event.timestamp > as_of:
            break
        case = event.mutate(case)
    if case is None:
        raise CaseNotFoundError(f"{case_id}（{as_of.isoformat()} 时尚未登记）")
    return case
