"""The demo district's stories: realistic petitions driven through the real
`Cases` commands, along every path of the lifecycle.

The stories follow the five reports in the domain brief: a rooftop leak caused
by an illegal structure, with the township blowing the whistle for housing,
urban management and the police station (Tianchang); a compound without
property management (Sanming, Mawei); cars blocking a lane and a water-pipe
quarrel between floors (Jiangsu's grid leaders); a "love station" suggestion a
city secretary took on himself, and care for empty-nest elders (Lüliang);
dog-walking rules and kitchen fumes (Tianchang); and the everyday rest.

Each case's script of (time, command) is planned first; then every command
of every case runs in global time order with the application's clock set to
that time, so the log reads in time order and every limit is judged on the
day it was acted on. Nothing after `now` runs: recent cases stay open at the
stage they had reached, beside older ones left stuck and overdue.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from cases.actor import Actor
from cases.calendar import is_working_day
from cases.clock import CHINA, local_date
from cases.places import inside
from cases.vocabulary import FeedbackMethod, HandlingType, Role, Satisfaction, SuggestionOutcome, Tier
from commands.cases import Cases
from demo.platform_exports import HEADERS_110, HEADERS_12345, export_csv
from demo.words import (
    ANY_HOUR_CHANNELS,
    BIG_PROGRESS,
    CHANNEL_WEIGHTS,
    COMMENTS,
    COMPOUNDS,
    DAYTIME_CHANNELS,
    EVENING_CHANNELS,
    EXTENSION_REASONS,
    FEEDBACK,
    FEMALE,
    MALE,
    PHONE_PREFIXES,
    RETURN_REASONS,
    ROADS,
    SMALL_PROGRESS,
    SUGGESTION_PROGRESS,
    SURNAMES,
    THEMES,
    VIA,
    VILLAGE_PLACES,
    Theme,
)
from reference.model import ReferenceData

DAYS = 120  # how far back the demo's cases reach

# People the reference model does not load (demo_district.json lists them).
CLERK = Actor("CL001", Role.INTAKE_CLERK)  # 民情信息员
OPERATOR = Actor("CL002", Role.INTAKE_CLERK)  # 12345话务员
SUPERVISORS = (Actor("SV001", Role.SUPERVISION), Actor("SV002", Role.SUPERVISION))
SUPERVISOR_NAMES = {"SV001": "督查室", "SV002": "区纪委监委"}

PATHS: dict[str, tuple[HandlingType, Tier]] = {
    "immediate": (HandlingType.IMMEDIATE, Tier.SMALL),  # 即办件, 小事立马办
    "committed": (HandlingType.COMMITTED, Tier.SMALL),  # 承诺件
    "supplement": (HandlingType.SUPPLEMENT, Tier.SMALL),  # 补办件
    "big": (HandlingType.COMMITTED, Tier.BIG),  # 大事联动会商办
    "escalated": (HandlingType.ESCALATED, Tier.BIG),  # 上报件
    "hard": (HandlingType.COMMITTED, Tier.HARD),  # 难事包案重点办
    "suggestion": (HandlingType.SUGGESTION, Tier.SMALL),  # 建议件
}
PATH_WEIGHTS = {
    "immediate": 22,
    "committed": 25,
    "supplement": 6,
    "big": 15,
    "escalated": 6,
    "hard": 8,
    "suggestion": 18,
}
SATISFACTION = ((Satisfaction.SATISFIED, 95), (Satisfaction.BASICALLY_SATISFIED, 3.5), (Satisfaction.DISSATISFIED, 1.5))


# --- a case's script ---------------------------------------------------------


@dataclass
class Scenario:
    path: str
    returned: bool = False
    failures: int = 0  # failed resident verifications before one passes
    extend: bool = False
    late: bool = False  # rectified after the limit, after a supervision notice
    stuck: str | None = None  # the stage at which the case stops, left open
    outcome: SuggestionOutcome | None = None
    leader: bool = False  # a suggestion a leader takes on (tier hard)
    two_leaders: bool = False  # in a grid with two leaders, so a return goes to the other
    theme: str | None = None  # a story from the reports, told on purpose
    main: int | None = None  # a duplicate (重复件): the index of the main case's script


# Oldest cases first: each path and twist at least once whatever the count.
COVERAGE = (
    Scenario("immediate"),
    Scenario("committed", returned=True, two_leaders=True),
    Scenario("big", failures=1),
    Scenario("suggestion", outcome=SuggestionOutcome.ADOPTED, leader=True, theme="love_station"),
    Scenario("big", theme="roof_leak"),
    Scenario("committed", extend=True),
    Scenario("hard", extend=True),
    Scenario("escalated", returned=True),
    Scenario("committed", late=True),
    Scenario("suggestion", outcome=SuggestionOutcome.ANSWERED),
    Scenario("supplement", failures=1),
    Scenario("hard", theme="no_property"),
    Scenario("big", late=True),
    Scenario("committed", stuck="rectifying"),
    Scenario("big", stuck="whistled"),
    Scenario("immediate"),
    Scenario("committed", failures=2),
)


@dataclass
class Step:
    at: datetime
    case: int
    seq: int
    kind: str
    run: Callable[[Cases], None]

    def clock(self) -> datetime:
        """The application's clock while this step runs."""
        return self.at


@dataclass
class Script:
    index: int
    scenario: Scenario
    steps: list[Step] = field(default_factory=list)
    case_id: UUID | None = None
    number: str = ""
    done: list[str] = field(default_factory=list)
    registration: dict[str, Any] = field(default_factory=dict)  # what was registered (a duplicate repeats it)

    @property
    def t(self) -> datetime:
        return self.steps[-1].at

    def add(self, kind: str, at: datetime, run: Callable[[Cases], None]) -> datetime:
        if self.steps and at <= self.t:
            at = self.t + timedelta(minutes=2)
        self.steps.append(Step(at, self.index, len(self.steps), kind, run))
        return at

    def command(self, kind: str, at: datetime, command: str, actor: Actor, /, **fields: Any) -> datetime:
        """Plans `Cases.<command>(case_id, actor, **fields)`; "{number}" in a text
        becomes the case number, known only once the case is registered."""

        def run(cases: Cases) -> None:
            values = {k: v.replace("{number}", self.number) if type(v) is str else v for k, v in fields.items()}
            getattr(cases, command)(self.case_id, actor, **values)

        return self.add(kind, at, run)


