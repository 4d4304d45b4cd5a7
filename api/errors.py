"""One map from errors to HTTP: 401 no valid token, 403 not allowed, 422 bad
input, 404 unknown case, 409 broken rule, 412 stale version, 429 too many. Every body has a stable code."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.open311 import error_response as open311_error
from cases.errors import ActorNotAllowedError, CaseError
from cases.policy import NoPolicyInForceError
from commands.errors import (
    CaseNotFoundError,
    ConcurrentUpdateError,
    InvalidReferenceError,
    StaleVersionError,
)
from open311.georeport import Open311Error
from projections.ledger_query import InvalidQueryError
from projections.reports import InvalidPeriodError
from projections.runtime import ProjectionBehindError
from streams.webhooks import SubscriptionLimitError, SubscriptionNotFoundError

log = structlog.get_logger()


class JSONBody(JSONResponse):
    """Error bodies, serialised with orjson (Chinese text stays readable UTF-8)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "actor", "id") -> "actor.id"; keep "header"/"path"/"query" prefixes.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _field_error(e: dict[str, Any]) -> dict[str, str]:
    if e["type"] == "json_invalid":  # a body that is not UTF-8 JSON at all: the field is the body
        return {"field": "body", "reason": "请求体须为 UTF-8 编码的 JSON（不带 BOM，不接受 UTF-16 等其他编码）。"}
    return {"field": _field_name(tuple(e["loc"])), "reason": e["msg"]}


def install(app: FastAPI) -> None:
    from api.access import AccessDeniedError, AuthenticationError
    from api.limits import RateLimitedError

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, exc: RequestValidationError) -> JSONBody:
        fields = [_field_error(e) for e in exc.errors()]
        return JSONBody(
            error_body("validation_failed", "请求内容有误，请按字段提示更正后重试。", fields), status_code=422
        )

    @app.exception_handler(InvalidReferenceError)
    def invalid_reference(_: Request, exc: InvalidReferenceError) -> JSONBody:
        return JSONBody(
            error_body(exc.code, exc.message, [{"field": exc.field, "reason": exc.reason}]), status_code=422
        )

    @app.exception_handler(InvalidQueryError)
    @app.exception_handler(InvalidPeriodError)
    def invalid_query(_: Request, exc: InvalidQueryError | InvalidPeriodError) -> JSONBody:
        return JSONBody(
            error_body("invalid_query", exc.reason, [{"field": exc.field, "reason": exc.reason}]), status_code=422
        )

    @app.exception_handler(NoPolicyInForceError)
    def no_policy(_: Request, exc: NoPolicyInForceError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=422)

    @app.exception_handler(ProjectionBehindError)
    def behind(_: Request, exc: ProjectionBehindError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=504, headers={"Retry-After": "1"})

    @app.exception_handler(CaseNotFoundError)
    def not_found(_: Request, exc: CaseNotFoundError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=404)

    app.exception_handler(Open311Error)(open311_error)

    @app.exception_handler(SubscriptionNotFoundError)
    def no_subscription(_: Request, exc: SubscriptionNotFoundError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=404)

    @app.exception_handler(SubscriptionLimitError)
    def too_many_subscriptions(_: Request, exc: SubscriptionLimitError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=409)

    @app.exception_handler(StaleVersionError)
    def stale(_: Request, exc: StaleVersionError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=412, headers={"ETag": f'"{exc.actual}"'})

    @app.exception_handler(CaseError)
    def rule_broken(_: Request, exc: CaseError) -> JSONBody:
        status = 403 if isinstance(exc, ActorNotAllowedError) else 409
        return JSONBody(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(ConcurrentUpdateError)
    def contended(_: Request, exc: ConcurrentUpdateError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=409, headers={"Retry-After": "1"})

    @app.exception_handler(AuthenticationError)
    def unauthenticated(_: Request, exc: AuthenticationError) -> JSONBody:
        return JSONBody(
            error_body(exc.code, exc.message), status_code=401, headers={"WWW-Authenticate": exc.www_authenticate}
        )

    @app.exception_handler(AccessDeniedError)
    def denied(_: Request, exc: AccessDeniedError) -> JSONBody:
        return JSONBody(error_body(exc.code, exc.message), status_code=403)

    @app.exception_handler(RateLimitedError)
    def limited(_: Request, exc: RateLimitedError) -> JSONBody:
        return JSONBody(
            error_body(exc.code, exc.message), status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(StarletteHTTPException)
    def http_error(_: Request, exc: StarletteHTTPException) -> JSONBody:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return JSONBody(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    def unexpected(_: Request, exc: Exception) -> JSONBody:
        log.exception("unhandled_error", error=repr(exc))
        return JSONBody(error_body("internal_error", "服务器内部错误，已记录，请稍后重试。"), status_code=500)
