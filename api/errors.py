"""One map from errors to HTTP: 401 no valid token, 403 not allowed, 422 bad
input, 404 unknown case, 409 broken rule, 412 stale version, 429 too many. Every body has a stable code."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import eventsourcing.persistence as eventsourcing_errors
import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.access import AccessDeniedError, AuthenticationError
from api.limits import RateLimitedError
from api.open311 import error_response as open311_error
from api.responses import JSONBody, error_body
from cases.errors import ActorNotAllowedError, CaseError
from cases.policy import NoPolicyInForceError
from commands.errors import (
    CaseNotFoundError,
    ConcurrentUpdateError,
    InvalidInputError,
    StaleVersionError,
)
from commands.evidence import AttachmentErasedError, AttachmentNotFoundError, AttachmentTooLargeError
from open311.georeport import Open311Error
from projections.runtime import ProjectionBehindError
from storage.blobs import BlobStoreError
from streams.webhooks import SubscriptionLimitError, SubscriptionNotFoundError

log = structlog.get_logger()


def _field_name(error: dict[str, Any]) -> str:
    # ("body", "actor", "id") -> "actor.id"; keep "header"/"path"/"query" prefixes.
    if error["type"] == "json_invalid":
        return "body"  # its loc holds a character offset, not a field
    parts = [str(p) for p in error["loc"]]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


# pydantic's error types in Chinese; {name} takes the error's context.
REASONS = {
    "missing": "必填",
    "json_invalid": "请求体不是合法的 JSON",
    "uuid_parsing": "须为 UUID（如 3fa85f64-5717-4562-b3fc-2c963f66afa6）",
    "uuid_type": "须为 UUID（如 3fa85f64-5717-4562-b3fc-2c963f66afa6）",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "bool_parsing": "须为 true 或 false",
    "bool_type": "须为 true 或 false",
    "string_type": "须为字符串",
    "string_too_short": "长度不得少于 {min_length} 个字符",
    "string_too_long": "长度不得超过 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符",
    "too_short": "至少 {min_length} 项",
    "too_long": "至多 {max_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "不得小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "不得大于 {le}",
    "enum": "须为以下之一：{expected}",
    "literal_error": "须为以下之一：{expected}",
    "date_parsing": "须为日期（YYYY-MM-DD）",
    "date_type": "须为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "须为日期（YYYY-MM-DD）",
    "datetime_parsing": "须为时间（ISO 8601，如 2026-03-02T09:00:00+08:00）",
    "datetime_type": "须为时间（ISO 8601，如 2026-03-02T09:00:00+08:00）",
    "datetime_from_date_parsing": "须为时间（ISO 8601，如 2026-03-02T09:00:00+08:00）",
    "dict_type": "须为 JSON 对象",
    "model_type": "须为 JSON 对象",
    "model_attributes_type": "须为 JSON 对象",
    "list_type": "须为数组",
    "extra_forbidden": "不接受此字段",
    "url_parsing": "须为网址（URL）",
    "url_scheme": "网址须以 {expected_schemes} 开头",
}


def reason(error: dict[str, Any]) -> str:
    """A validation error's reason in Chinese: a validator's own sentence, or pydantic's type translated."""
    ctx = error.get("ctx") or {}
    if error["type"] in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    template = REASONS.get(error["type"])
    if template is None:
        return "取值无效"
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template.split("{")[0].rstrip("：: ") or "取值无效"


PHRASES = {
    404: ("not_found", "请求的地址不存在，请核对路径。"),
    405: ("method_not_allowed", "该地址不支持此请求方法，请核对接口文档（/docs）。"),
}


ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorBody": {
        "title": "ErrorBody",
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/Error"}},
        "description": "Every error the service sends (Open311 routes answer in Open311's own shape).",
    },
    "Error": {
        "title": "Error",
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable, for programs: `validation_failed`, `not_found`, …"},
            "message": {"type": "string", "description": "A Chinese sentence a clerk can act on."},
            "fields": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
    },
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "required": ["field", "reason"],
        "properties": {"field": {"type": "string"}, "reason": {"type": "string", "description": "In Chinese."}},
    },
}


