"""The command table's ASGI path (api/command_path.py) answers exactly what the FastAPI routes
answered: the same status, headers and bytes, for success and for every refusal.

Two servers over real HTTP on one store: the service as built (the command path in front) and
the same service with the command path taken out (every command through FastAPI's routes, as
before issue 15's afternoon). Each scenario runs on both, each on its own cases; the answers are
compared once the values that name a particular case (its id, number, position, receipt token)
are replaced by placeholders."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import httpx
import orjson
import pytest
import uvicorn

from api import command_path
from api.command_path import CommandPath
from config.settings import Settings
from service import create_app
from tests.factories import (
    AUDITOR,
    CLERK,
    GRID_LEADER,
    MONITOR,
    OTHER_STREET_GRID,
    OTHER_TOWNSHIP,
    RESIDENT,
    TOWNSHIP,
    actor_json,
    auth,
    registration,
)
from tests.serving import free_port

IGNORED_HEADERS = {b"date", b"x-request-id", b"content-length"}
CASE_VALUES = ("case_id", "number", "position", "resident_token")


class Running:
    """A uvicorn server in a thread, for one app."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", http="httptools")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.base, timeout=30)
        return self.client

    def __exit__(self, *_: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


def routes_only(settings: Settings) -> Any:
    """The service without its command path: what answered every command before."""
    app = create_app(settings, log_cache=False)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not CommandPath]
    return app


@pytest.fixture
def servers(settings: Settings) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with Running(create_app(settings, log_cache=False)) as fast, Running(routes_only(settings)) as routes:
        yield fast, routes


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many commands each path ran: the command path's thread, and FastAPI's POST /cases… routes."""
    counts = {"command_path": 0, "routes": 0}
    own_thread = command_path.in_thread
    handle = fastapi.routing.APIRoute.handle

    async def counted_thread(call: Any, *args: Any) -> Any:
        counts["command_path"] += 1
        return await own_thread(call, *args)

    async def counted_handle(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] == "POST" and scope["path"].startswith("/cases"):
            counts["routes"] += 1
        await handle(self, scope, receive, send)

    monkeypatch.setattr(command_path, "in_thread", counted_thread)
    monkeypatch.setattr(fastapi.routing.APIRoute, "handle", counted_handle)
    return counts


def answer(response: httpx.Response, names: list[str]) -> dict[str, Any]:
    """What a client sees, with the values that name this run's cases (ids, numbers) replaced."""

    def plain(text: str) -> str:
        for i, name in enumerate(names):
            text = text.replace(name, f"<case {i}>")
        return text

    body: Any = response.content
    if response.headers.get("content-type") == "application/json":
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            body = {k: (f"<{k}>" if k in CASE_VALUES and v is not None else v) for k, v in body.items()}
            body = orjson.loads(plain(orjson.dumps(body).decode()))
    headers = [(k, plain(v.decode("latin-1"))) for k, v in response.headers.raw if k.lower() not in IGNORED_HEADERS]
    assert int(response.headers["content-length"]) == len(response.content)
    return {"status": response.status_code, "headers": headers, "body": body}


