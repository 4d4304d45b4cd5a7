"""Every command on a case, declared once: its name, path, body, who may send
it, its Chinese label, the statuses in which the case takes it, and its rule
on the case.

The aggregate enforces the roles, the statuses and the rule (`Case._may`,
`Case._require_status`); the API derives its routes, its OpenAPI, its access
rules and the roles matrix of docs/security.md from this table; the workbench
derives its forms. Adding a command is its method and event on `Case`, a row
here, and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cases import inputs as i
from cases.evidence import ATTACHING_ROLES
from cases.vocabulary import Role, Status

R, S = Role, Status
HANDLERS = frozenset({R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER})  # the people working a case
CLERK, TOWNSHIP, RESIDENT = R.INTAKE_CLERK, R.TOWNSHIP, R.RESIDENT

WORKING = (S.IN_PROGRESS, S.RECTIFYING, S.RECTIFIED, S.VERIFIED)
OPEN_AFTER_CLASSIFICATION = (S.CLASSIFIED, S.ASSIGNED, S.RETURNED, *WORKING)
HANDLING = (S.IN_PROGRESS, S.RECTIFYING)
OPEN = tuple(s for s in S if s != S.CLOSED)


class OnCase(StrEnum):
    """Who, of the roles allowed, may act on this particular case."""

    ANY = "any"  # the role is enough (the door still checks the case is in the caller's area)
    ASSIGNEE = "assignee"  # only the grid leader the case is assigned to
    OWN_STREET = "own_street"  # only the township of the case's street
    HANDLER = "handler"  # only those working the case (Case.works_on); intake clerks always are


@dataclass(frozen=True)
class CaseCommand:
    name: str  # the Case method; a Cases method of that name adds the application's checks
    path: str  # POST /cases/{case_id}/<path>
    body: type[i.Command]
    roles: frozenset[Role]
    label: str  # 分类, 派单 …: in every refusal, in the docs and on the workbench's buttons
    when: tuple[Status, ...]  # the statuses in which the case takes it (the case may refuse further)
    summary: str  # OpenAPI
    on_case: OnCase = OnCase.ANY


def command(
    name: str,
    path: str,
    body: type[i.Command],
    roles: set[Role] | frozenset[Role],
    label: str,
    when: tuple[Status, ...],
    summary: str,
    on_case: OnCase = OnCase.ANY,
) -> CaseCommand:
    return CaseCommand(name, path, body, frozenset(roles), label, when, summary, on_case)


COMMANDS: tuple[CaseCommand, ...] = (
    command("classify", "classify", i.ClassifyIn, {CLERK, TOWNSHIP}, "分类", (S.REGISTERED,),
            "Classify: handling type and tier fix the deadlines (分类)"),
    command("assign", "assign", i.AssignIn, {CLERK, TOWNSHIP}, "派单", (S.CLASSIFIED, S.RETURNED),
            "Assign to a grid leader of the case's grid (派单)"),
    command("return_case", "return", i.ReasonIn, {R.GRID_LEADER}, "退单", (S.ASSIGNED,),
            "The assignee returns a misrouted case (退单)", OnCase.ASSIGNEE),
    command("accept", "accept", i.ActorOnlyIn, {R.GRID_LEADER}, "签收", (S.ASSIGNED,),
            "The assignee signs for the case (签收)", OnCase.ASSIGNEE),
    command("report_progress", "report-progress", i.ProgressIn, HANDLERS, "报告进展", WORKING,
            "Report progress (13710: 3)", OnCase.HANDLER),
    command("whistle", "whistle", i.WhistleIn, {TOWNSHIP}, "吹哨", HANDLING,
            "The township blows the whistle (镇街吹哨)", OnCase.OWN_STREET),
    command("report_in", "report-in", i.ActorOnlyIn, {R.DEPARTMENT}, "报到", WORKING,
            "A whistled department reports in (部门报到)"),
    command("consult", "consult", i.ConsultIn, {TOWNSHIP}, "会商", HANDLING,
            "Joint consultation held (联动会商)", OnCase.OWN_STREET),
    command("take_lead", "take-lead", i.ActorOnlyIn, {R.LEADER}, "包案", OPEN_AFTER_CLASSIFICATION,
            "A leader takes a hard case (领导包案)"),
    command("plan_rectification", "plan-rectification", i.PlanIn, HANDLERS, "制定整改清单", HANDLING,
            "Rectification list (整改清单)", OnCase.HANDLER),
    command("extend", "extend", i.ExtendIn, {TOWNSHIP, R.LEADER, R.SUPERVISION}, "延期", OPEN_AFTER_CLASSIFICATION,
            "Extend the limit before it expires (延期)"),
    command("rectify", "rectify", i.RectifyIn, HANDLERS, "整改完成", HANDLING,
            "Rectification done (整改完成)", OnCase.HANDLER),
    command("verify", "verify", i.VerifyIn, {RESIDENT, CLERK}, "居民检验", (S.RECTIFIED,),
            "The resident checks the fix (居民检验)"),
    command("close_case", "close", i.CloseIn, HANDLERS | {CLERK}, "销号", WORKING,
            "Close the case (销号)", OnCase.HANDLER),
    command("give_feedback", "feedback", i.FeedbackIn, HANDLERS | {CLERK}, "反馈", (*WORKING, S.CLOSED),
            "Feedback to the resident (反馈)", OnCase.HANDLER),
    command("rate", "rate", i.RateIn, {RESIDENT, CLERK}, "评议打分", (S.CLOSED,),
            "The resident rates the handling (评议打分)"),
    command("supervise", "supervise", i.SuperviseIn, {R.SUPERVISION}, "督办", OPEN,
            "Supervision notice (督办函)"),
    command("recompute_deadlines", "recompute-deadlines", i.ActorOnlyIn, {CLERK, R.ADMIN}, "重算时限",
            OPEN_AFTER_CLASSIFICATION,
            "Recompute provisional deadlines once the year's official calendar is known"),
    # --- second handling, transfers and approvals (issue 17) ---
    command("follow_up", "follow-up", i.FollowUpIn, {CLERK}, "回访", (S.CLOSED,),
            "The intake office's follow-up call after closing (回访); unresolved is grounds to reopen"),
    command("reopen", "reopen", i.ReasonIn, {CLERK, R.SUPERVISION}, "重办", (S.CLOSED,),
            "Reopen after a dissatisfied rating or a failed follow-up: fresh deadlines (不满意重办)"),
    command("reassign", "reassign", i.ReassignIn, {CLERK, TOWNSHIP}, "改派", (S.ASSIGNED, *WORKING),
            "Move the case to another grid leader of its grid (改派)", OnCase.HANDLER),
    command("transfer", "transfer", i.TransferIn, {R.DEPARTMENT}, "转办", WORKING,
            "A department hands its part to another department (转办)", OnCase.HANDLER),
    command("request_extension", "request-extension", i.ExtendIn, HANDLERS, "申请延期", OPEN_AFTER_CLASSIFICATION,
            "Ask the township or supervision to extend the limit (延期申请)", OnCase.HANDLER),
    command("request_return", "request-return", i.ReasonIn, {R.GRID_LEADER}, "申请退单", (S.ASSIGNED,),
            "The assignee asks to return a misrouted case (退单申请)", OnCase.ASSIGNEE),
    command("decide_request", "decide-request", i.DecideIn, {TOWNSHIP, R.SUPERVISION}, "审批申请", OPEN,
            "Approve or refuse an extension or return request, with a reason (审批)"),
    # Places (issue 18): set or correct the case's point, at any status (the GIS keeps closed cases too).
    command("locate", "locate", i.LocateIn, {CLERK, TOWNSHIP, R.GRID_LEADER}, "定位", tuple(S),
            "Set or correct the case's location (WGS-84 or GCJ-02 coordinates, inside the district)",
            OnCase.HANDLER),
    # Duplicates (重复件 / 并案): a command on the duplicate; Cases saves the main case with it.
    command("link_duplicate", "link-duplicate", i.LinkDuplicateIn, {CLERK, TOWNSHIP}, "并案", OPEN,
            "Link this case as a duplicate of a main case: it follows the main one (并案)", OnCase.HANDLER),
    command("unlink_duplicate", "unlink-duplicate", i.UnlinkDuplicateIn, {CLERK, TOWNSHIP}, "取消并案", OPEN,
            "Undo a wrong link: the case resumes where it stood (取消并案)", OnCase.HANDLER),
    # Attachments (cases/evidence.py): the stage decides the finer roles, statuses and the handler rule.
    command("attach", "attachments", i.AttachIn, ATTACHING_ROLES, "添加附件", OPEN,
            "Add a photo or document as evidence: at registration, on progress, before/after rectification, "
            "on verification (附件). The file is the body (or a multipart part named `file`)"),
    # Notices to residents (短信, docs/notices.md): the resident, or a clerk on their behalf, declines them.
    command("opt_out_notices", "opt-out-notices", i.ActorOnlyIn, {RESIDENT, CLERK}, "退订短信通知", (*OPEN, S.CLOSED),
            "The petitioner declines SMS notices (退订短信)"),
)  # fmt: skip

BY_NAME = {c.name: c for c in COMMANDS}
BY_PATH = {c.path: c for c in COMMANDS}
