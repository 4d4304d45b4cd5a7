"""Valid inputs and actors from the demo district, shared by the tests."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx

from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from reference.model import DEMO_REFERENCE, ReferenceData
from security.tokens import TokenKeys

# The test deployment's secrets: every store-backed test runs in "production"
# shape on PostgreSQL, which refuses to start without them.
TEST_JWT_SECRET = "test-secret-for-minqing-tests-only-0123456789"
TEST_MASTER_KEY = base64.b64encode(b"k" * 32).decode()
SECURITY = {"jwt_secret": TEST_JWT_SECRET, "master_key": TEST_MASTER_KEY, "rate_limit_per_minute": 1_000_000}


def migrated(settings: Settings) -> Settings:
    """A store after `minqing migrate`."""
    from service import migrate

    migrate(settings)
    return settings


GRID = "35010500100101"  # 马限社区第1网格, 罗星街道 350105001
OTHER_STREET_GRID = "35010500200101"
STREET = "350105001"
LEADER_OF_GRID = "GL0001"
SECOND_LEADER_OF_GRID = "GL0999"
LEADER_ELSEWHERE = "GL0002"

CLERK = Actor("CL001", Role.INTAKE_CLERK)
GRID_LEADER = Actor(LEADER_OF_GRID, Role.GRID_LEADER)
SECOND_GRID_LEADER = Actor(SECOND_LEADER_OF_GRID, Role.GRID_LEADER)
TOWNSHIP = Actor("T0011", Role.TOWNSHIP, STREET)
OTHER_TOWNSHIP = Actor("T1011", Role.TOWNSHIP, "350105101")
HOUSING = Actor("D-zhujian-1", Role.DEPARTMENT, "zhujian")
URBAN = Actor("D-chengguan-1", Role.DEPARTMENT, "chengguan")
POLICE = Actor("D-gongan-1", Role.DEPARTMENT, "gongan")
LEADER = Actor("LD001", Role.LEADER)
SUPERVISOR = Actor("SV001", Role.SUPERVISION)
RESIDENT = Actor("R13812341234", Role.RESIDENT)
ADMIN = Actor("AD001", Role.ADMIN)
AUDITOR = Actor("AU001", Role.AUDITOR)
MONITOR = Actor("prometheus", Role.METRICS)
INTEGRATOR = Actor("IN001", Role.INTEGRATOR)
MONITOR = Actor("prometheus", Role.METRICS)


def registration(**overrides: Any) -> dict[str, Any]:
    return {
        "channel": "hotline",
        "category": "housing",
        "title": "楼顶渗水",
        "description": "业主违章搭建导致居民住宅楼顶渗水，雨天屋内漏水严重。",
        "location": "马限社区3栋",
        "grid": GRID,
        "petitioner_name": "张秀英",
        "petitioner_phone": "13812341234",
        **overrides,
    }


def actor_json(actor: Actor) -> dict[str, Any]:
    return {"id": actor.id, "role": str(actor.role), "unit": actor.unit}


@cache
def _keys() -> TokenKeys:
    return TokenKeys.from_settings(Settings(**SECURITY))


@cache
def _grids(leader: str) -> tuple[str, ...]:
    known = ReferenceData.load(DEMO_REFERENCE).grid_leaders.get(leader)
    return tuple(known.grids) if known else ()


@cache
def token(actor: Actor, case: str | None = None, grants: tuple[str, ...] = ()) -> str:
    """A signed token for the actor (cached: one rate-limit bucket per actor, as a real client has)."""
    grids = list(_grids(actor.id)) if actor.role == Role.GRID_LEADER else None
    return _keys().issue(actor.role, actor.id, unit=actor.unit, grids=grids, case=case, grants=list(grants) or None)


def auth(actor: Actor, case: str | None = None, grants: tuple[str, ...] = ()) -> dict[str, str]:
    """Authorization header for the actor; a resident's token names the case it acts on."""
    if actor.role == Role.RESIDENT and case is None:
        raise ValueError("a resident token needs its case")
    return {"Authorization": f"Bearer {token(actor, case if actor.role == Role.RESIDENT else None, grants)}"}


class DefaultReader(httpx.Auth):
    """For clients whose requests carry no Authorization of their own: an auditor
    (reads everything, personal data masked), an integrator for webhooks."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if "authorization" not in request.headers:
            reader = INTEGRATOR if request.url.path.startswith("/webhooks") else AUDITOR
            request.headers.update(auth(reader))
        yield request