def document(app: FastAPI) -> None:
    """OpenAPI declares the body errors really have, not FastAPI's `{detail: [...]}`, which is never sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.update(ERROR_SCHEMAS)
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if path.startswith("/open311"):
                    responses.pop("422", None)
                    continue
                responses.setdefault("422", {"description": "Invalid input: each field with its reason."})
                for status, response in responses.items():
                    if status.startswith("4"):
                        response["content"] = {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _field_error(e: dict[str, Any]) -> dict[str, str]:
    if e["type"] == "json_invalid":  # a body that is not UTF-8 JSON at all: the field is the body
        return {"field": "body", "reason": "请求体须为 UTF-8 编码的 JSON（不带 BOM，不接受 UTF-16 等其他编码）。"}
    return {"field": _field_name(e), "reason": reason(e)}


def _retry_after(seconds: object) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


# Every error the layers raise, by class (the first in its MRO wins): its status and any headers.
# Each carries its stable `code` and a Chinese `message`; an InvalidInputError names its field.
STATUS: dict[type[Exception], tuple[int, Callable[[Any], dict[str, str]] | None]] = {
    AttachmentTooLargeError: (413, None),
    InvalidInputError: (422, None),
    NoPolicyInForceError: (422, None),
    AuthenticationError: (401, lambda e: {"WWW-Authenticate": e.www_authenticate}),
    AccessDeniedError: (403, None),
    ActorNotAllowedError: (403, None),
    CaseNotFoundError: (404, None),
    SubscriptionNotFoundError: (404, None),
    AttachmentNotFoundError: (404, None),
    AttachmentErasedError: (410, None),
    BlobStoreError: (503, lambda e: _retry_after(5)),
    CaseError: (409, None),
    SubscriptionLimitError: (409, None),
    ConcurrentUpdateError: (409, lambda e: _retry_after(1)),
    StaleVersionError: (412, lambda e: {"ETag": f'"{e.actual}"'}),
    RateLimitedError: (429, lambda e: _retry_after(e.retry_after)),
    ProjectionBehindError: (504, lambda e: _retry_after(1)),
}


def domain_error(_: Request, exc: Exception) -> JSONBody:
    status, headers = next(STATUS[c] for c in type(exc).__mro__ if c in STATUS)
    fields = [{"field": exc.field, "reason": exc.reason}] if isinstance(exc, InvalidInputError) else None
    body = error_body(getattr(exc, "code", "error"), getattr(exc, "message", str(exc)), fields)
    return JSONBody(body, status_code=status, headers=headers(exc) if headers else None)


def install(app: FastAPI) -> None:
    document(app)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, exc: RequestValidationError) -> JSONBody:
        fields = [_field_error(e) for e in exc.errors()]
        return JSONBody(
            error_body("validation_failed", "请求内容有误，请按字段提示更正后重试。", fields), status_code=422
        )

    for error in STATUS:
        app.exception_handler(error)(domain_error)
    app.exception_handler(Open311Error)(open311_error)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_: Request, exc: StarletteHTTPException) -> JSONBody:
        code, message = PHRASES.get(exc.status_code, ("http_error", "请求未能处理。"))
        if exc.detail and exc.detail != HTTPStatus(exc.status_code).phrase:
            message = str(exc.detail)  # a route's own sentence
        return JSONBody(
            error_body(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(eventsourcing_errors.OperationalError)
    @app.exception_handler(eventsourcing_errors.InterfaceError)
    @app.exception_handler(sqlite3.OperationalError)
    def unavailable(_: Request, exc: Exception) -> JSONBody:
        # A restarted database, a dropped connection, a lock held too long: nothing was acknowledged,
        # so the client may send it again (with its Idempotency-Key) once the pool has reconnected.
        log.warning("database_unavailable", error=repr(exc))
        return JSONBody(
            error_body("database_unavailable", "数据库暂时不可用，本次操作未生效，请稍后重试。"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    def unexpected(_: Request, exc: Exception) -> JSONBody:
        log.exception("unhandled_error", error=repr(exc))
        return JSONBody(error_body("internal_error", "服务器内部错误，已记录，请稍后重试。"), status_code=500)
