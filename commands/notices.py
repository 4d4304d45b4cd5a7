"""Notices to residents (短信): the outbox and what a notice's life records.

A case event named in `TRIGGERS` queues a notice: a `NoticeQueued` record in
its own stream, named by the case and the version of the event that triggered
it, saved in the same `Application.save` as that event (commands/cases.py), so
one transaction holds both or neither. The log is the outbox; the delivery
worker (streams/notify.py) reads it and records every outcome as an event of
the notice's stream: sent, failed (with the attempt and the gateway's code) or
stopped (the person opted out or was erased).

A queued notice holds no personal data: the petitioner's pseudonym only. The
phone number is unsealed by the worker at the moment it sends, so an erased
person's notice can never be sent (their key is gone). The text, rendered at
sending, holds the receipt number and how to follow the case: no name, no
title, no description, nothing another person wrote.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEvent

from cases.case import Case
from commands.records import NAMESPACE, fields_of

# Case event class name -> the kind of notice it sends. Keyed by name so a row may
# name an event that another branch adds: it applies from the moment that event exists.
TRIGGERS: dict[str, str] = {
    "Registered": "registered",  # 受理回执：受理编号及查询方式
    "Closed": "closed",  # 办结：查看结果、评价
    "ClosedWithMain": "closed",  # a duplicate (重复件) closed with its main case: its petitioner is told too
    "Reopened": "reopened",  # 二次办理 (Case.Reopened)
}

# The texts, rendered when sent (docs/notices.md). {sign}: the SMS signature registered with
# the gateway; {number}: the receipt number; {follow}: how to follow the case (render_text).
TEXTS: dict[str, str] = {
    "registered": "【{sign}】您反映的诉求已受理，受理编号：{number}。可{follow}查询办理进度。",
    "closed": "【{sign}】您反映的诉求（受理编号：{number}）已办结。"
    "请{follow}查看办理结果，并对办理情况作出满意度评价。",
    "reopened": "【{sign}】您反映的诉求（受理编号：{number}）已重新办理，我们将继续跟进。可{follow}查询办理进度。",
}
KIND_LABELS = {"registered": "受理回执", "closed": "办结通知", "reopened": "重新办理通知"}

NOTIFIER = {"id": "minqing-notify", "role": "system", "unit": None}  # the actor of every outcome


def notice_id(case_id: UUID | str, version: int) -> UUID:
    """The stream of the notice a case's event at `version` queued: deterministic, so a
    reader finds a case's notices from its versions and a retried save queues it once."""
    return uuid5(NAMESPACE, f"notice/{case_id}/{version}")


@fields_of
class NoticeQueued(DomainEvent):
    case_id: str
    case_version: int  # the version of the case event that queued it
    number: str
    units: dict[str, Any]
    kind: str
    person: str  # the petitioner's pseudonym; the phone is unsealed only when sending


@fields_of
class NoticeOutcome(DomainEvent):
    """What every outcome of a notice holds, in this order (the stored field names: the three
    events below keep their own names, topics and fields; this class is never stored itself)."""

    case_id: str
    case_version: int
    number: str
    units: dict[str, Any]
    actor: dict[str, Any]
    kind: str


@fields_of
class NoticeSent(NoticeOutcome):
    sender: str  # log, http
    attempt: int
    code: str  # the gateway's answer code
    text: str  # what was sent: the receipt number and links, nothing personal


@fields_of
class NoticeFailed(NoticeOutcome):
    sender: str
    attempt: int
    code: str  # HTTP status or the gateway's own code; timeout, connect, transport
    final: bool  # no attempt follows


@fields_of
class NoticeStopped(NoticeOutcome):
    stop_reason: str  # opted_out, erased, unavailable


OUTCOMES: dict[str, type[NoticeSent | NoticeFailed | NoticeStopped]] = {
    "NoticeSent": NoticeSent,
    "NoticeFailed": NoticeFailed,
    "NoticeStopped": NoticeStopped,
}
OUTCOME_LABELS = {"NoticeSent": "已发送短信", "NoticeFailed": "短信发送失败", "NoticeStopped": "短信未发送"}
STOP_REASONS = {
    "opted_out": "诉求人已退订短信通知",
    "erased": "诉求人的个人信息已删除",
    "unavailable": "无法读取诉求人的联系电话",
}


def queued_notices(case: Case) -> list[NoticeQueued]:
    """The notices the case's pending events queue: one per event named in TRIGGERS, none
    once the petitioner declined notices on this case, none without a sealed petitioner
    (rows from before encryption: their phone is never copied anywhere)."""
    person = case.petitioner.get("person") if isinstance(case.petitioner, dict) else None
    if not person or getattr(case, "notices_declined", False):
        return []
    return [
        NoticeQueued(
            originator_id=notice_id(case.id, event.originator_version),
            originator_version=1,
            timestamp=event.timestamp,
            case_id=str(case.id),
            case_version=event.originator_version,
            number=case.number,
            units=case.units,
            kind=kind,
            person=str(person),
        )
        for event in case.pending_events
        if (kind := TRIGGERS.get(type(event).__name__))
    ]


def render_text(kind: str, number: str, *, sign: str, hotline: str, link: str = "") -> str:
    """The text of a notice: the receipt number and how to follow the case, nothing else.
    `link` may hold {number} (a page of the office's own site where the number is looked up)."""
    follow = f"凭编号拨打{hotline}"
    if link:
        follow += f"或访问 {link.replace('{number}', number)} "
    return TEXTS[kind].format(sign=sign, number=number, follow=follow)
