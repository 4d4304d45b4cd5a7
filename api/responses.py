"""The one error body every route sends: `{"error": {"code", "message", "fields"?}}`.
It imports nothing from `api/`, so the middleware and the handlers both can."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class JSONBody(JSONResponse):
    """Error bodies, serialised with orjson (Chinese text stays readable UTF-8)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}
