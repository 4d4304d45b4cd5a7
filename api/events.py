"""Event streams for integrators: the paged feed and the live SSE stream.

Both publish case events as CloudEvents 1.0 with the log position as the
`sequence` extension (and as the SSE id), so a consumer keeps one number and
resumes exactly after it.

A live stream ends when its token expires, a token holds a bounded number of
open streams (per process), and a write that a reader does not drain within
`MINQING_STREAM_WRITE_TIMEOUT` drops that reader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any
from uuid import UUID

import anyio
import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Message, Send

from api.access import PrincipalDep, sees_personal_data
from api.dependencies import FeedDep, SettingsDep, TailDep
from api.limits import RateLimitedError
from commands.errors import InvalidInputError
from commands.records import MAX_POSITION
from streams.feed import EventFilter
from streams.tail import follow

router = APIRouter(tags=["events"])
log = structlog.get_logger()
MAX_HEARTBEAT = 15.0  # seconds: a longer interval asked for is shortened to this

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


class TooManyStreamsError(RateLimitedError):
    def __init__(self, limit: int) -> None:
        super().__init__(5)
        self.code = "too_many_streams"
        self.message = (
            f"此令牌已打开 {limit} 个实时事件流，已达上限：请先关闭不用的连接（MINQING_STREAM_MAX_PER_TOKEN）。"
        )


class StreamSlots:
    """Open live streams per token in this process (the event loop's own: no lock needed)."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self.open: Counter[str] = Counter()

    def take(self, token_id: str) -> Callable[[], None]:
        if self.open[token_id] >= self.per_token:
            raise TooManyStreamsError(self.per_token)
        self.open[token_id] += 1

        def give_back() -> None:
            self.open[token_id] -= 1
            if self.open[token_id] <= 0:
                del self.open[token_id]

        return give_back


class EventStream(StreamingResponse):
    """Frees its slot however it ends, and bounds every write: a reader that stops reading (its
    buffers full) is dropped after `write_timeout` seconds instead of holding the stream open."""

    def __init__(
        self, frames: AsyncGenerator[bytes, None], *, write_timeout: float, release: Callable[[], None]
    ) -> None:
        super().__init__(
            frames, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        self.frames = frames
        self.write_timeout = write_timeout
        self.release = release

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

    async def stream_response(self, send: Send) -> None:
        async def bounded(message: Message) -> None:
            with anyio.fail_after(self.write_timeout):
                await send(message)

        try:
            await super().stream_response(bounded)
        except TimeoutError:
            # Ending without the final frame makes the server close the connection.
            log.info("event_stream_dropped", reason="writes did not drain", seconds=self.write_timeout)
        finally:
            await self.frames.aclose()


@router.get("/events", summary="Case events in log order, as CloudEvents 1.0 (a page from a position)")
def events_page(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    feed: FeedDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Return events after this log position (0: from the start).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: TypeQuery = None,
    unit: UnitQuery = None,
    case: CaseQuery = None,
) -> dict[str, Any]:
    flt = EventFilter.parse(types, unit, case)
    page = feed.page(flt, after, limit, clear=sees_personal_data(principal))
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
    settings: SettingsDep,
    tail: TailDep,
    principal: PrincipalDep,
    types: TypeQuery = None,
    unit: UnitQuery = None,
    case: CaseQuery = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="Start after this position; without it (or Last-Event-ID), from now."),
    ] = None,
    heartbeat: Annotated[
        float,
        Query(ge=0.5, le=300, description=f"Seconds between keep-alive comments (at most {MAX_HEARTBEAT:g} are used)."),
    ] = MAX_HEARTBEAT,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    flt = EventFilter.parse(types, unit, case)
    if last_event_id is not None:
        if not last_event_id.strip().isdigit() or int(last_event_id) > MAX_POSITION:
            raise InvalidInputError("Last-Event-ID", "Last-Event-ID 须为上次收到的事件 id（日志位置，整数）")
        after = int(last_event_id)
    slots: StreamSlots = request.app.state.stream_slots
    release = slots.take(principal.token_id)
    try:
        await tail.start()
    except BaseException:
        release()
        raise
    start = tail.head if after is None else after
    frames = follow(
        tail, flt, start, min(heartbeat, MAX_HEARTBEAT), clear=sees_personal_data(principal), until=principal.expires
    )
    return EventStream(frames, write_timeout=settings.stream_write_timeout, release=release)
