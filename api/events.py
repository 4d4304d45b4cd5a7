"""Event streams for integrators: the paged feed and the live SSE stream.

Both publish case events as CloudEvents 1.0 with the log position as the
`sequence` extension (and as the SSE id), so a consumer keeps one number and
resumes exactly after it.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.access import PrincipalDep, sees_personal_data
from commands.records import MAX_POSITION
from projections.ledger_query import InvalidQueryError
from streams.feed import EventFilter, Feed
from streams.tail import Tail, follow

router = APIRouter(tags=["events"])

TypeQuery = Annotated[
    list[str] | None,
    Query(
        alias="type",
        description="Event types (`Registered` or `cn.minqing.case.Registered`); repeat or comma-separate.",
    ),
]
UnitQuery = Annotated[
    str | None,
    Query(max_length=64, description="A grid, community, street, district or department code: its cases' events."),
]
CaseQuery = Annotated[UUID | None, Query(description="Only this case's events.")]


def get_feed(request: Request) -> Feed:
    return request.app.state.feed


@router.get("/events", summary="Case events in log order, as CloudEvents 1.0 (a page from a position)")
def events_page(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Return events after this log position (0: from the start).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: TypeQuery = None,
    unit: UnitQuery = None,
    case: CaseQuery = None,
) -> dict[str, Any]:
    flt = EventFilter.parse(types, unit, case)
    page = get_feed(request).page(flt, after, limit, clear=sees_personal_data(principal))
    query = request.url.include_query_params(after=page.next_after)
    response.headers["Link"] = f'<{query.path}?{query.query}>; rel="next"'
    return {"events": page.events, "next_after": page.next_after, "more": page.more, "filter": flt.as_dict()}


@router.get(
    "/events/stream",
    summary="Live Server-Sent Events; the id is the log position, Last-Event-ID resumes exactly after it",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events_stream(
    request: Request,
    principal: PrincipalDep,
    types: TypeQuery = None,
    unit: UnitQuery = None,
    case: CaseQuery = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="Start after this position; without it (or Last-Event-ID), from now."),
    ] = None,
    heartbeat: Annotated[float, Query(ge=0.5, le=300, description="Seconds between keep-alive comments.")] = 15.0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    flt = EventFilter.parse(types, unit, case)
    if last_event_id is not None:
        if not last_event_id.strip().isdigit() or int(last_event_id) > MAX_POSITION:
            raise InvalidQueryError("Last-Event-ID", "Last-Event-ID 须为上次收到的事件 id（日志位置，整数）")
        after = int(last_event_id)
    tail: Tail = request.app.state.tail
    await tail.start()
    return StreamingResponse(
        follow(tail, flt, tail.head if after is None else after, heartbeat, clear=sees_personal_data(principal)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
