"""Recurring problems (每月一题): the month's most frequent problems and the repeat petitions."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.access import AreaDep
from api.read_dependencies import ReadSideDep
from projections.area import Area
from projections.recurring import RecurringQuery, recurring
from projections.runtime import ReadSide

router = APIRouter(tags=["supervision"])

Month = Annotated[str | None, Query(max_length=7, description="YYYY-MM of registration (default: this month).")]
Level = Literal["street", "community", "grid"]


def recurring_problems(read: ReadSide, area: Area, q: RecurringQuery) -> dict[str, Any]:
    vault = read.cases.vault
    # Without a vault no petitioner was ever registered, so there is no person to hash.
    keyed = vault.fingerprint if vault is not None else (lambda b: hashlib.sha256(b).hexdigest())
    return recurring(read.views, area, q, categories=read.cases.reference.categories, keyed=keyed, today=read.today())


@router.get(
    "/recurring",
    summary="Recurring problems (每月一题): the month's most frequent problems by category and place, "
    "and repeat petitions from one place or one person (a keyed hash, never in clear)",
)
def recurring_route(
    read: ReadSideDep,
    area: AreaDep,
    month: Month = None,
    level: Level = "community",
    window: Annotated[int, Query(ge=1, le=12, description="Months ending with `month` to find repeats in.")] = 3,
    min_count: Annotated[int, Query(ge=2, le=100, description="Petitions that make a repeat.")] = 2,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    query = RecurringQuery(month or read.today().strftime("%Y-%m"), level, window, min_count, limit)
    return recurring_problems(read, area, query)
