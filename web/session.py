"""Signing a browser in: the bearer token kept in an HttpOnly cookie, and a CSRF token tied to it."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated
from urllib.parse import parse_qs

import jwt
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.access import SESSION_COOKIE, AccessDeniedError
from config.settings import Settings
from security.tokens import DEV_SECRET

LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last value of each)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def _csrf_key(settings: Settings) -> bytes:
    secret = settings.jwt_secret or settings.master_key or DEV_SECRET
    return hashlib.sha256(b"minqing-workbench-csrf\0" + secret.encode()).digest()


def csrf_token(request: Request) -> str:
    """Derived from the sign-in cookie: a page of another site can neither read nor forge it."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return hmac.new(_csrf_key(request.app.state.settings), token.encode(), hashlib.sha256).hexdigest()


async def csrf_checked(request: Request, form: FormDep) -> None:
    """Every form the workbench accepts, but the sign-in itself, carries the session's CSRF token."""
    if request.method != "POST" or request.url.path == "/signin":
        return
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not request.cookies.get(SESSION_COOKIE) or not hmac.compare_digest(sent, csrf_token(request)):
        raise AccessDeniedError("csrf_failed", "表单已失效（跨站请求校验未通过）：请刷新页面后重新提交。")


def signed_in(request: Request, token: str, target: str) -> Response:
    expires = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, expires - int(time.time())),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    return response


def signed_out(request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    return https or (settings.production and request.url.hostname not in LOOPBACK)
