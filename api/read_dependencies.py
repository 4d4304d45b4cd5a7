"""Dependencies of the read endpoints: the read side, and read-your-writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from commands.records import MAX_POSITION
from projections.runtime import ReadSide


def get_read_side(request: Request) -> ReadSide:
    return request.app.state.read_side


def consistent_read_side(
    request: Request,
    wait_for: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_POSITION,
            description="Wait until the read model reflects this log position (a command's `position`).",
        ),
    ] = None,
    wait_timeout: Annotated[float, Query(gt=0, le=30, description="Seconds to wait before answering 504.")] = 5.0,
) -> ReadSide:
    read_side: ReadSide = request.app.state.read_side
    read_side.wait(wait_for, wait_timeout)
    return read_side


ReadSideDep = Annotated[ReadSide, Depends(consistent_read_side)]
