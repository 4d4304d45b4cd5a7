"""Issue 11, the rest of the attacker's review of the read routes, on SQLite and PostgreSQL: a body
the scope check cannot read is refused, crafted cursors are 422, and a refusal names no case."""

from __future__ import annotations

import base64
import codecs
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from api.read_dependencies import WAITS_PER_TOKEN
from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from projections.runtime import ReadSide
from security.tokens import TokenKeys
from service import build_cases
from storage.views import open_views
from tests.api_steps import position, register
from tests.factories import (
    CLERK,
    GRID,
    GRID_LEADER,
    LEADER_ELSEWHERE,
    OTHER_STREET_GRID,
    OTHER_TOWNSHIP,
    SUPERVISOR,
    auth,
    registration,
)
from tests.serving import serve


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize(
    "encode",
    [
        lambda body: codecs.BOM_UTF8 + body,
        lambda body: body.decode().encode("utf-16"),
        lambda body: body.decode().encode("utf-16-le"),
        lambda body: body.decode().encode("utf-32"),
    ],
    ids=["utf-8 with BOM", "utf-16", "utf-16-le", "utf-32"],
)
def test_a_body_the_scope_check_cannot_read_is_422_never_registered_elsewhere(client: TestClient, encode: Any) -> None:
    before = position(client)
    elsewhere = orjson.dumps(registration(grid=OTHER_STREET_GRID))
    headers = {**auth(GRID_LEADER), "Content-Type": "application/json"}
    assert client.post("/cases", content=elsewhere, headers=headers).json()["error"]["code"] == "out_of_scope"
    response = client.post("/cases", content=encode(elsewhere), headers=headers)
    assert _fields(response) == ["body"]
    assert "UTF-8" in response.json()["error"]["fields"][0]["reason"]
    assert position(client) == before  # nothing was registered


def test_a_body_in_plain_utf_8_still_registers(client: TestClient) -> None:
    headers = {**auth(GRID_LEADER), "Content-Type": "application/json"}
    response = client.post("/cases", content=orjson.dumps(registration()), headers=headers)
    assert response.status_code == 201, response.text


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value) if not isinstance(value, bytes) else value).decode()


CASE = "0b6f2f44-6a36-4c1e-9bb8-2f6b0c3e5a11"
CRAFTED = {
    "dict": _b64({"value": "x", "case_id": CASE}),
    "list of three": _b64(["x", CASE, 1]),
    "value a dict": _b64([{"a": 1}, CASE]),
    "value a list": _b64([["a"], CASE]),
    "huge integer": _b64(b'[123456789012345678901234567890, "' + CASE.encode() + b'"]'),
    "integer past bigint": _b64([2**63, CASE]),
    "integer": _b64([7, CASE]),
    "float": _b64([1.5, CASE]),
    "boolean": _b64([True, CASE]),
    "null": _b64([None, CASE]),
    "case id a dict": _b64(["x", {"id": CASE}]),
    "case id a number": _b64(["x", 12]),
    "case id not a uuid": _b64(["x", "'; DROP TABLE ledger_cases; --"]),
    "nul in the value": _b64(["a\u0000b", CASE]),
    "a bare dict": '{"a": 1}',
    "a bare list": "[1, 2]",
    "not base64": "%%%***",
    "base64 of garbage": base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
}


def test_crafted_cursors_are_422_naming_the_cursor(client: TestClient) -> None:
    register(client)
    register(client)
    client.get("/ledger", params={"wait_for": position(client)})
    for name, cursor in CRAFTED.items():
        for sort in ("registered_at", "number"):
            for path in ("/ledger", "/lists/problems"):
                response = client.get(path, params={"cursor": cursor, "sort": sort, "limit": 1})
                assert response.status_code == 422, (name, sort, path, response.status_code, response.text)
                assert _fields(response) == ["cursor"], name
    page = client.get("/ledger", params={"limit": 1}).json()
    assert client.get("/ledger", params={"limit": 1, "cursor": page["next_cursor"]}).status_code == 200