class _Planner:
    """Plans every case's script; nothing here touches the store."""

    def __init__(self, cases: Cases, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.policy = cases.policy
        ref = cases.reference
        self.ref = ref
        self.grids = sorted(ref.grids)
        self.micro_by_grid: dict[str, list[str]] = {}
        for micro, grid in sorted(ref.micro_grids.items()):
            self.micro_by_grid.setdefault(grid, []).append(micro)
        self.leaders_by_grid: dict[str, list[str]] = {}
        for person in sorted(ref.grid_leaders.values(), key=lambda p: p.id):
            for grid in person.grids:
                self.leaders_by_grid.setdefault(grid, []).append(person.id)
        self.officers: dict[str, list[Actor]] = {}
        for person in sorted(ref.township_officers.values(), key=lambda p: p.id):
            self.officers.setdefault(person.unit or "", []).append(Actor(person.id, Role.TOWNSHIP, person.unit))
        self.leaders = sorted(ref.leaders)
        self.themes = [
            t for t in THEMES if t.category in ref.categories and all(d in ref.departments for d in t.departments)
        ]
        self.channels = {c: w for c, w in CHANNEL_WEIGHTS.items() if c in ref.channels} or {c: 1 for c in ref.channels}
        self._working: dict[date, bool] = {}
        self._staff: dict[tuple[str, str], str] = {}

    # --- time ---------------------------------------------------------------

    def working(self, day: date) -> bool:
        if day not in self._working:
            self._working[day] = is_working_day(day)[0]
        return self._working[day]

    def next_working(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.working(day):
            day += timedelta(days=1)
        return day

    def moment(self, day: date, hour: float) -> datetime:
        minutes = min(int(hour * 60), 23 * 60 + 58)
        local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, self.rng.randint(0, 59))
        return local.replace(tzinfo=CHINA).astimezone(UTC)

    def office(self, t: datetime) -> datetime:
        """The same moment if it falls in office hours, else the next opening."""
        local = t.astimezone(CHINA)
        day, hour = local.date(), local.hour + local.minute / 60
        if self.working(day):
            if 8.5 <= hour < 17.75:
                return t
            if hour < 8.5:
                return self.moment(day, self.rng.uniform(8.5, 9.5))
        return self.moment(self.next_working(day), self.rng.uniform(8.5, 10.0))

    def resident(self, t: datetime) -> datetime:
        """Residents answer from eight in the morning to nine at night."""
        local = t.astimezone(CHINA)
        hour = local.hour + local.minute / 60
        if 8 <= hour < 21:
            return t
        day = local.date() if hour < 8 else local.date() + timedelta(days=1)
        return self.moment(day, self.rng.uniform(8.5, 11.0))

    def later(self, t: datetime, lo: float, hi: float, *, office: bool = True) -> datetime:
        """`lo`..`hi` hours after `t`, moved into office hours unless told not to."""
        t = t + timedelta(hours=self.rng.uniform(lo, hi))
        return self.office(t) if office else t

    def before(self, t: datetime, last: date) -> datetime | None:
        """An office moment after `t` whose local date is at most `last`, or None."""
        start = local_date(t)
        days = [start + timedelta(days=i) for i in range((last - start).days + 1)]
        days = [d for d in days if self.working(d)]
        self.rng.shuffle(days)
        for day in days:
            local = t.astimezone(CHINA)
            floor = local.hour + local.minute / 60 + 0.5 if day == start else 8.5
            if floor < 17.5:
                return self.moment(day, self.rng.uniform(max(floor, 8.5), 17.5))
        return None

    def by(self, t: datetime, last: date) -> datetime:
        """An office moment after `t`, on or before `last` when that is possible."""
        return self.before(t, last) or self.later(t, 1, 4)

    def resolve_due(self, handling_type: HandlingType, tier: Tier, registered: datetime, at: datetime) -> date:
        version = self.policy.in_force(local_date(at))
        deadlines = version.deadlines(handling_type, tier, local_date(registered))
        return date.fromisoformat(deadlines["resolve"]["due"])

    # --- people and places -------------------------------------------------

    def person(self) -> tuple[str, str, bool]:
        male = self.rng.random() < 0.48
        surname = self.rng.choice(SURNAMES)
        return surname + self.rng.choice(MALE if male else FEMALE), surname, male

    def phone(self) -> str:
        return self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def staff(self, department: str, street: str) -> str:
        if (department, street) not in self._staff:
            self._staff[(department, street)] = self.person()[0]
        return self._staff[(department, street)]

    def department(self, code: str, street: str) -> Actor:
        return Actor(f"D-{code}-{street[-3:]}", Role.DEPARTMENT, code)

    def township(self, street: str) -> Actor:
        officers = self.officers.get(street) or [Actor(f"T-{street}", Role.TOWNSHIP, street)]
        return self.rng.choice(officers)

    def place(self, units: dict[str, str]) -> dict[str, Any]:
        rng = self.rng
        community = units["community_name"]
        village = community.endswith("村")
        if village:
            compound = community + rng.choice(VILLAGE_PLACES).format(k=rng.randint(1, 9))
            building = f"{compound}{rng.randint(1, 60)}号"
            location = f"{units['street_name']}{building}"
        else:
            compound = rng.choice(COMPOUNDS.get(community) or (f"{community}新村", f"{community}花园"))
            building = f"{compound}{rng.randint(1, 24)}号楼"
            location = f"{units['street_name']}{community}{building}{rng.randint(1, 4)}单元"
        floor = rng.randint(2, 6 if village else 18)
        room = f"{floor}0{rng.randint(1, 4)}室"
        return {
            "compound": compound,
            "place": building,
            "room": room,
            "floor": floor,
            "road": rng.choice(ROADS),
            "n": rng.randint(2, 9),
            "location": location,
            "village": village,
        }

    # --- planning ------------------------------------------------------------

    def scenario(self, registered_days_ago: float) -> Scenario:
        rng = self.rng
        path = rng.choices(list(PATH_WEIGHTS), weights=list(PATH_WEIGHTS.values()))[0]
        s = Scenario(path)
        if path == "suggestion":
            s.outcome = SuggestionOutcome.ADOPTED if rng.random() < 0.6 else SuggestionOutcome.ANSWERED
            s.leader = rng.random() < 0.12
        if path != "immediate":
            s.returned = rng.random() < 0.07
            s.two_leaders = s.returned and rng.random() < 0.3
        if path not in ("immediate", "suggestion"):
            roll = rng.random()
            s.failures = 2 if roll < 0.015 else 1 if roll < 0.11 else 0
            s.extend = rng.random() < 0.1
            s.late = not s.extend and rng.random() < 0.07
        stuck_chance = 0.16 if registered_days_ago < 40 else 0.04
        if path != "immediate" and rng.random() < stuck_chance:
            stages = ["assigned", "accepted"]
            if path in ("big", "escalated", "hard"):
                stages += ["whistled", "rectifying", "rectifying"]
            elif path != "suggestion":
                stages += ["rectifying", "rectifying"]
                if s.failures:
                    stages.append("reworking")
            if registered_days_ago < 3:
                stages += ["registered", "classified"]
            s.stuck = rng.choice(stages)
        return s

    def registration_time(self, days_ago: float, channel: str, path: str) -> datetime:
        rng = self.rng
        day = local_date(self.now) - timedelta(days=int(days_ago))
        if channel not in ANY_HOUR_CHANNELS or path == "immediate":
            while not self.working(day):
                day -= timedelta(days=1)
        if path == "immediate":
            hour = rng.uniform(8.5, 15.0)
        elif channel in EVENING_CHANNELS:
            hour = rng.uniform(19.0, 21.0)
        elif channel in ANY_HOUR_CHANNELS:
            hour = rng.triangular(7.5, 22.5, 10.0)
        else:
            hour = rng.uniform(8.5, 17.5)
        at = self.moment(day, hour)
        while at > self.now:
            at -= timedelta(days=1)
        return at

    def plan(self, index: int, days_ago: float, scenario: Scenario) -> Script:
        rng = self.rng
        shared = [g for g in self.grids if len(self.leaders_by_grid.get(g, [])) > 1]
        grid = rng.choice(shared if scenario.two_leaders and shared else self.grids)
        units = self.ref.grids[grid]
        place = self.place(units)
        avoid = "urban" if place["village"] else "rural"
        fitting = [t for t in self.themes if scenario.path in t.paths and t.where != avoid]
        theme = rng.choice(fitting or [t for t in self.themes if scenario.path in t.paths] or self.themes)
        pinned = [t for t in self.themes if t.key == scenario.theme and scenario.path in t.paths]
        if pinned:
            theme = pinned[0]
            if theme.where == "urban" and place["village"]:
                grid = rng.choice([g for g in self.grids if not self.ref.grids[g]["community_name"].endswith("村")])
                units = self.ref.grids[grid]
                place = self.place(units)
        if scenario.path in ("big", "escalated") and not theme.departments:
            scenario.path = "committed"
        name, surname, male = self.person()
        phone = self.phone()
        mr = f"{surname}{'先生' if male else '女士'}"
        who = f"村民{mr}" if place["village"] else rng.choice((f"居民{mr}", f"{place['compound']}业主{mr}"))
        if rng.random() < 0.08:
            who = f"退休老党员{name}"
        channel = self.channel(theme, scenario.path, place["village"], pinned=bool(pinned))
        words = {**place, "who": who, "name": name, "via": VIA.get(channel, "")}
        variant = rng.randrange(len(theme.details))  # title i tells detail i mod n
        titles = [t for i, t in enumerate(theme.titles) if i % len(theme.details) == variant] or list(theme.titles)
        script = Script(index, scenario)
        case = _Case(self, script, theme, units, words, Actor(f"R{phone}", Role.RESIDENT))

        registered = self.registration_time(days_ago, channel, scenario.path)
        leaders = self.leaders_by_grid[grid]
        registrar = CLERK
        if channel in ("hotline_12345", "hotline", "call_110"):
            registrar = OPERATOR
        elif channel == "door_to_door" and rng.random() < 0.6:
            registrar = Actor(rng.choice(leaders), Role.GRID_LEADER)
        micro = self.micro_by_grid.get(grid, [])
        fields = {
            "channel": channel,
            "category": theme.category,
            "title": rng.choice(titles),
            "description": theme.details[variant].format(**words),
            "location": place["location"],
            "grid": rng.choice(micro) if micro and rng.random() < 0.5 else grid,
            "petitioner_name": name,
            "petitioner_phone": phone,
        }
        fields |= point_in_grid(self.ref, grid, random.Random(f"place-{index}-{grid}"))

        def register(cases: Cases) -> None:
            result = cases.register(registrar, **fields)
            script.case_id, script.number = UUID(result.case_id), result.number

        script.add("register", registered, register)
        script.registration = fields
        case.title = fields["title"]
        case.variant = variant
        case.run(leaders)
        return script

    def channel(self, theme: Theme, path: str, village: bool, *, pinned: bool = False) -> str:
        rng = self.rng
        if path == "immediate":
            options = [c for c in DAYTIME_CHANNELS if c in self.channels] or list(self.channels)
            return rng.choice(options)
        preferred = [c for c in theme.channels if c in self.channels and (village or c != "villagers_talk")]
        if preferred and (pinned or rng.random() < 0.6):
            return rng.choice(preferred)
        weighted = {c: w for c, w in self.channels.items() if village or c != "villagers_talk"}
        return rng.choices(list(weighted), weights=list(weighted.values()))[0]


class _Case:
    """Writes one case's script along its scenario."""

    def __init__(
        self,
        planner: _Planner,
        script: Script,
        theme: Theme,
        units: dict[str, str],
        words: dict[str, Any],
        resident: Actor,
    ) -> None:
        self.p = planner
        self.rng = planner.rng
        self.s = script
        self.sc = script.scenario
        self.theme = theme
        self.units = units
        self.words = words
        self.resident = resident
        self.title = ""
        self.due = date.min
        self.lead: str | None = None
        self.lead_actor: Actor | None = None
        self.leader: Actor | None = None
        self.whistled: list[str] = []
        self.street = units["street"]
        self.township = planner.township(self.street)
        self.grid_leader = Actor("", Role.GRID_LEADER)  # set on assignment
        self.supervised_due = date.min
        self.plan_deadline = date.min
        self.variant = 0  # which of the theme's details this case tells

    def text(self, options: Sequence[str], fallback: str = "") -> str:
        """One of the theme's words: the case's own variant when the list has one per detail."""
        if not options:
            return fallback
        paired = len(options) == len(self.theme.details) > 1
        return (options[self.variant] if paired else self.rng.choice(options)).format(**self.words)

    def dept_name(self, code: str) -> str:
        return self.p.ref.departments[code]

    # --- the whole life ------------------------------------------------------

    def run(self, leaders: list[str]) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        if sc.stuck == "registered":
            return
        handling_type, tier = PATHS[sc.path]
        if sc.path == "hard" and rng.random() < 0.3:
            handling_type = HandlingType.ESCALATED
        if sc.path == "suggestion" and sc.leader:
            tier = Tier.HARD
        intake = self.township if tier != Tier.SMALL and rng.random() < 0.35 else CLERK
        immediate = sc.path == "immediate"
        t = p.later(s.t, 0.08, 0.6, office=not immediate)
        registered = s.steps[0].at
        t = s.command("classify", t, "classify", intake, handling_type=handling_type, tier=tier)
        self.due = p.resolve_due(handling_type, tier, registered, t)
        if sc.stuck == "classified":
            return
        leader_id = rng.choice(leaders)
        t = s.command("assign", p.later(t, 0.03, 0.3, office=not immediate), "assign", intake, assignee=leader_id)
        if sc.returned:
            t = s.command(
                "return",
                p.later(t, 0.3, 5),
                "return_case",
                Actor(leader_id, Role.GRID_LEADER),
                reason=rng.choice(RETURN_REASONS),
            )
            others = [g for g in leaders if g != leader_id]
            leader_id = rng.choice(others) if others else leader_id
            t = s.command("assign", p.later(t, 0.3, 3), "assign", intake, assignee=leader_id)
        self.grid_leader = Actor(leader_id, Role.GRID_LEADER)
        if sc.stuck == "assigned":
            self.supervise(self.units["street_name"])
            return
        accept_after = (0.05, 0.5) if immediate else (0.15, 6)
        s.command("accept", p.later(t, *accept_after, office=not immediate), "accept", self.grid_leader)
        if sc.path == "immediate":
            self.immediate()
        elif sc.path == "suggestion":
            self.suggestion()
        elif sc.path in ("big", "escalated", "hard"):
            self.joint()
        else:
            self.small()

    def immediate(self) -> None:
        p, s = self.p, self.s
        gl = self.grid_leader
        s.command("rectify", p.later(s.t, 0.4, 3, office=False), "rectify", gl, summary=self.text(self.theme.done))
        verifier = self.verifier()
        s.command(
            "verify",
            p.later(s.t, 0.2, 1.5, office=False),
            "verify",
            verifier,
            passed=True,
            reason="居民现场查看，已解决" if verifier is self.resident else "电话回访居民，确认已解决",
        )
        self.finish(gl, methods=(FeedbackMethod.ON_SITE, FeedbackMethod.HOTLINE_CALLBACK, FeedbackMethod.HOME_VISIT))

    def small(self) -> None:
        """承诺件 and 补办件: the grid leader works it, the township may extend."""
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        gl = self.grid_leader
        if sc.path == "supplement":
            s.command(
                "report_progress",
                p.later(s.t, 0.5, 8),
                "report_progress",
                gl,
                progress=f"材料不全，已请反映人补充{self.theme.material}",
            )
            s.command(
                "feedback",
                p.later(s.t, 0.1, 2),
                "give_feedback",
                gl,
                method=FeedbackMethod.ONLINE,
                content=f"已通过网络平台告知{self.words['who']}需补充{self.theme.material}",
            )
            s.command(
                "report_progress", p.later(s.t, 20, 60), "report_progress", gl, progress="反映人已补齐材料，转入办理"
            )
        else:
            s.command(
                "report_progress", p.later(s.t, 1, 20), "report_progress", gl, progress=rng.choice(SMALL_PROGRESS)
            )
        if sc.stuck == "accepted":
            self.supervise(self.units["grid_name"])
            return
        plan_at = p.later(s.t, 0.5, 20)
        deadline = max(local_date(plan_at), min(local_date(plan_at) + timedelta(days=rng.randint(1, 5)), self.due))
        self.plan_deadline = deadline
        nearby = (
            f"{self.units['community_name']}村民委员会"
            if self.words["village"]
            else f"{self.words['compound']}物业服务中心"
        )
        unit = rng.choice((self.units["community_name"], nearby, self.units["grid_name"]))
        s.command(
            "plan",
            plan_at,
            "plan_rectification",
            gl,
            measures=self.text(self.theme.measures, "网格长牵头协调相关方限期整改"),
            responsible_unit=unit,
            responsible_person=self.p.ref.grid_leaders[gl.id].name,
            deadline=deadline,
        )
        self.rectify_and_close(gl, self.township, closer=gl, extend_days=(5, 15))

    def joint(self) -> None:
        """大事 and 上报件 by whistle and consultation; 难事 with a leader."""
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        hard = sc.path == "hard"
        if hard:
            self.take_lead(p.later(s.t, 2, 48))
        s.command(
            "report_progress",
            p.later(s.t, 0.5, 30),
            "report_progress",
            self.grid_leader,
            progress="已到现场核实，问题超出网格处置能力，已报镇（街道）"
            if sc.path != "escalated"
            else "已上报区直有关部门",
        )
        if sc.stuck == "accepted":
            self.supervise(self.units["street_name"])
            return
        if self.theme.departments and (not hard or rng.random() < 0.8):
            if not self.whistle():
                self.supervise(self.dept_name(self.whistled[-1]))
                return
            planner = self.leader if hard and self.leader and rng.random() < 0.5 else self.lead_actor
            doer = self.lead_actor
            unit = self.dept_name(self.lead or "")
        else:
            planner = self.leader or self.township
            doer = self.grid_leader
            unit = self.units["street_name"]
        assert planner is not None and doer is not None
        plan_at = p.later(s.t, 1, 40)
        span = rng.randint(7, 20)
        deadline = max(local_date(plan_at), min(local_date(plan_at) + timedelta(days=span), self.due))
        self.plan_deadline = deadline
        person = (
            self.p.staff(self.lead, self.street) if self.lead else self.p.ref.grid_leaders[self.grid_leader.id].name
        )
        if planner.role == Role.LEADER:
            person = self.p.ref.leaders[planner.id].name
        s.command(
            "plan",
            plan_at,
            "plan_rectification",
            planner,
            measures=self.text(self.theme.measures, "牵头部门制定整改方案，限期整改到位"),
            responsible_unit=unit,
            responsible_person=person,
            deadline=deadline,
        )
        s.command("report_progress", p.later(s.t, 20, 90), "report_progress", doer, progress=rng.choice(BIG_PROGRESS))
        extender = self.leader if hard and self.leader else self.township
        closer = self.leader if hard and self.leader else self.township
        self.rectify_and_close(doer, extender, closer=closer, extend_days=(10, 30), big=True)

    def suggestion(self) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        gl = self.grid_leader
        if sc.leader:
            self.take_lead(p.later(s.t, 1, 30), first_secretary=self.theme.key == "love_station")
        s.command(
            "report_progress", p.later(s.t, 2, 60), "report_progress", gl, progress=rng.choice(SUGGESTION_PROGRESS)
        )
        if sc.stuck:
            return
        outcome = sc.outcome or SuggestionOutcome.ANSWERED
        adopted = outcome == SuggestionOutcome.ADOPTED
        summary = self.text(self.theme.adopted if adopted else self.theme.answered, "建议已研究并答复反映人。")
        closer = self.leader if sc.leader and self.leader else rng.choice((gl, self.township, CLERK))
        wait = (120, 460) if sc.leader or adopted else (24, 160)
        s.command("close", p.later(s.t, *wait), "close_case", closer, summary=summary, suggestion_outcome=outcome)
        methods = (
            FeedbackMethod.WRITTEN_REPLY,
            FeedbackMethod.MEETING,
            FeedbackMethod.ONLINE,
            FeedbackMethod.HOME_VISIT,
        )
        self.after_close(closer if closer.role != Role.LEADER else CLERK, methods, summary)

    # --- pieces --------------------------------------------------------------

    def take_lead(self, at: datetime, *, first_secretary: bool = False) -> None:
        """包案: the first leader (the secretary) takes the love-station idea, as in Lüliang."""
        leaders = self.p.leaders
        if not leaders:
            return
        if first_secretary:
            chosen = leaders[0]
        else:
            chosen = self.rng.choices(leaders, weights=[1 if i < 2 else 4 for i in range(len(leaders))])[0]
        self.leader = Actor(chosen, Role.LEADER)
        self.s.command("take_lead", at, "take_lead", self.leader)

    def whistle(self) -> bool:
        """Blow the whistle; departments report in; the township consults.
        False when the case stops with a department that never reported."""
        rng, p, s = self.rng, self.p, self.s
        codes = list(self.theme.departments)
        lead, others = codes[0], codes[1:]
        if others and not self.sc.theme:  # a story told on purpose summons them all
            k = rng.randint(1, len(others)) if rng.random() < 0.6 else len(others)
            others = rng.sample(others, k)
        self.whistled = [lead, *others]
        names = "、".join(self.dept_name(c) for c in self.whistled)
        t = s.command(
            "whistle",
            p.later(s.t, 1, 30),
            "whistle",
            self.township,
            departments=self.whistled,
            reason=f"{self.theme.why or self.title}，召集{names}报到。",
        )
        arrivals = []
        for code in self.whistled:
            fast = rng.random() < 0.65
            arrivals.append((p.later(t, 0.25, 4) if fast else p.later(t, 24, 80), code))
        arrivals.sort()
        if self.sc.stuck == "whistled":
            arrivals = arrivals[:-1]
            for at, code in arrivals:
                s.command("report_in", at, "report_in", self.p.department(code, self.street))
            missing = {c for c in self.whistled} - {c for _, c in arrivals}
            self.whistled = sorted(missing)
            return False
        for at, code in arrivals:
            s.command("report_in", at, "report_in", self.p.department(code, self.street))
        self.lead = lead
        self.lead_actor = self.p.department(lead, self.street)
        rest = "、".join(self.dept_name(c) for c in others) or "有关部门"
        outcome = (
            f"会商议定：由{self.dept_name(lead)}牵头，会同{rest}和{self.units['street_name']}共同解决；"
            f"{self.text(self.theme.measures, '限期整改')}。"
        )
        s.command("consult", p.later(s.t, 1, 30), "consult", self.township, outcome=outcome, lead_department=lead)
        return True

    def rectify_and_close(
        self, doer: Actor, extender: Actor, *, closer: Actor, extend_days: tuple[int, int], big: bool = False
    ) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        target = self.plan_deadline  # most units finish by the date on their own list
        if sc.extend:
            at = p.before(p.later(s.t, 1, 30), self.due)
            if at is not None:
                new_due = self.due + timedelta(days=rng.randint(*extend_days))
                s.command("extend", at, "extend", extender, new_due=new_due, reason=rng.choice(EXTENSION_REASONS))
                target = max(self.due, new_due - timedelta(days=2))
                self.due = new_due
        if sc.stuck == "rectifying":
            self.supervise(self.responsible_unit())
            return
        if sc.late:
            self.supervise(self.responsible_unit(), notices=1)
            rectify_at = p.by(s.t, self.supervised_due)
        else:
            earliest = p.later(s.t, 2, 24 * 5 if big else 30)
            rectify_at = p.by(earliest, target) if local_date(earliest) <= target else earliest
        done = self.text(self.theme.done, "问题已整改到位。")
        s.command("rectify", rectify_at, "rectify", doer, summary=done)
        for attempt in range(sc.failures):
            s.command(
                "verify_failed",
                p.resident(p.later(s.t, 3, 40, office=False)),
                "verify",
                self.verifier(),
                passed=False,
                reason=self.text(self.theme.failures, "整改不彻底，问题仍然存在"),
            )
            if sc.stuck == "reworking":
                self.supervise(self.responsible_unit())
                return
            rework_at = p.later(s.t, 1, 24)
            s.command(
                "plan",
                rework_at,
                "plan_rectification",
                doer,
                measures=f"针对居民检验意见返工（第{attempt + 1}次）：{self.text(self.theme.measures, '重新整改')}",
                responsible_unit=self.responsible_unit(),
                responsible_person=self.person_of(doer),
                deadline=local_date(rework_at) + timedelta(days=rng.randint(2, 7)),
            )
            s.command("rectify", p.later(s.t, 20, 120), "rectify", doer, summary=f"已按检验意见返工：{done}")
        verifier = self.verifier()
        s.command(
            "verify",
            p.resident(p.later(s.t, 2, 30, office=False)),
            "verify",
            verifier,
            passed=True,
            reason="居民现场检验，整改结果达标" if verifier is self.resident else "电话回访居民，确认整改结果达标",
        )
        self.finish(
            closer,
            methods=(
                (FeedbackMethod.MEETING, FeedbackMethod.WRITTEN_REPLY, FeedbackMethod.HOME_VISIT)
                if big
                else (FeedbackMethod.HOME_VISIT, FeedbackMethod.HOTLINE_CALLBACK, FeedbackMethod.ONLINE)
            ),
            summary=done,
        )

    def finish(self, closer: Actor, methods: Sequence[FeedbackMethod], summary: str = "") -> None:
        summary = summary or self.text(self.theme.done, "问题已处理完毕。")
        immediate = self.sc.path == "immediate"
        self.s.command(
            "close",
            self.p.later(self.s.t, 0.05, 0.5 if immediate else 8, office=not immediate),
            "close_case",
            closer,
            summary=f"整改结果达标、居民检验通过，予以销号。{summary}",
            suggestion_outcome=None,
        )
        self.after_close(closer if closer.role != Role.INTAKE_CLERK else CLERK, methods, summary)

    def after_close(self, giver: Actor, methods: Sequence[FeedbackMethod], summary: str) -> None:
        rng, p, s = self.rng, self.p, self.s
        immediate = self.sc.path == "immediate"
        if rng.random() < 0.15:
            methods = tuple(FeedbackMethod)
        method = rng.choice(methods)
        if method == FeedbackMethod.HOTLINE_CALLBACK:
            giver = OPERATOR
        content = f"{FEEDBACK[method].format(who=self.words['who'])}：{summary}"
        s.command(
            "feedback",
            p.later(s.t, 0.02, 0.4 if immediate else 30, office=not immediate),
            "give_feedback",
            giver,
            method=method,
            content=content,
        )
        if rng.random() > 0.92:
            return  # some residents never rate
        satisfaction = rng.choices([x for x, _ in SATISFACTION], weights=[w for _, w in SATISFACTION])[0]
        rater = OPERATOR if method == FeedbackMethod.HOTLINE_CALLBACK or rng.random() < 0.3 else self.resident
        s.command(
            "rate",
            p.resident(p.later(s.t, 0.2, 4 if immediate else 60, office=False)),
            "rate",
            rater,
            satisfaction=satisfaction,
            comment=rng.choice(COMMENTS[satisfaction]),
        )

    def supervise(self, unit: str, notices: int | None = None) -> None:
        """督办函: once the limit has passed, a new limit for the responsible unit;
        a second notice when that one passes too."""
        rng, p, s = self.rng, self.p, self.s
        notices = notices if notices is not None else rng.choice((1, 1, 2))
        limit = self.due
        for _ in range(notices):
            first_day = max(limit + timedelta(days=1), local_date(s.t))
            at = p.office(p.moment(first_day + timedelta(days=rng.randint(0, 2)), rng.uniform(8.6, 11.5)))
            if at <= s.t:
                at = p.later(s.t, 1, 4)
            new_due = local_date(at) + timedelta(days=rng.randint(3, 7))
            supervisor = rng.choice(SUPERVISORS)
            s.command(
                "supervise",
                at,
                "supervise",
                supervisor,
                responsible_unit=unit,
                new_due=new_due,
                notice=(
                    f"{SUPERVISOR_NAMES.get(supervisor.id, '督查室')}督办函：{{number}}号诉求件“{self.title}”"
                    f"已超过办结时限（{limit}），请{unit}于{new_due}前办结并反馈。"
                ),
            )
            limit = new_due
        self.supervised_due = limit

    def responsible_unit(self) -> str:
        if self.lead:
            return self.dept_name(self.lead)
        return self.units["street_name"] if self.sc.path in ("big", "escalated", "hard") else self.units["grid_name"]

    def person_of(self, actor: Actor) -> str:
        if actor.role == Role.DEPARTMENT and actor.unit:
            return self.p.staff(actor.unit, self.street)
        if actor.role == Role.GRID_LEADER:
            return self.p.ref.grid_leaders[actor.id].name
        if actor.role == Role.LEADER:
            return self.p.ref.leaders[actor.id].name
        return self.p.ref.township_officers[actor.id].name if actor.id in self.p.ref.township_officers else actor.id

    def verifier(self) -> Actor:
        return self.resident if self.rng.random() < 0.7 else OPERATOR


# --- places (issue 18) -------------------------------------------------------


def point_in_grid(reference: ReferenceData, grid: str, rng: random.Random) -> dict[str, float]:
    """Where a demo case is: a point inside its grid's boundary (drawn in the boundary's box until
    one falls inside), so the ledger's GeoJSON shows the district's cases on a map. Its own random
    generator, so the stories themselves stay what they were. Nothing when the grid has no boundary."""
    area = reference.grid_areas.get(grid)
    if not area:
        return {}
    lons = [lon for ring in area for lon, _ in ring]
    lats = [lat for ring in area for _, lat in ring]
    for _ in range(1000):
        lat, lon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
        if inside(area, lat, lon):
            return {"latitude": round(lat, 6), "longitude": round(lon, 6)}
    return {}


# --- running -----------------------------------------------------------------


def load_demo(cases: Cases, count: int = 600, *, seed: int = 2026, now: datetime | None = None) -> dict[str, int]:
    """Create `count` demo cases through the real commands, in time order over
    the `DAYS` days before `now`; returns counts of what happened."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    planner = _Planner(cases, rng, now)
    merged = duplicates_in(count)
    ages = sorted((DAYS * rng.random() ** 1.2 for _ in range(count - merged)), reverse=True)
    scripts = []
    from demo.second_handling import SecondHandlingStories  # issue 17's stories (it imports this module)

    second = SecondHandlingStories(planner, ages, len(COVERAGE))
    for index, days_ago in enumerate(ages):
        scenario = replace(COVERAGE[index]) if index < len(COVERAGE) else planner.scenario(days_ago)
        if index in second.chosen:
            scenario = second.scenario(index)
        scripts.append(planner.plan(index, days_ago, scenario))
        second.tell(scripts[-1])
    scripts += plan_duplicates(planner, scripts, merged)

    steps = sorted((st for sc in scripts for st in sc.steps if st.at <= now), key=lambda st: (st.at, st.case, st.seq))
    original = cases.clock
    try:
        for step in steps:
            cases.clock = step.clock
            try:
                step.run(cases)
            except Exception as e:
                script = scripts[step.case]
                raise RuntimeError(
                    f"demo case #{step.case} ({script.scenario}) step {step.seq} {step.kind} at {step.at}: {e}"
                ) from e
            scripts[step.case].done.append(step.kind)
    finally:
        cases.clock = original

    kinds = Counter(k for sc in scripts for k in sc.done)
    closed = sum("close" in sc.done for sc in scripts)
    linked = [sc for sc in scripts if "link" in sc.done and "unlink" not in sc.done]
    closed_with_main = sum(scripts[sc.scenario.main or 0].done.count("close") for sc in linked)
    return {
        "cases": count,
        # A link and an unlink also record on the main case; a main case closes its duplicates.
        "events": len(steps) + second.extra + kinds["link"] + kinds["unlink"] + closed_with_main,
        "closed": closed,
        "whistled": sum("whistle" in sc.done for sc in scripts),
        "returned": sum("return" in sc.done for sc in scripts),
        "extended": sum("extend" in sc.done for sc in scripts),
        "supervised": sum("supervise" in sc.done for sc in scripts),
        "supervision_notices": kinds["supervise"],
        "failed_verifications": kinds["verify_failed"],
        "suggestions": sum(sc.scenario.path == "suggestion" and "classify" in sc.done for sc in scripts),
        "merged": len(linked),
        "closed_with_main": closed_with_main,
        "unlinked": kinds["unlink"],
        "open": count - closed - closed_with_main,
        # issue 17: second handling, reassignment, transfer, approvals
        "reopened": sum("reopen" in sc.done for sc in scripts),
        "reassigned": sum("reassign" in sc.done for sc in scripts),
        "transferred": sum("transfer" in sc.done for sc in scripts),
        "requests_decided": kinds["decide_request"],
    }


# --- imported hotline work orders (12345 / 110 非警务), issue 17 ---------------------------
# This morning's exports from the 12345 platform and the 110 dispatch, as Tianchang gathers them,
# imported through the same code as `minqing import` (reference/mappings/12345.json and 110.toml).

HOTLINE_ORDERS = (
    ("城乡建设/房屋修缮", "楼顶渗水", "来电人反映所住楼栋顶层连续下雨后渗水，墙面发霉，要求尽快维修。"),
    ("城市管理/市容环卫", "垃圾清运不及时", "来电人反映小区门口垃圾桶满溢两天无人清运，气味很大。"),
    ("生态环境/噪声污染", "夜间施工噪音", "来电人反映附近工地晚上十一点后仍在施工，影响休息。"),
    ("城乡建设/物业管理", "电梯频繁故障", "来电人反映小区电梯一周内停运三次，老人上下楼困难。"),
    ("城市管理/市政设施", "路灯不亮", "来电人反映小区东侧道路路灯损坏多日，夜间出行不安全。"),
    ("交通运输/停车管理", "占用消防通道停车", "来电人反映有车辆长期占用消防通道停放，多次劝说无效。"),
    ("民政/养老服务", "咨询居家养老补贴", "来电人咨询八十岁以上老人居家养老服务补贴如何申请。"),
    ("咨询建议", "建议增设健身器材", "来电人建议在社区广场增设适合老年人的健身器材。"),
)
DISPATCH_CALLS = (
    ("噪音扰民", "报警人称楼上住户深夜大声播放音乐，敲门劝说无果。"),
    ("邻里纠纷", "报警人称与邻居因楼道堆放杂物发生争执，请求调解。"),
    ("宠物扰民", "报警人称邻居家犬只夜间持续吠叫，影响休息。"),
    ("水电气故障", "报警人称楼道水管爆裂漏水，已关闭总阀，请求协调维修。"),
)


def load_imported(cases: Cases, *, seed: int = 2026, now: datetime | None = None) -> dict[str, int]:
    """Imports this morning's 12345 and 110 exports (received over the last three days), then
    the intake office classifies and dispatches half of them: the board and the ledger show
    cases with a platform's order number. Importing again adds nothing."""
    from commands.imports import Mapping, import_file
    from config.settings import IMPORT_MAPPINGS

    now = now or datetime.now(UTC)
    rng = random.Random(seed + 17)
    grids = [units for units in cases.reference.grids.values() if units["grid_name"].endswith("第1网格")]
    moment = now.astimezone(CHINA)

    def received(i: int) -> str:
        return (moment - timedelta(hours=6 + 7 * i, minutes=rng.randrange(60))).strftime("%Y-%m-%d %H:%M:%S")

    def caller(i: int) -> tuple[str, str]:
        surname = rng.choice("王李张刘陈杨黄林郑吴")
        return surname + rng.choice(("先生", "女士")), rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"

    hotline = []
    for i, (category, title, text) in enumerate(HOTLINE_ORDERS):
        name, phone = caller(i)
        units = grids[i % len(grids)]
        place = f"{units['community_name']}{rng.randrange(1, 30)}号楼"
        number = f"12345-{moment:%Y%m%d}-{i + 1:04d}"
        hotline.append([number, received(i), name, phone, title, text, "", category, place, units["grid_name"]])
    dispatch = []
    for i, (kind, text) in enumerate(DISPATCH_CALLS):
        name, phone = caller(i)
        units = grids[(i + 3) % len(grids)]
        # 110 dispatch reports its time in Chinese: 2026年03月02日 21:40.
        at = (moment - timedelta(hours=10 + 9 * i)).strftime("%Y年%m月%d日 %H:%M")
        number = f"J{units['district']}{moment:%Y%m%d}{i + 1:04d}"
        dispatch.append(
            [number, at, name, phone, kind, text, f"{units['community_name']}{i + 2}号楼", units["grid_name"]]
        )

    original = cases.clock
    cases.clock = lambda: now
    try:
        reports = [
            import_file(
                cases,
                OPERATOR,
                export_csv(HEADERS_12345, hotline),
                Mapping.load(IMPORT_MAPPINGS / "12345.json"),
                source="12345工单导出.csv",
            ),
            import_file(
                cases,
                OPERATOR,
                export_csv(HEADERS_110, dispatch),
                Mapping.load(IMPORT_MAPPINGS / "110.toml"),
                source="110非警务分流.csv",
            ),
        ]
        dispatched = 0
        for report in reports:
            for entry in report.imported[::2]:
                case_id = UUID(entry["case_id"])
                grid = cases.get_case(case_id).units["grid"]
                leader = next(p for p in cases.reference.grid_leaders.values() if grid in p.grids)
                cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
                cases.assign(case_id, CLERK, assignee=leader.id)
                dispatched += 1
    finally:
        cases.clock = original
    return {
        "imported": sum(len(r.imported) for r in reports),
        "imported_before": sum(len(r.skipped) for r in reports),
        "imported_refused": sum(r.refused_rows for r in reports),
        "imported_dispatched": dispatched,
    }


# --- merged cases (重复件 / 并案) -----------------------------------------------


def duplicates_in(count: int) -> int:
    """How many of the demo's `count` petitions repeat another's problem (one in 25, at least 3)."""
    return min(count // 2, max(3, count // 25))


def plan_duplicates(planner: _Planner, scripts: list[Script], merged: int) -> list[Script]:
    """Neighbours report the same problem: each a petition of its own, linked by the intake office
    or the township to the first report (并案), closed with it, given feedback and rated by its own
    petitioner. The roof leak is reported from three homes; a recent problem is reported again
    these last days, once by its own petitioner pressing for it (the month's recurring problem,
    每月一题); one link is found wrong and undone, and that case is handled on its own."""
    rng, now = planner.rng, planner.now

    def window(main: Script, recent: bool) -> tuple[datetime, datetime] | None:
        if main.scenario.path in ("immediate", "suggestion") or main.scenario.stuck in ("registered", "classified"):
            return None
        closing = next((st.at for st in main.steps if st.kind == "close"), None)
        start = main.steps[0].at + timedelta(hours=6)
        end = min(closing - timedelta(hours=6) if closing else now, now - timedelta(hours=1))
        if recent:
            start = max(start, now - timedelta(hours=36))
        return (start, end) if end - start > timedelta(hours=2) else None

    groups: list[tuple[Script, int, bool]] = []  # (main, how many, recent)
    roof = next((sc for sc in scripts if sc.scenario.theme == "roof_leak" and window(sc, False)), None)
    if roof is not None:
        groups.append((roof, 3, False))
    latest = sorted(scripts, key=lambda sc: sc.steps[0].at, reverse=True)
    fresh = next((sc for sc in latest if sc.steps[0].at < now - timedelta(days=2) and window(sc, True)), None)
    if fresh is not None:
        groups.append((fresh, 3, True))
    others = [sc for sc in scripts if window(sc, False) and sc is not roof and sc is not fresh]
    rng.shuffle(others)
    # One link is made by mistake and undone: on a main case open long enough to find out.
    roomy = [sc for sc in others if (w := window(sc, False)) and w[1] - w[0] > timedelta(days=3)]
    mistaken = roomy[0] if roomy else None
    others.sort(key=lambda sc: sc is not mistaken)  # its group first
    groups += [(sc, 2, False) for sc in others]

    planned: list[Script] = []
    for main, size, recent in groups:
        for k in range(size):
            if len(planned) == merged:
                return planned
            span = window(main, recent)
            assert span is not None
            mislinked = main is mistaken and k == 0
            planned.append(_duplicate(planner, main, len(scripts) + len(planned), span, recent and k == 0, mislinked))
    return planned


def _duplicate(
    planner: _Planner,
    main: Script,
    index: int,
    span: tuple[datetime, datetime],
    same_person: bool,
    mislinked: bool,
) -> Script:
    rng = planner.rng
    start, end = span
    fields = dict(main.registration)
    units = planner.ref.units_of(fields["grid"]) or {}
    name = planner.person()[0]
    if same_person:  # the first petitioner calls again, pressing for it (催办): a repeat petition
        name, phone = fields["petitioner_name"], fields["petitioner_phone"]
    else:
        phone = planner.phone()
    description = f"{name}反映：{fields['description']}"
    if mislinked:  # another building's problem, taken for the same at first
        fields["location"] = planner.place(units)["location"]
    channel = rng.choice(sorted(planner.channels))
    fields |= {"channel": channel, "petitioner_name": name, "petitioner_phone": phone, "description": description}
    script = Script(index, Scenario("duplicate", main=main.index))
    registrar = OPERATOR if channel in ("hotline_12345", "hotline", "call_110") else CLERK
    span_hours = (end - start).total_seconds() / 3600
    registered = start + timedelta(hours=rng.uniform(0, span_hours * (0.2 if mislinked else 0.6)))

    def register(cases: Cases) -> None:
        result = cases.register(registrar, **fields)
        script.case_id, script.number = UUID(result.case_id), result.number

    script.add("register", registered, register)
    linker = CLERK if rng.random() < 0.6 else planner.township(units["street"])

    def link(cases: Cases) -> None:
        reason = f"与 {main.number} 反映的是同一问题（{main.registration['location']}），并案办理。"
        assert script.case_id is not None
        cases.link_duplicate(script.case_id, linker, main_case=str(main.case_id), reason=reason)

    hours_left = (end - registered).total_seconds() / 3600  # at least 0.8: linked before `end`
    linked = script.add("link", registered + timedelta(hours=rng.uniform(0.3, min(6.0, hours_left))), link)
    closing = next((st.at for st in main.steps if st.kind == "close"), None)
    if mislinked:
        unlinked = planner.later(linked, 4, 20, office=False)
        if closing is None or unlinked < closing - timedelta(hours=1):
            script.command(
                "unlink", unlinked, "unlink_duplicate", CLERK, reason="核实后并非同一楼栋的问题，取消并案，单独办理。"
            )
            t = script.command("classify", planner.later(script.t, 0.2, 2), "classify", CLERK,
                               handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)  # fmt: skip
            leader = rng.choice(planner.leaders_by_grid[units["grid"]])
            script.command("assign", planner.later(t, 0.2, 3), "assign", CLERK, assignee=leader)
            return script
    if closing is None:
        return script  # open: it follows its main case

    def feedback(cases: Cases) -> None:
        content = f"回访告知{name}：所反映问题已随主件 {main.number} 一并办结。"
        assert script.case_id is not None
        cases.give_feedback(script.case_id, OPERATOR, method=FeedbackMethod.HOTLINE_CALLBACK, content=content)

    t = script.add("feedback", closing + timedelta(hours=rng.uniform(2, 30)), feedback)
    satisfaction = rng.choices([x for x, _ in SATISFACTION], weights=[w for _, w in SATISFACTION])[0]
    rater = OPERATOR if rng.random() < 0.5 else Actor(f"R{phone}", Role.RESIDENT)
    script.command("rate", planner.resident(planner.later(t, 0.2, 6, office=False)), "rate", rater,
                   satisfaction=satisfaction, comment=rng.choice(COMMENTS[satisfaction]))  # fmt: skip
    return script