def scenario(client: httpx.Client, run: str) -> list[dict[str, Any]]:
    """Every kind of answer a command gets. `run` makes this run's idempotency keys its own (one store)."""
    answers: list[dict[str, Any]] = []
    ids: list[str] = []
    numbers: list[str] = []

    def send(path: str, body: Any = None, *, raw: bytes | None = None, **headers: str) -> httpx.Response:
        content = raw if raw is not None else orjson.dumps(body)
        headers.setdefault("content-type", "application/json")
        response = client.post(path.format(*ids), content=content, headers=headers)
        if response.status_code == 201 and response.json()["case_id"] not in ids:
            ids.append(response.json()["case_id"])
            numbers.append(response.json()["number"])
        answers.append(answer(response, [*ids, *numbers]))
        return response

    clerk = auth(CLERK)["Authorization"]
    # Success: a registration (ETag, Location, the receipt's token) and a command (ETag).
    send("/cases", registration(), authorization=clerk)
    send("/cases/{0}/classify", {"handling_type": "committed", "tier": "small"}, authorization=clerk)
    # 409: the case refuses a second classification; 412: If-Match names a passed version; 422 on If-Match.
    send("/cases/{0}/classify", {"handling_type": "committed", "tier": "small"}, authorization=clerk)
    send("/cases/{0}/assign", {"assignee": "GL0001"}, **{"authorization": clerk, "if-match": '"1"'})
    send("/cases/{0}/assign", {"assignee": "GL0001"}, **{"authorization": clerk, "if-match": "latest"})
    send("/cases/{0}/assign", {"assignee": "GL0001"}, **{"authorization": clerk, "if-match": 'W/"2"'})
    # Idempotency: the first answer, its replay, and the same key on another request.
    key = f"fastpath-{run}-{uuid.uuid4().hex}"
    send("/cases", registration(title="路灯不亮"), **{"authorization": clerk, "idempotency-key": key})
    send("/cases", registration(title="路灯不亮"), **{"authorization": clerk, "idempotency-key": key})
    send("/cases", registration(title="路灯坏了"), **{"authorization": clerk, "idempotency-key": key})
    command_key = f"fastpath-{run}-{uuid.uuid4().hex}"
    body = {"handling_type": "direct", "tier": "small"}
    send("/cases/{1}/classify", body, **{"authorization": clerk, "idempotency-key": command_key})
    send("/cases/{1}/classify", body, **{"authorization": clerk, "idempotency-key": command_key})
    send("/cases/{1}/classify", {**body, "tier": "big"}, **{"authorization": clerk, "idempotency-key": command_key})
    # 401: no token, another scheme, a forged token.
    send("/cases", registration())
    send("/cases/{0}/accept", {}, authorization="Basic eDp5")
    send("/cases/{0}/accept", {}, authorization="Bearer not.a.token")
    # 403: a role the rule does not name, an actor other than the token's, a case or grid outside the area.
    send("/cases", registration(), authorization=auth(AUDITOR)["Authorization"])
    send("/cases/{0}/accept", {}, authorization=auth(AUDITOR)["Authorization"])
    resident_of_another_case = auth(RESIDENT, ids[1])["Authorization"]
    send("/cases/{0}/rate", {"satisfaction": "satisfied", "comment": "好"}, authorization=resident_of_another_case)
    send("/cases", {**registration(), "actor": actor_json(TOWNSHIP)}, authorization=clerk)
    send("/cases/{1}/assign", {"assignee": "GL0001"}, authorization=auth(OTHER_TOWNSHIP)["Authorization"])
    send("/cases", registration(grid=OTHER_STREET_GRID), authorization=auth(GRID_LEADER)["Authorization"])
    # 404: no such case.
    send(f"/cases/{uuid.UUID(int=7)}/classify", {"handling_type": "committed", "tier": "small"}, authorization=clerk)
    # 422: each field with its reason, from the body, the path, the reference data and the case.
    send("/cases", registration(title="", petitioner_phone="12", colour="red"), authorization=clerk)
    send("/cases", registration(title="楼顶\u202e渗水", description="\x85"), authorization=clerk)
    send("/cases", registration(channel="carrier-pigeon"), authorization=clerk)
    send("/cases", [1, 2], authorization=clerk)
    send("/cases/not-a-case/classify", {"tier": "huge"}, authorization=clerk)
    send("/cases/{0}/assign", {"assignee": "GL9999"}, authorization=clerk)
    # Bodies the command path hands to FastAPI untouched: BOM, UTF-16, not JSON, empty, another type.
    send("/cases", raw=b"\xef\xbb\xbf" + orjson.dumps(registration()), authorization=clerk)
    send("/cases", raw=orjson.dumps(registration()).decode().encode("utf-16"), authorization=clerk)
    send("/cases", raw=b'{"title": ', authorization=clerk)
    send("/cases", raw=b"", authorization=clerk)
    send("/cases", raw=orjson.dumps(registration()), **{"authorization": clerk, "content-type": "text/plain"})
    send("/cases", registration(), **{"authorization": clerk, "idempotency-key": "k" * 201})
    # An unknown command (FastAPI's 404), and a body over the cap (the input guard's 413, in front of both).
    send("/cases/{0}/dance", {}, authorization=clerk)
    send("/cases", raw=b"[" + b"0," * 200_000 + b"0]", authorization=clerk)
    return answers


