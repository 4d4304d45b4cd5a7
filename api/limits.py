"""Hostile input: a cap on body size (413) and a rate limit per token (429).

Both are per process: with several workers the effective rate is the limit
times the workers (docs/security.md); a shared limiter belongs in the proxy.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.responses import error_body


class RateLimitedError(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after
        self.code = "rate_limited"
        self.message = f"请求过于频繁，请 {retry_after} 秒后再试。"


class RateLimiter:
    """A token bucket per key: `per_minute` sustained, a quarter of it as burst."""

    MAX_KEYS = 50_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 4)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise RateLimitedError(max(1, math.ceil((1 - tokens) / self.rate)))
            if len(self._buckets) >= self.MAX_KEYS:
                self._buckets.clear()  # crude, but memory stays bounded under a flood of tokens
            self._buckets[key] = (tokens - 1, now)


class InputGuard:
    """Before any route parses anything: refuses a body over `max_bytes`
    whatever Content-Length claims (chunked bodies are counted as they arrive),
    and a NUL byte in the path or query (PostgreSQL text cannot hold one, so
    it could only ever fail deeper down). An upload's caller is checked by
    `admit` (the token, the role) before its body is read, so an anonymous
    client cannot make the server hold a file's worth of memory."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: dict[str, int] | None = None,
        uploads: tuple[re.Pattern[str], int] | None = None,
        admit: Callable[[Scope], Awaitable[Response | None]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # path -> its own cap (a spreadsheet upload is not a JSON command)
        self.uploads = uploads  # paths that take a file (attachments), and their own cap
        self.admit = admit  # an upload's answer before its body is read (a refusal), or None to go on

    def _limit(self, path: str) -> int:
        if path in self.larger:
            return self.larger[path]
        if self.uploads is not None and self.uploads[0].fullmatch(path):
            return self.uploads[1]
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b""))
        ):
            await _answer(send, 422, error_body("invalid_characters", "路径或查询参数含有不允许的控制字符（NUL）。"))
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        if self.admit is not None and self.uploads is not None and self.uploads[0].fullmatch(scope["path"]):
            refusal = await self.admit(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, limit: int) -> None:
        await _answer(send, 413, error_body("body_too_large", f"请求体过大：上限为 {limit // 1024} KiB。"))


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = orjson.dumps(content)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, whole, then goes on with the client's messages
    (a disconnect): for an app behind a middleware that had to read the body first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
