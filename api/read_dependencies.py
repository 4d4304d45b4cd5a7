"""Dependencies of the read endpoints: the read side, and read-your-writes.

Waiting for a position (`wait_for`) holds no worker thread: the waiter sleeps
on the event loop, and one poll of the read side's position per interval
serves every waiter of the process. A position past the log's head can never
be reached (422), and a token may keep only a few waits open at once (429).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated

import anyio
from fastapi import Depends, Query, Request

from api.limits import RateLimitedError
from commands.errors import InvalidInputError
from commands.records import MAX_POSITION
from projections.runtime import ProjectionBehindError, ReadSide

WAITS_PER_TOKEN = 4
POLL_SECONDS = 0.05


class TooManyWaitsError(RateLimitedError):
    def __init__(self, limit: int) -> None:
        super().__init__(1)
        self.code = "too_many_waits"
        self.message = f"同一令牌同时等待读模型（wait_for）的请求最多 {limit} 个，请等先前的请求返回后再试。"


class ReadYourWrites:
    def __init__(self, read_side: ReadSide, *, per_token: int = WAITS_PER_TOKEN, poll: float = POLL_SECONDS) -> None:
        self.read_side = read_side
        self.per_token = per_token
        self.poll = poll
        self._waiting: Counter[str] = Counter()
        self._reached = 0
        self._read_at = float("-inf")
        self._reading = anyio.Lock()

    async def reached(self) -> int:
        """The read side's position, read at most once per poll interval however many wait."""
        async with self._reading:
            if time.monotonic() - self._read_at >= self.poll:
                self._reached = await anyio.to_thread.run_sync(self.read_side.position)
                self._read_at = time.monotonic()
        return self._reached

    async def wait(self, token: str, position: int, timeout: float) -> None:
        if await self.reached() >= position:
            return
        head = await anyio.to_thread.run_sync(self.read_side.head)
        if position > head:
            raise InvalidInputError(
                "wait_for", f"位置 {position} 超出事件日志末尾（当前为 {head}），请使用命令应答中的 position。"
            )
        if self._waiting[token] >= self.per_token:
            raise TooManyWaitsError(self.per_token)
        self._waiting[token] += 1
        try:
            with anyio.move_on_after(timeout):
                while await self.reached() < position:
                    await anyio.sleep(self.poll)
                return
            raise ProjectionBehindError(position, self._reached)
        finally:
            self._waiting[token] -= 1
            if not self._waiting[token]:
                del self._waiting[token]


async def get_read_side(request: Request) -> ReadSide:
    return request.app.state.read_side


async def consistent_read_side(
    request: Request,
    wait_for: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_POSITION,
            description="Wait until the read model reflects this log position (a command's `position`; "
            "past the log's head: 422). At most 4 waits per token at once (429 `too_many_waits`).",
        ),
    ] = None,
    wait_timeout: Annotated[float, Query(gt=0, le=30, description="Seconds to wait before answering 504.")] = 5.0,
) -> ReadSide:
    if wait_for is not None:
        principal = getattr(request.state, "principal", None)
        token = principal.token_id if principal is not None else "?"
        await request.app.state.read_your_writes.wait(token, wait_for, wait_timeout)
    return request.app.state.read_side


ReadSideDep = Annotated[ReadSide, Depends(consistent_read_side)]
PlainReadSideDep = Annotated[ReadSide, Depends(get_read_side)]  # no read-your-writes wait
