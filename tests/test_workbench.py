"""The workbench's sign-in, CSRF and access rules over HTTP, on SQLite and PostgreSQL.
The browser tests are in test_workbench_browser.py."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from api.access import RULES, SESSION_COOKIE, WORKBENCH
from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from security.tokens import TokenKeys
from service import create_app
from tests.api_steps import accepted, act, position, register
from tests.factories import (
    AUDITOR,
    CLERK,
    GRID_LEADER,
    HOUSING,
    LEADER_ELSEWHERE,
    OTHER_TOWNSHIP,
    SECURITY,
    SUPERVISOR,
    TOWNSHIP,
    token,
)

NOBODY = {"Authorization": ""}
HTML = {"Accept": "text/html", "Authorization": ""}


def post_signin(client: TestClient, data: dict[str, str], **kwargs: Any) -> Any:
    """The sign-in form as a browser sends it: from the sign-in page, with its CSRF token."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/signin", headers=HTML).text)
    assert found, "the sign-in page has no CSRF token"
    return client.post("/signin", data={**data, "csrf": found.group(1)}, **kwargs)


def test_a_sign_in_from_another_site_is_refused(client: TestClient) -> None:
    # Login CSRF: another site's page posting its own token would sign this browser in as someone else.
    client.cookies.clear()
    forged = client.post("/signin", data={"token": token(CLERK)}, headers=NOBODY, follow_redirects=False)
    assert forged.status_code == 403 and "跨站请求校验未通过" in forged.text
    assert "minqing_session" not in forged.headers.get("set-cookie", "")
    stale = client.post("/signin", data={"token": token(CLERK), "csrf": "0" * 64}, follow_redirects=False)
    assert stale.status_code == 403


def sign_in(client: TestClient, actor: Actor) -> str:
    """Signs the client's browser in as the actor; returns the page it lands on."""
    client.base_url = "https://testserver"  # type: ignore[assignment]  # production cookies are Secure
    client.cookies.clear()
    response = post_signin(client, {"token": token(actor)}, headers=NOBODY, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path, headers=HTML).text)
    assert found, "the page has no CSRF token"
    return found.group(1)


