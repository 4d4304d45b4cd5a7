"""Who may do what, through the HTTP API, on SQLite and PostgreSQL: each role
can do what it should and nothing more; 401 and 403 say why."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.access import RULES, Scope
from cases.actor import Actor
from cases.commands import COMMANDS
from cases.vocabulary import Role
from config.settings import InsecureConfigurationError, Settings
from service import create_app
from tests.api_steps import accepted, act, position, register
from tests.factories import (
    ADMIN,
    AUDITOR,
    CLERK,
    GRID,
    GRID_LEADER,
    HOUSING,
    INTEGRATOR,
    LEADER,
    LEADER_ELSEWHERE,
    OTHER_STREET_GRID,
    OTHER_TOWNSHIP,
    RESIDENT,
    SUPERVISOR,
    TEST_JWT_SECRET,
    TOWNSHIP,
    URBAN,
    auth,
    migrated,
    registration,
)

NOBODY: dict[str, str] = {"Authorization": ""}  # overrides the client's default reader token
PHONE = "13812341234"


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


# --- 401: who is asking? ------------------------------------------------------


def test_without_a_token_the_answer_is_401_with_www_authenticate(client: TestClient) -> None:
    response = client.get("/ledger", headers=NOBODY)
    assert _error(response, 401)["code"] == "token_missing"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "令牌" in response.json()["error"]["message"]
    before = position(client)
    assert client.post("/cases", json=registration(), headers=NOBODY).status_code == 401
    assert position(client) == before


def test_a_forged_or_malformed_token_is_401_token_invalid(client: TestClient) -> None:
    forged = jwt.encode({"iss": "minqing", "sub": "x", "role": "admin", "exp": time.time() + 60}, "guess" * 8)
    for header in (f"Bearer {forged}", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz"):
        response = client.get("/ledger", headers={"Authorization": header})
        assert _error(response, 401)["code"] == "token_invalid"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_expired_token_is_401_token_expired(client: TestClient) -> None:
    old = {"iss": "minqing", "sub": "SV001", "role": "supervision", "exp": int(time.time()) - 3600}
    response = client.get("/ledger", headers={"Authorization": f"Bearer {jwt.encode(old, TEST_JWT_SECRET)}"})
    assert _error(response, 401)["code"] == "token_expired"


def test_health_and_the_api_docs_stay_public(client: TestClient) -> None:
    for path in ("/healthz", "/openapi.json", "/docs"):
        assert client.get(path, headers=NOBODY).status_code == 200


# --- the rules table -----------------------------------------------------------


def test_every_route_has_a_rule_and_every_rule_a_route(client: TestClient) -> None:
    routes = {f"{m.upper()} {p}" for p, ops in client.app.openapi()["paths"].items() for m in ops}  # type: ignore[attr-defined]
    # Routes left out of OpenAPI (the workbench's pages) pass the same check.
    routes |= {f"{m} {r.path}" for r in api_routes(client.app.router) for m in r.methods}  # type: ignore[attr-defined]
    assert routes - RULES.keys() == set(), "routes without a rule are refused: add them to api/access.py"
    assert RULES.keys() - routes == set(), "rules for routes that no longer exist"


def api_routes(router: Any) -> Iterator[APIRoute]:
    for route in router.routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.16x keeps them nested)
            yield from api_routes(route.original_router)
        elif isinstance(route, APIRoute):
            yield route


def test_every_command_of_the_table_is_a_route_with_the_tables_roles(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for command in COMMANDS:
        path = f"/cases/{{case_id}}/{command.path}"
        assert "post" in paths[path], path
        assert RULES[f"POST {path}"].roles == command.roles and RULES[f"POST {path}"].why == command.label


def test_a_route_without_a_rule_is_refused(settings: Settings) -> None:
    app = create_app(settings, log_cache=False)

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    with TestClient(app) as client:
        assert _error(client.get("/forgotten", headers=auth(ADMIN)), 403)["code"] == "no_rule"


# --- 403: roles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "command", "body"),
    [
        (GRID_LEADER, "whistle", {"departments": ["zhujian"], "reason": "r"}),
        (AUDITOR, "classify", {"handling_type": "committed", "tier": "small"}),
        (INTEGRATOR, "report-progress", {"progress": "x"}),
        (ADMIN, "supervise", {"responsible_unit": "u", "new_due": "2026-04-01", "notice": "n"}),
        (HOUSING, "accept", {}),
        (SUPERVISOR, "rectify", {"summary": "x"}),
    ],
)
def test_a_role_outside_the_rule_is_403_and_nothing_is_stored(
    client: TestClient, actor: Actor, command: str, body: dict[str, Any]
) -> None:
    case_id = accepted(client)
    before = position(client)
    error = _error(client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor)), 403)
    assert error["code"] == "role_not_allowed" and "无权" in error["message"]
    assert position(client) == before


def test_only_staff_may_register(client: TestClient) -> None:
    for actor in (AUDITOR, SUPERVISOR, ADMIN, LEADER):
        assert _error(client.post("/cases", json=registration(), headers=auth(actor)), 403)["code"] == (
            "role_not_allowed"
        )
    assert client.post("/cases", json=registration(), headers=auth(GRID_LEADER)).status_code == 201


def test_a_body_actor_must_be_the_tokens(client: TestClient) -> None:
    body = {"actor": {"id": "SV001", "role": "supervision"}, **registration()}
    assert _error(client.post("/cases", json=body, headers=auth(CLERK)), 403)["code"] == "actor_mismatch"


# --- 403: areas ------------------------------------------------------------------


def test_a_grid_leader_sees_and_registers_only_in_their_own_grids(client: TestClient) -> None:
    case_id = register(client)
    outsider = Actor(LEADER_ELSEWHERE, Role.GRID_LEADER)
    assert client.get(f"/cases/{case_id}", headers=auth(GRID_LEADER)).status_code == 200
    assert _error(client.get(f"/cases/{case_id}", headers=auth(outsider)), 403)["code"] == "out_of_scope"
    elsewhere = client.post("/cases", json=registration(), headers=auth(outsider))
    assert _error(elsewhere, 403)["code"] == "out_of_scope"


def test_a_township_acts_only_in_its_street(client: TestClient) -> None:
    case_id = accepted(client)
    body = {"departments": ["zhujian"], "reason": "违章搭建"}
    refused = client.post(f"/cases/{case_id}/whistle", json=body, headers=auth(OTHER_TOWNSHIP))
    assert _error(refused, 403)["code"] == "out_of_scope"
    assert _error(client.get(f"/cases/{case_id}", headers=auth(OTHER_TOWNSHIP)), 403)["code"] == "out_of_scope"
    act(client, case_id, "whistle", TOWNSHIP, **body)


def test_a_department_reaches_a_case_only_once_whistled_to_it(client: TestClient) -> None:
    case_id = accepted(client)
    assert _error(client.get(f"/cases/{case_id}", headers=auth(HOUSING)), 403)["code"] == "out_of_scope"
    act(client, case_id, "whistle", TOWNSHIP, departments=["zhujian"], reason="违章搭建")
    assert client.get(f"/cases/{case_id}", headers=auth(HOUSING)).status_code == 200
    act(client, case_id, "report-in", HOUSING)
    assert _error(client.get(f"/cases/{case_id}", headers=auth(URBAN)), 403)["code"] == "out_of_scope"


def test_a_resident_token_views_verifies_and_rates_its_own_case_only(client: TestClient) -> None:
    created = client.post("/cases", json=registration(), headers=auth(CLERK)).json()
    case_id, receipt = created["case_id"], {"Authorization": f"Bearer {created['resident_token']}"}
    mine = client.get(f"/cases/{case_id}", headers=receipt)
    assert mine.status_code == 200 and mine.json()["petitioner"]["phone"] == PHONE
    other = register(client, title="另一件")
    assert _error(client.get(f"/cases/{other}", headers=receipt), 403)["code"] == "not_your_case"
    for command in ("accept", "close", "supervise"):
        assert _error(client.post(f"/cases/{case_id}/{command}", json={}, headers=receipt), 403)["code"] == (
            "role_not_allowed"
        )
    assert _error(client.get("/ledger", headers=receipt), 403)["code"] == "role_not_allowed"
    # The whole way to a verification and a rating, with the receipt's token.
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
    act(client, case_id, "assign", CLERK, assignee="GL0001")
    act(client, case_id, "accept", GRID_LEADER)
    act(client, case_id, "rectify", GRID_LEADER, summary="已修复")
    assert client.post(f"/cases/{case_id}/verify", json={"passed": True}, headers=receipt).status_code == 200
    act(client, case_id, "close", GRID_LEADER, summary="销号")
    assert client.post(f"/cases/{case_id}/rate", json={"satisfaction": "satisfied"}, headers=receipt).status_code == 200
    assert "satisfied" in str(client.get(f"/cases/{case_id}", headers=receipt).json()["rating"])


def test_scoped_roles_read_lists_and_figures_of_their_own_area_only(client: TestClient) -> None:
    case_id = register(client)
    elsewhere = register(client, grid=OTHER_STREET_GRID)
    mine = client.get("/ledger", params={"wait_for": position(client)}, headers=auth(GRID_LEADER))
    assert [item["case_id"] for item in mine.json()["items"]] == [case_id]  # the area needs no filter
    assert client.get("/ledger", params={"grid": GRID}, headers=auth(GRID_LEADER)).json()["total"] == 1
    assert client.get("/ledger", params={"street": TOWNSHIP.unit}, headers=auth(TOWNSHIP)).json()["total"] == 1
    # A filter naming another area narrows to nothing; it never widens the caller's area.
    assert client.get("/board", params={"unit": "350105002"}, headers=auth(TOWNSHIP)).json()["totals"]["cases"] == 0
    assert client.get("/ledger", params={"grid": OTHER_STREET_GRID}, headers=auth(GRID_LEADER)).json()["total"] == 0
    assert client.get("/ledger", headers=auth(SUPERVISOR)).json()["total"] == 2
    assert elsewhere != case_id


def test_auditors_and_integrators_read_streams_but_not_personal_data(client: TestClient) -> None:
    case_id = register(client)
    for actor in (AUDITOR, INTEGRATOR):
        assert client.get("/events", headers=auth(actor)).status_code == 200
        assert client.get(f"/cases/{case_id}", headers=auth(actor)).json()["petitioner"]["phone"] == "138****1234"
    granted = client.get(f"/cases/{case_id}", headers=auth(AUDITOR, grants=("pii",)))
    assert granted.json()["petitioner"]["phone"] == PHONE
    assert _error(client.get("/events", headers=auth(CLERK)), 403)["code"] == "role_not_allowed"
    assert _error(client.get("/audit/verify", headers=auth(INTEGRATOR)), 403)["code"] == "role_not_allowed"


def test_the_pii_grant_opens_personal_data_in_streams_too(client: TestClient) -> None:
    register(client)

    def phone_in_feed(**grant: tuple[str, ...]) -> str:
        page = client.get("/events", params={"type": "Registered"}, headers=auth(INTEGRATOR, **grant)).json()
        return page["events"][0]["data"]["petitioner"]["phone"]

    assert phone_in_feed() == "138****1234"
    assert phone_in_feed(grants=("pii",)) == PHONE
    masked = client.post("/webhooks", json={"url": "https://10.20.30.40/h"}, headers=auth(INTEGRATOR)).json()
    clear = client.post(
        "/webhooks", json={"url": "https://10.20.30.40/h"}, headers=auth(INTEGRATOR, grants=("pii",))
    ).json()
    assert (masked["personal"], clear["personal"]) == (False, True)


def test_who_sees_a_petitioners_phone(client: TestClient) -> None:
    case_id = accepted(client)
    clear = {CLERK, GRID_LEADER, TOWNSHIP, SUPERVISOR}
    for actor in (CLERK, GRID_LEADER, TOWNSHIP, SUPERVISOR, ADMIN, AUDITOR, INTEGRATOR):
        shown = client.get(f"/cases/{case_id}", headers=auth(actor)).json()["petitioner"]
        assert shown["phone"] == (PHONE if actor in clear else "138****1234"), actor
        history = client.get(f"/cases/{case_id}/history", headers=auth(actor)).json()
        assert history["events"][0]["payload"]["petitioner"]["phone"] == shown["phone"], actor


def test_a_resident_actor_in_the_factories_needs_its_case() -> None:
    with pytest.raises(ValueError, match="case"):
        auth(RESIDENT)


# --- production refuses to start without secrets ----------------------------------


def test_production_refuses_to_start_without_a_secret(settings: Settings) -> None:
    bare = dataclasses.replace(settings, jwt_secret=None, master_key=None, environment="production")
    with pytest.raises(InsecureConfigurationError, match="MINQING_JWT_SECRET"), TestClient(create_app(bare)):
        pass


def test_development_mode_works_out_of_the_box_with_dev_tokens(tmp_path: Any) -> None:
    from security.tokens import DEV_SECRET, TokenKeys

    dev = Settings(sqlite_path=tmp_path / "dev.sqlite3")
    migrated(dev)
    assert not dev.production and TokenKeys.from_settings(dev).dev
    token = TokenKeys.from_settings(dev).issue(Role.INTAKE_CLERK, "CL001")
    assert jwt.decode(token, DEV_SECRET, algorithms=["HS256"], issuer="minqing")["role"] == "intake_clerk"
    with TestClient(create_app(dev, log_cache=False)) as client:
        created = client.post("/cases", json=registration(), headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201
    assert Settings(database_url="postgresql://x@h/db").production
    assert not Settings(database_url="postgresql://x@h/db", environment="development").production
    assert Scope.PUBLIC in {r.scope for r in RULES.values()}


def test_the_request_log_names_who_asked_but_never_the_token(client: TestClient) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        client.get("/board", headers=auth(SUPERVISOR))
    line = next(e for e in logs if e["event"] == "request")
    assert line["actor"] == SUPERVISOR.id and line["role"] == "supervision"
    assert auth(SUPERVISOR)["Authorization"].split()[1] not in repr(logs)


def test_tokens_from_an_identity_provider_verify_with_its_public_key(settings: Settings) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    claims = {"iss": "minqing", "sub": "SV001", "role": "supervision", "exp": int(time.time()) + 600}
    signed = jwt.encode(claims, private, algorithm="RS256")
    rs = dataclasses.replace(settings, jwt_public_key=public_pem, jwt_algorithm="RS256")
    with TestClient(create_app(rs, log_cache=False)) as client:
        assert client.get("/board", headers={"Authorization": f"Bearer {signed}"}).status_code == 200
        # An HS256 token "signed" with the public key (algorithm confusion) is refused.
        forged = _hs256_with(public_pem, claims)
        response = client.get("/board", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"
        # This service only verifies such tokens: no resident token on the receipt.
        created = client.post("/cases", json=registration(), headers={"Authorization": f"Bearer {signed}"})
        assert created.status_code == 403


def _hs256_with(secret: str, claims: dict[str, Any]) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest())


# --- the whole read surface, role by role -----------------------------------------

SCOPED_QUERY = {
    Role.GRID_LEADER: {"grid": GRID, "unit": GRID},
    Role.TOWNSHIP: {"street": TOWNSHIP.unit, "unit": TOWNSHIP.unit},
    Role.DEPARTMENT: {"lead_department": "zhujian", "unit": "zhujian"},
}
EVERY_ROLE = (CLERK, GRID_LEADER, TOWNSHIP, HOUSING, LEADER, SUPERVISOR, ADMIN, AUDITOR, INTEGRATOR, RESIDENT)


def test_every_read_route_admits_exactly_the_roles_of_its_rule(client: TestClient) -> None:
    case_id = accepted(client)
    act(client, case_id, "whistle", TOWNSHIP, departments=["zhujian"], reason="违章搭建")  # housing in scope
    reads = {
        "GET /cases/{case_id}": f"/cases/{case_id}",
        "GET /cases/{case_id}/history": f"/cases/{case_id}/history",
        "GET /ledger": "/ledger",
        "GET /ledger/export.{fmt}": "/ledger/export.csv",
        "GET /lists/{kind}": "/lists/problems",
        "GET /lists/{kind}/export.{fmt}": "/lists/problems/export.csv",
        "GET /board": "/board",
        "GET /scores": "/scores",
        "GET /departments/evaluation": "/departments/evaluation",
        "GET /reports/{kind}": "/reports/monthly",
        "GET /reports/{kind}/export.xlsx": "/reports/monthly/export.xlsx",
        "GET /audit/verify": "/audit/verify",
        "GET /audit/seals": "/audit/seals",
        "GET /events": "/events",
        "GET /webhooks": "/webhooks",
    }
    for key, path in reads.items():
        for actor in EVERY_ROLE:
            params = {"period": "2026-03"} if "/reports/" in path else SCOPED_QUERY.get(actor.role, {})
            response = client.get(path, params=params, headers=auth(actor, case_id))
            if actor.role in RULES[key].roles:
                assert response.status_code == 200, (key, actor.role, response.text)
            else:
                assert response.status_code == 403, (key, actor.role, response.status_code)
                assert response.json()["error"]["code"] == "role_not_allowed"
    # The live stream refuses at once; an allowed reader would stream for ever, so only refusals are checked here.
    for actor in EVERY_ROLE:
        if actor.role not in RULES["GET /events/stream"].roles:
            assert client.get("/events/stream", headers=auth(actor, case_id)).status_code == 403
