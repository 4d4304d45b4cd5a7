"""structlog's production recipe: JSON lines via orjson, a request id bound
per request, and one canonical line per request."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def configure_logging(level: str = "INFO", *, cache: bool = True) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        cache_logger_on_first_use=cache,
    )


def _json_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value).decode()


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's own lines (start-up, shutdown, errors) as the same JSON lines as ours:
    one process, one format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(serializer=_json_text),
                ],
                "foreign_pre_chain": [
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,
                ],
            }
        },
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


class RequestLog:
    """A pure ASGI middleware (issue 15: `@app.middleware("http")` ran every request in a task of
    its own and streamed the answer through a queue): a request id bound for every log line of the
    request, echoed as `X-Request-ID`, and one canonical line when the answer has gone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        request_id = request_id or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        echoed = (b"x-request-id", request_id.encode("latin-1"))

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                **_who(scope),
            )


def _who(scope: Scope) -> dict[str, str]:
    """Who asked (set by the access check), never the token itself."""
    principal = scope.get("state", {}).get("principal")
    if principal is None:
        return {}
    return {"actor": principal.actor.id, "role": str(principal.role), "token": principal.token_id}
