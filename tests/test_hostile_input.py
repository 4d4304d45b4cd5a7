"""Hostile input: size limits, rate limits, odd text, oversized pages, and a
schema-driven fuzz of the whole OpenAPI surface (schemathesis) through the
ASGI app, on SQLite and PostgreSQL: never a 500, never an event stored by a
rejected request."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.access import RULES
from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from service import create_app
from tests.api_steps import Driver, position, register
from tests.factories import (
    ADMIN,
    AUDITOR,
    CLERK,
    GRID_LEADER,
    HOUSING,
    INTEGRATOR,
    LEADER,
    MONITOR,
    RESIDENT,
    SUPERVISOR,
    TOWNSHIP,
    auth,
    registration,
)

ACTOR_OF: dict[Role, Actor] = {
    a.role: a
    for a in (CLERK, GRID_LEADER, TOWNSHIP, HOUSING, LEADER, SUPERVISOR, ADMIN, AUDITOR, INTEGRATOR, RESIDENT, MONITOR)
}
EXAMPLES = int(os.environ.get("MINQING_FUZZ_EXAMPLES", "15"))
# CI runs the same examples every time, so a red build is reproducible; set
# MINQING_FUZZ_RANDOM=1 (and more examples) to explore new ones.
DERANDOMIZE = os.environ.get("MINQING_FUZZ_RANDOM", "") in ("", "0")
# An endless SSE response: its parameters are checked by test_events; here it would never return.
NOT_FUZZED = {"GET /events/stream"}


def test_a_body_over_64_kib_is_413_and_stores_nothing(client: TestClient) -> None:
    before = position(client)
    big = registration(description="漏" * 30_000)  # 90 KB of UTF-8
    response = client.post("/cases", json=big, headers=auth(CLERK))
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(70):
            yield b"x" * 1024

    chunked = client.post("/cases", content=chunks(), headers={**auth(CLERK), "Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert position(client) == before


def test_fields_over_their_limits_are_422_naming_the_field(client: TestClient) -> None:
    for field, value in (("description", "长" * 5001), ("petitioner_name", "名" * 51), ("location", "地" * 201)):
        response = client.post("/cases", json=registration(**{field: value}), headers=auth(CLERK))
        assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == field


def test_control_characters_and_nul_are_refused_before_they_reach_a_store(client: TestClient) -> None:
    before = position(client)
    for text in ("楼顶\x00渗水", "bell\x07", "\ud800"):
        # json.dumps escapes a lone surrogate as \ud800, as a hostile client would send it.
        body = json.dumps(registration(title=text)).encode()
        response = client.post("/cases", content=body, headers={**auth(CLERK), "Content-Type": "application/json"})
        assert response.status_code == 422, (text, response.text)
    assert client.get("/ledger", params={"q": "a\x00b"}).status_code == 422
    assert client.get("/ledger", params={"grid": "g" * 65}).status_code == 422
    assert position(client) == before


# C1 controls (NEL U+0085, CSI U+009B) and the bidi controls that reorder what a clerk
# reads (a right-to-left override can show "生效" where the text says "效生").
BIDI_AND_C1 = ("\u0085", "\u009b", "\u0080", "\u009f", "\u061c", "\u200e", "\u200f", "\u202a", "\u202b",
               "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")  # fmt: skip


def test_bidi_and_c1_controls_are_refused_in_every_text_field(client: TestClient) -> None:
    before = position(client)
    for char in BIDI_AND_C1:
        for field in ("title", "description", "location", "petitioner_name"):
            response = client.post("/cases", json=registration(**{field: f"楼顶{char}渗水"}), headers=auth(CLERK))
            assert response.status_code == 422, (hex(ord(char)), field, response.text)
            [error] = response.json()["error"]["fields"]
            assert error["field"] == field and f"U+{ord(char):04X}" in error["reason"], response.text
    assert position(client) == before


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE ledger_cases; --",
        "<script>alert('x')</script><img src=x onerror=alert(1)>",
        "楼顶渗水 🏚️💧 עברית RTL zero\u200bwidth\u00a0nbsp ﷽ Ｆｕｌｌｗｉｄｔｈ",
        '%s %d {0} ${jndi:ldap://x} ../../etc/passwd \\\\ " `',
    ],
)
def test_odd_text_is_stored_and_returned_verbatim_as_json(client: TestClient, text: str) -> None:
    driver = Driver(client)
    case_id = driver.register(title=text[:200], description=text)
    response = client.get(f"/cases/{case_id}", headers=auth(CLERK))
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["title"] == text[:200].strip() and response.json()["description"] == text.strip()
    found = driver.get("/ledger", q=text[:100].strip())
    assert [item["title"] for item in found["items"]] == [text[:200].strip()]
    assert client.get("/ledger", params={"number": text[:64]}).status_code == 200


def test_numbers_past_bigint_are_422_not_a_database_error(client: TestClient) -> None:
    case_id = register(client)
    # Found by the fuzz: a version past SQLite's INTEGER reached the store and answered 500.
    for path, params in (
        (f"/cases/{case_id}", {"version": 2**63}),
        ("/ledger", {"wait_for": 2**63}),
        ("/events", {"after": 2**63}),
    ):
        response = client.get(path, params=params, headers=auth(SUPERVISOR))
        assert response.status_code == 422, (path, response.text)


def test_oversized_pages_are_422(client: TestClient) -> None:
    for path, params in (("/ledger", {"limit": 100_000}), ("/events", {"limit": 10**9}), ("/board", {"limit": 5000})):
        response = client.get(path, params=params, headers=auth(SUPERVISOR))
        assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "query.limit"


def test_too_many_requests_from_one_token_are_429_with_retry_after(settings: Settings) -> None:
    tight = dataclasses.replace(settings, rate_limit_per_minute=8)  # a burst of 2, then one each 7.5 s
    with TestClient(create_app(tight, log_cache=False)) as client:
        codes = [client.get("/board", headers=auth(SUPERVISOR)).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        limited = client.get("/board", headers=auth(SUPERVISOR))
        assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"]["code"] == "rate_limited"
        # Another token has its own bucket; the liveness probe is never limited.
        assert client.get("/board", headers=auth(LEADER)).status_code == 200
        assert all(client.get("/healthz").status_code == 200 for _ in range(5))
        # Guessing tokens spends the address's budget: a flood of bad tokens ends in 429 too.
        guesses = [client.get("/board", headers={"Authorization": f"Bearer x{i}"}).status_code for i in range(4)]
        assert guesses[:2] == [401, 401] and guesses[-1] == 429


def _send(client: TestClient, kwargs: dict[str, Any]) -> Any:
    kwargs.pop("cookies", None)
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content"] = data
    return client.request(**kwargs)


def test_fuzzing_the_whole_openapi_surface_finds_no_server_error(client: TestClient) -> None:
    app = client.app
    schema = schemathesis.openapi.from_dict(app.openapi())  # type: ignore[attr-defined]
    real_case = register(client)
    fuzzed = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        rule = RULES[operation.label]
        if operation.label in NOT_FUZZED:
            continue
        roles = sorted(rule.roles) or [Role.ADMIN]

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(),
            role=st.sampled_from(roles),
            use_token=st.booleans(),
            on_real_case=st.booleans(),
        )
        def check(case: Any, role: Role, use_token: bool, on_real_case: bool) -> None:
            if on_real_case and "case_id" in (case.path_parameters or {}):
                case.path_parameters["case_id"] = real_case
            if case.query:
                case.query.pop("wait_for", None)  # waiting for a far future position only times out
            case_id = (case.path_parameters or {}).get("case_id")
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            if use_token:
                kwargs["headers"]["Authorization"] = auth(ACTOR_OF[role], str(case_id))["Authorization"]
            before = position(client)
            try:
                response = _send(client, kwargs)
            except (UnicodeEncodeError, ValueError):
                return  # the HTTP client itself refuses to send such a header
            assert response.status_code < 500, (case.operation.label, kwargs, response.text)
            if response.status_code >= 400:
                assert position(client) == before, (case.operation.label, response.status_code, response.text)
                if "/open311/" not in case.operation.label:  # Open311 answers in its own (spec) error format
                    assert response.json()["error"]["code"], (case.operation.label, response.text)

        check()
        fuzzed += 1
    assert fuzzed >= 30
