"""Versioned deadline policy: 13710 and its local variants are data, not code.

A policy version is in force from its `effective_from` date; classifying a case
picks the version in force that day and records it with each deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cases.calendar import add_months, add_working_days
from cases.vocabulary import HandlingType, Role, Tier

CHECKPOINTS = ("accept", "progress", "resolve")

# Who may extend a limit or return a case alone, without a request the township or
# supervision approves (policy `approvals.<command>.decide_alone`); the default is
# everyone the command table allows, so an office without approvals changes nothing.
DECIDE_ALONE_DEFAULT: dict[str, frozenset[Role]] = {
    "extend": frozenset({Role.TOWNSHIP, Role.LEADER, Role.SUPERVISION}),
    "return_case": frozenset({Role.GRID_LEADER}),
}


class NoPolicyInForceError(LookupError):
    """A day before the first policy version: asking for it is a bad request, not a crash."""

    code = "no_policy_in_force"

    def __init__(self, day: date) -> None:
        super().__init__(f"no deadline policy is in force on {day}")
        self.message = f"{day} 之前没有生效的时限政策，请选择更晚的日期。"


@dataclass(frozen=True)
class Limit:
    working_days: int | None = None
    months: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, int]) -> Limit:
        limit = cls(working_days=raw.get("working_days"), months=raw.get("months"))
        if (limit.working_days is None) == (limit.months is None):
            raise ValueError(f"a limit needs exactly one of working_days or months: {raw}")
        if (limit.working_days or 0) < 0 or (limit.months or 0) < 0:
            raise ValueError(f"a limit cannot be negative: {raw}")
        return limit

    def as_dict(self) -> dict[str, int]:
        if self.months is None:
            assert self.working_days is not None  # parse() guarantees exactly one
            return {"working_days": self.working_days}
        return {"months": self.months}


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    name: str
    effective_from: date
    default: dict[str, Limit]
    by_tier: dict[str, dict[str, Limit]]
    by_type: dict[str, dict[str, Limit]]
    # Read-side policy: colour margin of the 13710 board, weights of the three
    # rates, the time a whistled department has to report in.
    board_yellow_within_working_days: int = 1
    score_weights: tuple[float, float, float] = (0.30, 0.35, 0.35)
    count_basically_satisfied: bool = True
    report_in_within_hours: int = 24
    decide_alone: dict[str, frozenset[Role]] = field(default_factory=lambda: dict(DECIDE_ALONE_DEFAULT))

    def may_decide_alone(self, command: str, role: Role) -> bool:
        return role in self.decide_alone.get(command, frozenset(Role))

    def limits_for(self, handling_type: HandlingType, tier: Tier) -> dict[str, Limit]:
        # A handling type's own limits (e.g. 即办件 same day) override the tier's.
        return {
            **self.default,
            **self.by_tier.get(tier.value, {}),
            **self.by_type.get(handling_type.value, {}),
        }

    def deadlines(self, handling_type: HandlingType, tier: Tier, start: date) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, limit in self.limits_for(handling_type, tier).items():
            due = (
                add_months(start, limit.months)
                if limit.months is not None
                else add_working_days(start, limit.working_days or 0)
            )
            result[name] = {
                "due": due.day.isoformat(),
                "limit": limit.as_dict(),
                "calendar": "weekdays-only" if due.provisional else "official",
                "provisional": due.provisional,
                "policy_version": self.version,
            }
        return result


@dataclass(frozen=True)
class Policy:
    versions: tuple[PolicyVersion, ...]

    def in_force(self, day: date) -> PolicyVersion:
        candidates = [v for v in self.versions if v.effective_from <= day]
        if not candidates:
            raise NoPolicyInForceError(day)
        return max(candidates, key=lambda v: v.effective_from)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Policy:
        versions = []
        for item in raw["versions"]:
            by_tier = {t: _limits(s) for t, s in item.get("by_tier", {}).items()}
            by_type = {t: _limits(s) for t, s in item.get("by_type", {}).items()}
            for t in by_tier:
                Tier(t)
            for t in by_type:
                HandlingType(t)
            scores = item.get("scores", {})
            weights = scores.get("weights", {"response": 0.30, "resolution": 0.35, "satisfaction": 0.35})
            triple = (float(weights["response"]), float(weights["resolution"]), float(weights["satisfaction"]))
            if abs(sum(triple) - 1) > 1e-9 or min(triple) < 0:
                raise ValueError(f"score weights must be non-negative and sum to 1: {weights}")
            versions.append(
                PolicyVersion(
                    version=item["version"],
                    name=item["name"],
                    effective_from=date.fromisoformat(item["effective_from"]),
                    default=_limits(item["default"]),
                    by_tier=by_tier,
                    by_type=by_type,
                    board_yellow_within_working_days=int(item.get("board", {}).get("yellow_within_working_days", 1)),
                    score_weights=triple,
                    count_basically_satisfied=bool(scores.get("count_basically_satisfied", True)),
                    report_in_within_hours=int(item.get("whistle", {}).get("report_in_within_hours", 24)),
                    decide_alone=_decide_alone(item.get("approvals", {})),
                )
            )
        if len({v.version for v in versions}) != len(versions):
            raise ValueError("policy versions must be unique")
        return cls(tuple(versions))


def _limits(section: dict[str, Any]) -> dict[str, Limit]:
    unknown = set(section) - set(CHECKPOINTS)
    if unknown:
        raise ValueError(f"unknown checkpoints {sorted(unknown)}; known: {list(CHECKPOINTS)}")
    return {name: Limit.parse(v) for name, v in section.items()}


def _decide_alone(section: dict[str, Any]) -> dict[str, frozenset[Role]]:
    unknown = set(section) - set(DECIDE_ALONE_DEFAULT)
    if unknown:
        raise ValueError(f"approvals for unknown commands {sorted(unknown)}; known: {sorted(DECIDE_ALONE_DEFAULT)}")
    return DECIDE_ALONE_DEFAULT | {
        name: frozenset(Role(r) for r in entry["decide_alone"]) for name, entry in section.items()
    }
