"""Reusable dependencies: what lifespan built (the application, settings, token keys, the
feed and tail, webhooks), and command headers. Routes take these, never `request.app.state`.

They are `async def` because they never block: FastAPI runs a plain `def` dependency in the
thread pool, one hop per dependency per request (issue 15 measured it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request

from commands.cases import Cases, Idempotency
from commands.errors import InvalidReferenceError
from config.settings import Settings
from security.tokens import TokenKeys
from storage.views import PostgresViews, SqliteViews
from streams.feed import Feed
from streams.tail import Tail
from streams.webhooks import Webhooks


async def get_cases(request: Request) -> Cases:
    return request.app.state.cases


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_token_keys(request: Request) -> TokenKeys:
    return request.app.state.token_keys


async def get_feed(request: Request) -> Feed:
    return request.app.state.feed


async def get_tail(request: Request) -> Tail:
    return request.app.state.tail


async def get_webhooks(request: Request) -> Webhooks:
    return request.app.state.webhooks


async def get_views(request: Request) -> SqliteViews | PostgresViews:
    """The read side's store, as it is (no waiting for a position)."""
    return request.app.state.read_side.views


CasesDep = Annotated[Cases, Depends(get_cases)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TokenKeysDep = Annotated[TokenKeys, Depends(get_token_keys)]
FeedDep = Annotated[Feed, Depends(get_feed)]
TailDep = Annotated[Tail, Depends(get_tail)]
WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]
ViewsDep = Annotated[SqliteViews | PostgresViews, Depends(get_views)]


@dataclass(frozen=True)
class CommandHeaders:
    idempotency_key: str | None
    expected_version: int | None

    def options(
        self, command: str, case_id: object, payload: dict[str, Any], keyed: Callable[[bytes], str] | None = None
    ) -> dict[str, Any]:
        key = self.idempotency_key
        idempotency = Idempotency.of(key, command, case_id, payload, keyed) if key else None
        return {"idempotency": idempotency, "expected_version": self.expected_version}


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: "7"` (our ETags), also W/"7" or a bare 7; `*` matches any."""
    if value is None or value.strip() == "*":
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise InvalidReferenceError("If-Match", 'If-Match 须为案件的 ETag，例如 "3"')
    return int(raw)


async def command_headers(
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="A retry with the same key returns the first result and appends nothing."),
    ] = None,
    if_match: Annotated[
        str | None, Header(max_length=40, description='The case version (ETag) the command was decided on, e.g. "3".')
    ] = None,
) -> CommandHeaders:
    return CommandHeaders(idempotency_key or None, parse_if_match(if_match))


CommandHeadersDep = Annotated[CommandHeaders, Depends(command_headers)]
CaseId = UUID