def test_the_command_path_answers_what_the_routes_answered(
    servers: tuple[httpx.Client, httpx.Client], taken: dict[str, int]
) -> None:
    fast, routes = servers
    through_routes = scenario(routes, "routes")
    assert taken == {"command_path": 0, "routes": len(through_routes) - 2}  # all but the 413 and the 404
    ran_routes = taken["routes"]

    through_path = scenario(fast, "path")

    statuses = [a["status"] for a in through_path]
    assert {201, 200, 401, 403, 404, 409, 412, 413, 422} <= set(statuses)
    for step, (path_answer, routes_answer) in enumerate(zip(through_path, through_routes, strict=True)):
        assert path_answer == routes_answer, f"step {step}"
    # The commands went by the command path, not FastAPI's routes: only the requests handed over
    # (BOM, UTF-16, not JSON, empty, text/plain, an over-long key) reached a route.
    assert taken["command_path"] >= 12
    assert taken["routes"] - ran_routes == 6


def test_a_replay_is_the_first_answer_and_a_reused_key_is_refused(servers: tuple[httpx.Client, httpx.Client]) -> None:
    fast, _ = servers
    headers = {"authorization": auth(CLERK)["Authorization"], "idempotency-key": uuid.uuid4().hex}
    first = fast.post("/cases", json=registration(), headers=headers)
    again = fast.post("/cases", json=registration(), headers=headers)
    other = fast.post("/cases", json=registration(title="别的事"), headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert [again.json()[k] for k in ("case_id", "number", "version", "position", "replayed", "changed")] == [
        *(first.json()[k] for k in ("case_id", "number", "version", "position")),
        True,
        False,
    ]
    assert again.headers["etag"] == first.headers["etag"] and again.headers["location"] == first.headers["location"]
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


def test_metrics_see_the_route_template(servers: tuple[httpx.Client, httpx.Client]) -> None:
    fast, _ = servers
    clerk = auth(CLERK)["Authorization"]
    case_id = fast.post("/cases", json=registration(), headers={"authorization": clerk}).json()["case_id"]
    fast.post(
        f"/cases/{case_id}/classify",
        json={"handling_type": "committed", "tier": "small"},
        headers={"authorization": clerk},
    )
    fast.post(
        f"/cases/{case_id}/classify",
        json={"handling_type": "committed", "tier": "small"},
        headers={"authorization": clerk},
    )
    metrics = fast.get("/metrics", headers=auth(MONITOR)).text
    assert re.search(r'minqing_http_requests_total\{method="POST",route="/cases",status="201"\} 1\.0', metrics)
    assert re.search(r'route="/cases/\{case_id\}/classify",status="409"\} 1\.0', metrics)
    assert re.search(r'minqing_commands_total\{command="classify",outcome="accepted"\} 1\.0', metrics)
    assert "unmatched" not in metrics


def test_a_resident_token_is_what_pyjwt_signs_and_verifies() -> None:
    import jwt

    from security.tokens import hs256

    secret = "test-secret-for-minqing-tests-only-0123456789"
    claims = {"iss": "minqing", "sub": "R-350105001-20261202-K7Q2M", "role": "resident", "iat": 1, "exp": 2,
              "jti": uuid.uuid4().hex, "case": str(uuid.uuid4()), "grids": ["35010500100101"]}  # fmt: skip
    assert hs256(claims, secret) == jwt.encode(claims, secret, algorithm="HS256")
    decoded = jwt.decode(hs256(claims, secret), secret, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded == claims
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(hs256(claims, secret + "x"), secret, algorithms=["HS256"], options={"verify_exp": False})