def test_an_out_of_scope_refusal_reveals_nothing_about_the_case(client: TestClient) -> None:
    case_id = register(client)
    case = client.get(f"/cases/{case_id}").json()
    outsiders = (Actor(LEADER_ELSEWHERE, Role.GRID_LEADER), OTHER_TOWNSHIP)
    for outsider in outsiders:
        for response in (
            client.get(f"/cases/{case_id}", headers=auth(outsider)),
            client.get(f"/cases/{case_id}/history", headers=auth(outsider)),
            client.post(f"/cases/{case_id}/report-progress", json={"summary": "x"}, headers=auth(outsider)),
        ):
            assert response.status_code == 403, response.text
            error = response.json()["error"]
            assert error["code"] == "out_of_scope"
            for detail in (
                case["number"],
                case["title"],
                case["units"]["grid"],
                case_id,
                case["number"].split("-")[-1],
            ):
                assert str(detail) not in response.text, (detail, error["message"])


def test_waiting_for_a_position_past_the_log_head_is_422(client: TestClient) -> None:
    register(client)
    head = position(client)
    for wait_for in (head + 1, 1_000_000_000_000):
        params = {"wait_for": wait_for, "wait_timeout": 15, "grid": GRID}
        response = client.get("/ledger", params=params, headers=auth(GRID_LEADER))
        assert _fields(response) == ["wait_for"]
        assert "超出" in response.json()["error"]["fields"][0]["reason"]
    assert client.get("/ledger", params={"wait_for": head}).status_code == 200


def test_waiters_hold_no_worker_thread_and_are_capped_per_token(settings: Settings) -> None:
    # No projection runs in this server: every waiter waits until the test moves the views.
    for base in serve(settings, "--workers", "1", "--projections", "external"):
        with httpx.Client(base_url=base, timeout=60) as http:
            created = http.post("/cases", json=registration(), headers=auth(CLERK))
            assert created.status_code == 201, created.text
            case_id, wait_for = created.json()["case_id"], created.json()["position"]
            keys = TokenKeys.from_settings(settings)
            # More waiters than the server has worker threads (40), each from its own grid leader token ...
            tokens = [keys.issue(Role.GRID_LEADER, "GL0001", grids=[GRID]) for _ in range(45)]
            # ... and more from one token than the cap allows.
            one = keys.issue(Role.GRID_LEADER, "GL0001", grids=[GRID])
            waits = {"wait_for": wait_for, "wait_timeout": 30, "grid": GRID}

            def wait(token: str, params: dict[str, Any] = waits) -> httpx.Response:
                return http.get("/ledger", params=params, headers={"Authorization": f"Bearer {token}"})

            with ThreadPoolExecutor(max_workers=60) as pool:
                many = [pool.submit(wait, t) for t in tokens]
                capped = [pool.submit(wait, one) for _ in range(WAITS_PER_TOKEN + 3)]
                deadline = time.monotonic() + 10  # the ones over the cap answer at once; give them time to
                while sum(f.done() for f in capped) < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
                # Another user is served while every waiter is still waiting.
                other = http.get(f"/cases/{case_id}", headers=auth(SUPERVISOR), timeout=10)
                assert other.status_code == 200, other.text
                board = http.get("/board", headers=auth(SUPERVISOR), timeout=10)
                assert board.status_code == 200, board.text
                refused = [f for f in capped if f.done()]
                assert len(refused) == 3
                for response in (f.result() for f in refused):
                    assert response.status_code == 429, response.text
                    assert response.json()["error"]["code"] == "too_many_waits"
                    assert response.headers["Retry-After"]
                behind = http.get("/ledger", params={**waits, "wait_timeout": 0.5}, headers=auth(SUPERVISOR))
                assert behind.status_code == 504 and behind.json()["error"]["code"] == "projection_behind"
                waiting = [*many, *(f for f in capped if f not in refused)]
                assert not any(f.done() for f in waiting)
                _catch_up(settings)
                answers = [f.result(timeout=30).status_code for f in waiting]
            assert answers == [200] * (len(tokens) + WAITS_PER_TOKEN)


def _catch_up(settings: Settings) -> None:
    """What `minqing project --once` does, without its lock: PostgreSQL advisory locks are database-wide,
    so a projection worker of another test's schema could hold it."""
    cases = build_cases(settings)
    read_side = ReadSide(cases, open_views(settings))
    try:
        for runner in read_side.runners:
            runner.catch_up()
    finally:
        read_side.close()
        cases.close()
