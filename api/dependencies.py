"""Reusable dependencies: the application built in lifespan, command headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request

from commands.cases import Cases, Idempotency
from commands.errors import InvalidReferenceError


def get_cases(request: Request) -> Cases:
    return request.app.state.cases


CasesDep = Annotated[Cases, Depends(get_cases)]


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


def command_headers(
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
