"""Attachments as evidence (附件): at which stage of a case a photo or document is added, who
may add it then, in which statuses, and what it may keep. Pure: the bytes are checked and
stored by the application (commands/evidence.py); the case keeps only their hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cases.vocabulary import Role, Status

R, S = Role, Status


class Stage(StrEnum):
    REGISTRATION = "registration"  # 登记: the resident's photo of the problem, a letter
    PROGRESS = "progress"  # 办理进展
    BEFORE = "before"  # 整改前 (Sanming's rectification list: before and after)
    AFTER = "after"  # 整改后
    VERIFICATION = "verification"  # 居民检验


@dataclass(frozen=True)
class StageRule:
    label: str
    roles: frozenset[Role]
    when: tuple[Status, ...]
    handler: bool  # only those working the case (Case.works_on), as OnCase.HANDLER


_HANDLERS = frozenset({R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.INTAKE_CLERK})
_WORKING = (S.IN_PROGRESS, S.RECTIFYING, S.RECTIFIED, S.VERIFIED)

STAGES: dict[Stage, StageRule] = {
    Stage.REGISTRATION: StageRule(
        "登记材料", frozenset({R.INTAKE_CLERK, R.GRID_LEADER}), (S.REGISTERED, S.CLASSIFIED, S.ASSIGNED, S.RETURNED),
        handler=False,
    ),
    Stage.PROGRESS: StageRule("办理进展", _HANDLERS, _WORKING, handler=True),
    Stage.BEFORE: StageRule("整改前", _HANDLERS, (S.IN_PROGRESS, S.RECTIFYING), handler=True),
    Stage.AFTER: StageRule("整改后", _HANDLERS, (S.RECTIFYING, S.RECTIFIED), handler=True),
    Stage.VERIFICATION: StageRule("居民检验", frozenset({R.RESIDENT, R.INTAKE_CLERK}), (S.RECTIFIED, S.VERIFIED),
                                  handler=False),
}  # fmt: skip

ATTACHING_ROLES = frozenset().union(*(rule.roles for rule in STAGES.values()))

# Those working a case photograph the site they fix: where it was taken is the evidence, and it is
# the place of the problem, not of a person. Everything else (the resident's own photos, what the
# intake office registers for them) loses its location before it is stored.
_KEEPS_LOCATION = frozenset({R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER})
_SITE_STAGES = frozenset({Stage.PROGRESS, Stage.BEFORE, Stage.AFTER})


def keeps_location(stage: Stage, role: Role) -> bool:
    return stage in _SITE_STAGES and role in _KEEPS_LOCATION


def carries_personal_data(stage: str, role: str) -> bool:
    """The files erased with the petitioner: what was registered for them, and what they added."""
    return stage == Stage.REGISTRATION or role == R.RESIDENT