def test_a_browser_is_led_to_sign_in_and_a_program_to_the_docs(client: TestClient) -> None:
    first = client.get("/", headers=HTML, follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/workbench")
    second = client.get("/workbench", headers=HTML, follow_redirects=False)
    assert (second.status_code, second.headers["location"]) == (303, "/signin")
    page = client.get("/signin", headers=HTML)
    assert page.status_code == 200 and "登录民情工作台" in page.text
    program = client.get("/", headers={"Accept": "application/json", **NOBODY}, follow_redirects=False)
    assert (program.status_code, program.headers["location"]) == (307, "/docs")
    # A program asking for a page without a cookie gets the sign-in error as a page (it was a 500).
    bare = client.get("/workbench", headers={"Accept": "*/*", **NOBODY}, follow_redirects=False)
    assert bare.status_code == 401 and "请先登录工作台" in bare.text, bare.text


def test_signing_in_sets_an_httponly_lax_cookie_that_expires_with_the_token(client: TestClient) -> None:
    client.base_url = "https://testserver"  # type: ignore[assignment]
    issued = token(SUPERVISOR)
    response = post_signin(client, {"token": issued}, headers=NOBODY, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    expires = jwt.decode(issued, options={"verify_signature": False})["exp"]
    assert abs(max_age - (expires - time.time())) < 60
    assert client.get("/workbench", headers=HTML).status_code == 200


def test_the_cookie_is_secure_over_https_and_in_production(client: TestClient, settings: Settings) -> None:
    plain = post_signin(client, {"token": token(CLERK)}, headers=NOBODY, follow_redirects=False)
    assert ("Secure" in plain.headers["set-cookie"]) == settings.production  # http://testserver
    client.base_url = "https://testserver"  # type: ignore[assignment]
    https = post_signin(client, {"token": token(CLERK)}, headers=NOBODY, follow_redirects=False)
    assert "Secure" in https.headers["set-cookie"]


def test_a_forged_token_does_not_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    forged = jwt.encode({"iss": "minqing", "sub": "x", "role": "admin", "exp": time.time() + 60}, "guess" * 8)
    response = post_signin(client, {"token": forged}, headers=NOBODY, follow_redirects=False)
    assert response.status_code == 401 and "令牌无效" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_the_json_api_refuses_the_workbench_cookie(client: TestClient) -> None:
    sign_in(client, SUPERVISOR)
    assert client.get("/workbench", headers=HTML).status_code == 200
    for path in ("/ledger", "/board", "/events"):
        response = client.get(path, headers=NOBODY)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "token_missing"


def test_a_command_form_without_the_sessions_csrf_token_is_refused_and_lands_nothing(client: TestClient) -> None:
    case_id = accepted(client)
    sign_in(client, SUPERVISOR)
    page = f"/workbench/cases/{case_id}"
    good = csrf(client, page)
    form = {"responsible_unit": "马限社区", "new_due": "2099-01-01", "notice": "请加快办理", "version": "4"}
    before = position(client)
    for sent in ({}, {"csrf": "0" * 64}):
        response = client.post(f"{page}/supervise", data={**form, **sent}, headers=HTML)
        assert response.status_code == 403 and "跨站请求校验未通过" in response.text
    assert position(client) == before
    # Another session (another token): the first one's CSRF token is worth nothing there.
    fresh = TokenKeys.from_settings(Settings(**SECURITY)).issue(SUPERVISOR.role, SUPERVISOR.id)
    client.cookies.clear()
    post_signin(client, {"token": fresh}, headers=NOBODY, follow_redirects=False)
    response = client.post(f"{page}/supervise", data={**form, "csrf": good}, headers=HTML)
    assert response.status_code == 403
    assert position(client) == before


def test_a_command_form_lands_an_event_with_the_signed_in_actor_and_a_stale_one_gets_412(client: TestClient) -> None:
    case_id = accepted(client)
    sign_in(client, SUPERVISOR)
    page = f"/workbench/cases/{case_id}"
    form = {"responsible_unit": "马限社区", "new_due": "2099-01-01", "notice": "请加快办理", "csrf": csrf(client, page)}
    done = client.post(f"{page}/supervise", data={**form, "version": "4"}, headers=HTML)
    assert done.status_code == 200 and "已督办" in done.text
    last = client.get(f"/cases/{case_id}/history").json()["events"][-1]
    assert (last["type"], last["actor"]["id"]) == ("SupervisionNoticeIssued", "SV001")
    assert last["actor"]["role"] == "supervision"
    stale = client.post(f"{page}/supervise", data={**form, "version": "4"}, headers=HTML)
    assert stale.status_code == 412 and "案件已被他人更新" in stale.text
    assert client.get(f"/cases/{case_id}/history").json()["version"] == 5


def test_signing_out_clears_the_cookie(client: TestClient) -> None:
    sign_in(client, SUPERVISOR)
    response = client.post("/signout", data={"csrf": csrf(client, "/workbench")}, headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]


def test_every_workbench_page_has_the_rule_of_the_api_route_it_mirrors() -> None:
    for page, api in WORKBENCH.items():
        assert RULES[page] == RULES[api], page


@pytest.mark.parametrize(
    ("actor", "page", "status"),
    [
        (GRID_LEADER, "/workbench/evaluation", 403),
        (TOWNSHIP, "/workbench/evaluation", 200),
        (AUDITOR, "/workbench/figures", 200),
        (HOUSING, "/workbench/reports/monthly", 200),
    ],
)
def test_a_page_admits_the_roles_of_its_api_route(client: TestClient, actor: Actor, page: str, status: int) -> None:
    sign_in(client, actor)
    response = client.get(page, headers=HTML)
    assert response.status_code == status
    if status == 403:
        assert "无权" in response.text and "<html" in response.text  # a page, not JSON


def test_a_scoped_role_sees_only_its_own_area_whatever_it_asks(client: TestClient) -> None:
    own = register(client)
    elsewhere = register(client, grid="35010510100101")
    numbers = {case_id: client.get(f"/cases/{case_id}").json()["number"] for case_id in (own, elsewhere)}
    home = sign_in(client, TOWNSHIP)
    assert home == "/workbench?unit=350105001&by=community"
    for path in ("/workbench/ledger", "/workbench/ledger?street=350105101", "/workbench/ledger?unit=350105101"):
        page = client.get(path, headers=HTML, params={"wait_for": position(client)})
        assert page.status_code == 200 and numbers[elsewhere] not in page.text, path
    assert numbers[own] in client.get("/workbench/ledger", headers=HTML).text
    refused = client.get(f"/workbench/cases/{elsewhere}", headers=HTML)
    assert refused.status_code == 403 and numbers[elsewhere] not in refused.text
    sign_in(client, OTHER_TOWNSHIP)
    assert client.get(f"/workbench/cases/{elsewhere}", headers=HTML).status_code == 200


def test_personal_data_is_masked_on_the_case_page_unless_the_role_may_see_it(client: TestClient) -> None:
    case_id = register(client)
    sign_in(client, AUDITOR)
    masked = client.get(f"/workbench/cases/{case_id}", headers=HTML).text
    assert "13812341234" not in masked and "138****1234" in masked and "个人信息已遮蔽" in masked
    sign_in(client, CLERK)
    assert "13812341234" in client.get(f"/workbench/cases/{case_id}", headers=HTML).text


def test_the_case_page_offers_only_the_commands_the_role_may_take_now(client: TestClient) -> None:
    case_id = accepted(client)
    sign_in(client, GRID_LEADER)
    offered = re.findall(r'data-command="([a-z-]+)"', client.get(f"/workbench/cases/{case_id}", headers=HTML).text)
    # request-extension: a grid leader asks for more time, the township or supervision decides (issue 17).
    handling = {"report-progress", "plan-rectification", "rectify", "close", "feedback"}
    assert set(offered) == handling | {"request-extension", "locate", "attachments"}
    act(client, case_id, "report-progress", GRID_LEADER, progress="已到现场查看")
    sign_in(client, Actor(LEADER_ELSEWHERE, Role.GRID_LEADER))
    assert client.get(f"/workbench/cases/{case_id}", headers=HTML).status_code == 403


def test_downloads_are_the_api_exports(client: TestClient) -> None:
    register(client)
    sign_in(client, SUPERVISOR)
    page = client.get("/workbench/ledger/export.csv", headers=HTML)
    api = client.get("/ledger/export.csv")
    assert page.status_code == 200 and page.content == api.content
    assert page.headers["content-disposition"] == api.headers["content-disposition"]


def test_development_mode_offers_the_demo_roles(settings: Settings) -> None:
    dev = dataclasses.replace(settings, jwt_secret=None, environment="development")
    with TestClient(create_app(dev, log_cache=False)) as client:
        page = client.get("/signin")
        assert "开发模式" in page.text and 'value="SV001"' in page.text
        response = post_signin(client, {"dev": "GL0001"}, follow_redirects=False)
        assert response.headers["location"] == "/workbench?unit=35010500100101&by=grid"
        assert client.get(response.headers["location"]).status_code == 200
    with TestClient(create_app(settings, log_cache=False)) as client:
        assert "开发模式" not in client.get("/signin").text
        refused = post_signin(client, {"dev": "SV001"}, follow_redirects=False)
        assert refused.status_code == 422 and SESSION_COOKIE not in refused.headers.get("set-cookie", "")


def test_a_form_sent_twice_lands_once(client: TestClient) -> None:
    case_id = accepted(client)
    sign_in(client, GRID_LEADER)
    page = f"/workbench/cases/{case_id}"
    text = client.get(page, headers=HTML).text
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+-report-progress)"', text).group(1)  # type: ignore[union-attr]
    form = {"progress": "已到现场", "version": "4", "idempotency_key": key, "csrf": csrf(client, page)}
    for _ in range(2):
        assert client.post(f"{page}/report-progress", data=form, headers=HTML).status_code == 200
    events = client.get(f"/cases/{case_id}/history").json()["events"]
    assert [e["type"] for e in events].count("ProgressReported") == 1
