"""The command table's own ASGI path (issue 15): `POST /cases` and `POST /cases/{id}/<command>`
answered without FastAPI's routing and dependency solving, which cost more CPU per command than
the command itself.

It is the innermost middleware (inside the request log, the metrics and the input guard), and
it runs the very code the FastAPI routes run, in their order: the access check (`authorize`, with
its rate limit and area scoping), the command headers, the path and body validated by the route's
own fields, then `registered` / `acted` in the thread pool; an error goes to the app's own
exception handlers. So the answer is the same bytes, and the routes stay declared for OpenAPI.

Anything unusual is handed to the FastAPI route untouched, before any side effect (the rate
limit's budget): another content type, an empty or malformed body, an over-long header. Those
answers (422 on `body`, on a header) are FastAPI's own, as they were."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api import cases as case_routes
from api.access import StrictJSONRequest, authorize
from api.dependencies import CommandHeaders, parse_if_match
from api.limits import replaying
from cases.commands import BY_PATH, CaseCommand

# The header limits of `command_headers` (api/dependencies.py): a longer value goes to FastAPI.
MAX_IDEMPOTENCY_KEY = 200
MAX_IF_MATCH = 40
JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
REGISTER = "/cases"
PREFIX = "/cases/"
# The command blocks on the database, so it leaves the event loop once. A plain executor (a C queue)
# rather than anyio's thread pool (a Python Condition per hand-off, a limiter, a cancel scope): as
# many threads as anyio's default limiter lends the routes.
COMMAND_THREADS = 40
_threads = ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="minqing-command")


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` in a command thread, with this request's context (its log's request id)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_threads, context.run, call, *args)


def _routes() -> tuple[APIRoute, dict[str, tuple[APIRoute, CaseCommand]]]:
    """The declared routes of the command table: what OpenAPI shows, and whose fields validate here."""
    register: APIRoute | None = None
    commands: dict[str, tuple[APIRoute, CaseCommand]] = {}
    for route in case_routes.router.routes:
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        if route.path == REGISTER:
            register = route
        elif route.path.startswith(PREFIX + "{case_id}/"):
            name = route.path.removeprefix(PREFIX + "{case_id}/")
            if name in BY_PATH:
                commands[name] = (route, BY_PATH[name])
    assert register is not None, "POST /cases is declared in api/cases.py"
    return register, commands


class CommandPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.register, self.commands = _routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        raw_id = None
        command = None
        if path == REGISTER:
            route = self.register
        elif path.startswith(PREFIX):
            raw_id, slash, name = path[len(PREFIX) :].partition("/")
            found = self.commands.get(name) if raw_id and slash else None
            if found is None:
                await self.app(scope, receive, send)
                return
            route, command = found
        else:
            await self.app(scope, receive, send)
            return
        wanted = _headers(scope)
        kind = wanted.get(b"content-type")
        if kind is None or kind.lower() not in JSON_TYPES:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:
            return  # the client went away
        given = _parsed(body)
        idempotency_key = wanted.get(b"idempotency-key", b"").decode("latin-1")
        if_match = wanted.get(b"if-match")
        if given is None or len(idempotency_key) > MAX_IDEMPOTENCY_KEY or len(if_match or b"") > MAX_IF_MATCH:
            await self.app(scope, replaying(body, receive), send)  # FastAPI's own 422
            return
        scope["route"] = route  # the metrics' label and the access rule's key, as the router sets it
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {"case_id": raw_id} if raw_id is not None else {}
        request = StrictJSONRequest(scope, replaying(body, receive))
        request._body = body
        request._strict_json = given
        try:
            await authorize(request)
            headers = CommandHeaders(
                idempotency_key or None, parse_if_match(if_match.decode("latin-1") if if_match is not None else None)
            )
            principal = scope["state"]["principal"]
            errors: list[Any] = []
            case_id: UUID | None = None
            if command is not None:
                case_id, wrong = route.dependant.path_params[0].validate(raw_id, {}, loc=("path", "case_id"))
                errors += wrong
            assert route.body_field is not None
            model, wrong = route.body_field.validate(given, {}, loc=("body",))
            errors += wrong
            if errors:
                raise RequestValidationError(errors, body=given)
            state = scope["app"].state
            if command is None:
                response = await in_thread(
                    case_routes.registered, model, state.cases, headers, principal, state.token_keys
                )
            else:
                assert case_id is not None
                response = await in_thread(case_routes.acted, command, case_id, model, state.cases, headers, principal)
        except Exception as error:
            handler = _handler(scope["app"].exception_handlers, error)
            if handler is None:
                raise  # to the server error middleware, as from a route
            response = handler(request, error)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each header this path reads (Starlette's `Headers.get` takes the first)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in (b"content-type", b"idempotency-key", b"if-match") and name not in found:
            found[name] = value
    return found


async def _body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parsed(body: bytes) -> Any:
    """The body as StrictJSONRequest parses it; None for what FastAPI answers itself (empty, not JSON)."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _handler(handlers: dict[Any, Any], error: Exception) -> Any:
    """The app's handler for this error, looked up as Starlette's exception middleware does; the
    handler of `Exception` itself is the server error middleware's, which sees the error re-raised."""
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
