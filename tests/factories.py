"""Valid inputs and actors from the demo district, shared by the tests."""

from __future__ import annotations

from typing import Any

from cases.actor import Actor
from cases.vocabulary import Role

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
