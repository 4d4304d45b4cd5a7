"""The demo's stories of issue 17: second handling (不满意重办), reassignment (改派),
transfer (转办) and approvals (审批), told on a few of the demo's cases so the board,
the ledger and the reports show them.

Each story takes a case the main planner registers and classifies (a scenario stuck at
"classified") and writes the rest of its life here, through the real commands. Who acts
(the grid leader now holding the case, the township of its street) is read from the case
when the step runs; everything else is planned, so the same seed tells the same stories.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from cases.actor import Actor
from cases.case import Case
from cases.commands import BY_NAME
from cases.vocabulary import FeedbackMethod, Role, Satisfaction
from commands.cases import Cases

if TYPE_CHECKING:
    from demo.stories import Scenario, Script, _Planner

CLERK = Actor("CL001", Role.INTAKE_CLERK)
OPERATOR = Actor("CL002", Role.INTAKE_CLERK)  # 12345话务员: call-backs and follow-up calls
SUPERVISOR = Actor("SV001", Role.SUPERVISION)

# The older stories run their course; "reopen_open" is recent and still being handled again.
OLDER = (
    "reopen_dissatisfied",
    "reassign",
    "extension_approved",
    "transfer",
    "reopen_follow_up",
    "return_refused",
    "return_approved",
)
RECENT = "reopen_open"
TRANSFER_TO = ("shuiwu", "shichang", "ziranziyuan", "jiaotong", "shengtai", "minzheng", "weijian")

ActorOf = Actor | Callable[[Case], Actor]


class SecondHandlingStories:
    def __init__(self, planner: _Planner, ages: list[float], first: int) -> None:
        self.p = planner
        self.extra = 0  # events beyond one per step (an approval is a decision and its effect)
        older = [i for i in range(first, len(ages)) if 35 <= ages[i] <= 100]
        step = max(1, len(older) // len(OLDER)) if older else 1
        self.chosen: dict[int, str] = dict(zip(older[::step], OLDER, strict=False))
        # Registered about sixteen days ago: handled, rated, reopened (≤ ten days) and open again now.
        recent = [i for i in range(first, len(ages)) if i not in self.chosen and 12 <= ages[i] <= 24]
        if recent:
            self.chosen[min(recent, key=lambda i: abs(ages[i] - 16))] = RECENT

    def scenario(self, index: int) -> Scenario:
        from demo.stories import Scenario

        story = self.chosen[index]
        path = "big" if story == "transfer" else "committed"
        return Scenario(path, two_leaders=story in ("reassign", "return_approved"), stuck="classified")

    def tell(self, script: Script) -> None:
        story = self.chosen.get(script.index)
        if story is not None:
            _Story(self, script).tell(story)


class _Story:
    def __init__(self, stories: SecondHandlingStories, script: Script) -> None:
        self.stories = stories
        self.p = stories.p
        self.s = script

    # --- steps ---------------------------------------------------------------

    def do(self, kind: str, hours: tuple[float, float], command: str, actor: ActorOf, **fields: Any) -> None:
        """`Cases.<command>` after `hours`; an actor or a field may be a function of the case then."""
        script = self.s

        def run(cases: Cases) -> None:
            assert script.case_id is not None
            case = cases.get_case(script.case_id)
            who = actor(case) if callable(actor) else actor
            values = {k: v(case) if callable(v) else v for k, v in fields.items()}
            values = {k: v.replace("{number}", script.number) if type(v) is str else v for k, v in values.items()}
            before = case.version
            cases.act(BY_NAME[command], script.case_id, who, values)
            self.stories.extra += cases.get_case(script.case_id).version - before - 1

        script.add(kind, self.p.later(script.t, *hours), run)

    @staticmethod
    def holder(case: Case) -> Actor:
        assert case.assignee is not None
        return Actor(case.assignee, Role.GRID_LEADER)

    def township(self, case: Case) -> Actor:
        officers = self.p.officers.get(case.units["street"]) or [Actor(f"T-{case.units['street']}", Role.TOWNSHIP)]
        return Actor(officers[0].id, Role.TOWNSHIP, case.units["street"])

    def leader_of_grid(self, case: Case, *, other: bool) -> str:
        """The grid's first leader, or another than the one holding it (or the one who asked to return it)."""
        leaders = sorted(p.id for p in self.p.ref.grid_leaders.values() if case.units["grid"] in p.grids)
        previous = case.assignee or (case.requests[-1]["requested_by"] if case.requests else None)
        others = [g for g in leaders if g != previous]
        return (others or leaders)[0] if other else leaders[0]

    def assigned(self) -> None:
        self.do("assign", (0.5, 3), "assign", CLERK, assignee=lambda c: self.leader_of_grid(c, other=False))

    def handled(self, *, doer: ActorOf | None = None, rating: Satisfaction | None = Satisfaction.SATISFIED) -> None:
        """From signing to the resident's rating."""
        doer = doer or self.holder
        self.do("report_progress", (1, 20), "report_progress", doer, progress="已到现场核实，正在组织整改")
        self.do("rectify", (24, 60), "rectify", doer, summary="问题已整改到位")
        self.do("verify", (2, 24), "verify", OPERATOR, passed=True, reason="电话回访居民，确认整改结果达标")
        self.do(
            "close",
            (0.1, 6),
            "close_case",
            CLERK,
            summary="整改结果达标、居民检验通过，予以销号。",
            suggestion_outcome=None,
        )
        self.do(
            "feedback",
            (0.5, 24),
            "give_feedback",
            OPERATOR,
            method=FeedbackMethod.HOTLINE_CALLBACK,
            content="热线回访，告知办理结果",
        )
        if rating is not None:
            comment = "问题反复出现，不满意" if rating == Satisfaction.DISSATISFIED else "办得及时，满意"
            self.do("rate", (2, 48), "rate", OPERATOR, satisfaction=rating, comment=comment)

    def decide(self, request_no: int, approver: ActorOf, approved: bool, reason: str) -> None:
        self.do(
            "decide_request",
            (1, 8),
            "decide_request",
            approver,
            request_no=request_no,
            approved=approved,
            reason=reason,
        )

    def extension_due(self, case: Case) -> date:
        return date.fromisoformat(case.deadlines["resolve"]["due"]) + timedelta(days=7)

    # --- the stories ------------------------------------------------------------

    def tell(self, story: str) -> None:
        getattr(self, story)()

    def reopen_dissatisfied(self) -> None:
        """Rated dissatisfied on the call-back, reopened by the intake office, handled again."""
        self.assigned()
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled(rating=Satisfaction.DISSATISFIED)
        self.do("reopen", (2, 24), "reopen", CLERK, reason="回访居民评议不满意：问题未彻底解决，转原承办人重办")
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled(rating=Satisfaction.SATISFIED)

    def reopen_follow_up(self) -> None:
        """No rating, but the follow-up call hears the problem is back: supervision reopens it."""
        self.assigned()
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled(rating=None)
        self.do(
            "follow_up",
            (24, 72),
            "follow_up",
            OPERATOR,
            reached=True,
            resolved=False,
            note="回访：问题复发，居民要求再次处理",
        )
        self.do("reopen", (2, 24), "reopen", SUPERVISOR, reason="回访未解决，督查室责成重办")
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled(rating=None)
        self.do(
            "follow_up", (24, 72), "follow_up", OPERATOR, reached=True, resolved=True, note="回访：已修好，居民认可"
        )
        self.do("rate", (0.1, 1), "rate", OPERATOR, satisfaction=Satisfaction.BASICALLY_SATISFIED, comment="基本满意")

    def reopen_open(self) -> None:
        """Reopened a few days ago and being handled again: on the board with fresh deadlines."""
        self.assigned()
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled(rating=Satisfaction.DISSATISFIED)
        self.do("reopen", (2, 24), "reopen", CLERK, reason="居民评议不满意，要求重办")
        self.do("accept", (1, 6), "accept", self.holder)

    def reassign(self) -> None:
        """The grid leader is away: the intake office reassigns to the grid's other leader."""
        self.assigned()
        self.do(
            "reassign",
            (1, 8),
            "reassign",
            CLERK,
            assignee=lambda c: self.leader_of_grid(c, other=True),
            reason="原网格长外出培训，改派本网格另一名网格长",
        )
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled()

    def transfer(self) -> None:
        """A summoned department finds the problem is another's and hands its part on."""
        self.assigned()
        self.do("accept", (1, 6), "accept", self.holder)
        self.do(
            "whistle",
            (1, 24),
            "whistle",
            self.township,
            departments=["chengguan", "zhujian"],
            reason="问题超出网格处置能力，召集城管、住建报到",
        )
        self.do("report_in", (0.5, 4), "report_in", Actor("D-chengguan-demo", Role.DEPARTMENT, "chengguan"))
        target = TRANSFER_TO[self.s.index % len(TRANSFER_TO)]
        name = self.p.ref.departments.get(target, target)
        self.do(
            "transfer",
            (1, 24),
            "transfer",
            Actor("D-zhujian-demo", Role.DEPARTMENT, "zhujian"),
            to_department=target,
            reason=f"经现场核查，该问题属{name}职责，转{name}办理",
        )
        doer = Actor(f"D-{target}-demo", Role.DEPARTMENT, target)
        self.do("report_in", (1, 24), "report_in", doer)
        self.do(
            "consult",
            (2, 24),
            "consult",
            self.township,
            outcome=f"会商议定：由{name}牵头，城管配合",
            lead_department=target,
        )
        self.handled(doer=doer)

    def extension_approved(self) -> None:
        """The grid leader asks for more time; the township approves, and only then the limit moves."""
        self.assigned()
        self.do("accept", (1, 6), "accept", self.holder)
        self.do(
            "request_extension",
            (1, 4),
            "request_extension",
            self.holder,
            new_due=self.extension_due,
            reason="需等待配件到货，申请延期",
        )
        self.decide(1, self.township, True, "情况属实，同意延期")
        self.handled()

    def return_refused(self) -> None:
        """A return request the supervision office refuses, then an extension request the township refuses."""
        self.assigned()
        self.do("request_return", (0.5, 4), "request_return", self.holder, reason="反映地址疑似不在本网格")
        self.decide(1, SUPERVISOR, False, "经核实地址在本网格，请继续办理")
        self.do("accept", (0.5, 3), "accept", self.holder)
        self.do(
            "request_extension",
            (1, 8),
            "request_extension",
            self.holder,
            new_due=self.extension_due,
            reason="施工队排期较晚",
        )
        self.decide(2, self.township, False, "小事不出网格，请按原时限办结")
        self.handled()

    def return_approved(self) -> None:
        """A return request the township approves: back to the intake office, assigned again."""
        self.assigned()
        self.do("request_return", (0.5, 4), "request_return", self.holder, reason="该事项由物业负责，非网格长职责范围")
        self.decide(1, self.township, True, "同意退单，由受理中心重新派单")
        self.do("assign", (0.5, 4), "assign", CLERK, assignee=lambda c: self.leader_of_grid(c, other=True))
        self.do("accept", (1, 6), "accept", self.holder)
        self.handled()
