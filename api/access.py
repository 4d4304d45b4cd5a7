"""Who may call what: ONE table from (method, path template) to the roles
allowed and the scope check, enforced by one app-wide dependency.

A route missing from the table is refused (403 `no_rule`), and a test checks
that every route of the OpenAPI document has a rule. The case aggregate keeps
its own, finer rules (the assignee, a whistled department) as a second line.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import anyio
import orjson
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from cases.actor import Actor
from cases.case import Case
from cases.commands import COMMANDS
from cases.vocabulary import Role
from commands.errors import CaseNotFoundError
from projections.area import Area
from replay.records import resolve_case
from security.tokens import Principal, TokenError, TokenKeys

R = Role
STAFF = frozenset({R.INTAKE_CLERK, R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION, R.ADMIN})
READERS = STAFF | {R.AUDITOR, R.INTEGRATOR}  # projections and figures
# May read a petitioner's name and phone in clear (auditors and integrators need the `pii` grant).
PERSONAL_DATA_ROLES = frozenset({R.INTAKE_CLERK, R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION})
PII_GRANT = "pii"


class Scope(StrEnum):
    PUBLIC = "public"  # no token at all
    OWN_AUTH = "own_auth"  # no bearer token: the route checks its own credential (Open311's api_key)
    ANY = "any"  # the role is enough
    CASE = "case"  # the case in the path must be within the caller's area (a resident: their one case)
    REGISTER = "register"  # a grid leader registers only in their own grids
    AREA = "area"  # lists and figures: every query runs inside the caller's area (`AreaDep`), whatever is asked
    SIGN_IN = "sign_in"  # the workbench's sign-in and sign-out: no principal yet


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    scope: Scope
    why: str  # shown in docs/security.md


def rule(roles: set[Role] | frozenset[Role], scope: Scope, why: str) -> Rule:
    return Rule(frozenset(roles), scope, why)


PUBLIC = rule(set(), Scope.PUBLIC, "liveness probe")
OPEN311 = rule(set(), Scope.OWN_AUTH, "Open311 GeoReport v2 (api_key)")
HOOKS = frozenset({R.ADMIN, R.INTEGRATOR})  # webhook subscriptions: the integrator's own, and the operator
CMD = "POST /cases/{case_id}/"

RULES: dict[str, Rule] = {
    "GET /healthz": PUBLIC,
    "GET /readyz": rule(set(), Scope.PUBLIC, "readiness probe"),
    "GET /metrics": rule({R.METRICS, R.ADMIN}, Scope.ANY, "运行指标（及 `metrics` 角色）"),
    "POST /cases": rule({R.INTAKE_CLERK, R.GRID_LEADER}, Scope.REGISTER, "登记"),
    # Every command of the table (cases/commands.py), for its roles, on a case in the caller's area.
    **{CMD + c.path: rule(c.roles, Scope.CASE, c.label) for c in COMMANDS},
    "GET /cases/{case_id}": rule(READERS | {R.RESIDENT}, Scope.CASE, "查看案件"),
    "GET /cases/{case_id}/history": rule(READERS | {R.RESIDENT}, Scope.CASE, "查看案件历史"),
    # Attachments (api/attachments.py): as the case; a petitioner's own files also need personal data in clear.
    "GET /cases/{case_id}/attachments": rule(READERS | {R.RESIDENT}, Scope.CASE, "查看附件"),
    "GET /cases/{case_id}/attachments/{sha256}": rule(READERS | {R.RESIDENT}, Scope.CASE, "读取附件"),
    "GET /ledger": rule(READERS, Scope.AREA, "台账"),
    "GET /ledger/export.{fmt}": rule(READERS, Scope.AREA, "导出台账"),
    "GET /lists/{kind}": rule(READERS, Scope.AREA, "三清单"),
    "GET /lists/{kind}/export.{fmt}": rule(READERS, Scope.AREA, "导出三清单"),
    "GET /board": rule(READERS, Scope.AREA, "13710督办看板"),
    "GET /scores": rule(READERS, Scope.AREA, "三率"),
    "GET /departments/evaluation": rule(
        {R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION, R.ADMIN, R.AUDITOR, R.INTEGRATOR},
        Scope.AREA,
        "吹哨报到评价",
    ),
    # A bulletin counts the caller's area only; unscoped roles read any unit's.
    "GET /reports/{kind}": rule(READERS, Scope.AREA, "定期通报"),
    "GET /reports/{kind}/export.xlsx": rule(READERS, Scope.AREA, "导出通报"),
    "GET /recurring": rule(READERS, Scope.AREA, "每月一题（高频与重复诉求）"),
    "GET /audit/verify": rule({R.SUPERVISION, R.ADMIN, R.AUDITOR}, Scope.ANY, "校验哈希链"),
    "GET /audit/seals": rule({R.SUPERVISION, R.ADMIN, R.AUDITOR, R.INTEGRATOR}, Scope.ANY, "封存根哈希"),
    "GET /events": rule({R.AUDITOR, R.INTEGRATOR, R.SUPERVISION, R.ADMIN}, Scope.ANY, "事件流（个人信息已遮蔽）"),
    "GET /events/stream": rule({R.AUDITOR, R.INTEGRATOR, R.SUPERVISION, R.ADMIN}, Scope.ANY, "实时事件流"),
    "POST /persons/{person_id}/erase": rule({R.ADMIN}, Scope.ANY, "删除个人信息（销毁密钥）"),
    # Importing a hotline platform's work orders (12345 / 110 非警务): the intake office and the operator.
    "POST /imports": rule({R.INTAKE_CLERK, R.ADMIN}, Scope.ANY, "导入热线工单"),
    "GET /imports/mappings": rule({R.INTAKE_CLERK, R.ADMIN}, Scope.ANY, "查看导入映射"),
    "GET /webhooks": rule(HOOKS, Scope.ANY, "查看订阅"),
    "POST /webhooks": rule(HOOKS, Scope.ANY, "订阅事件"),
    "GET /webhooks/{subscription_id}": rule(HOOKS, Scope.ANY, "查看订阅"),
    "DELETE /webhooks/{subscription_id}": rule(HOOKS, Scope.ANY, "取消订阅"),
    "POST /webhooks/{subscription_id}/pause": rule(HOOKS, Scope.ANY, "暂停推送"),
    "POST /webhooks/{subscription_id}/resume": rule(HOOKS, Scope.ANY, "恢复推送"),
    "GET /webhooks/{subscription_id}/deliveries": rule(HOOKS, Scope.ANY, "推送记录"),
    "POST /webhooks/{subscription_id}/rotate-secret": rule(HOOKS, Scope.ANY, "更换签名密钥"),
    # Open311 GeoReport v2 authenticates with its own api_key, as the spec says; only the rate limit applies.
    "GET /open311/v2/discovery.{fmt}": OPEN311,
    "GET /open311/v2/services.{fmt}": OPEN311,
    "GET /open311/v2/services/{service_code}.{fmt}": OPEN311,
    "POST /open311/v2/requests.{fmt}": OPEN311,
    "GET /open311/v2/requests.{fmt}": OPEN311,
    "GET /open311/v2/requests/{request_id}.{fmt}": OPEN311,
}

# The workbench (web/): pages for browsers, signed in with a cookie, never a bearer header; and the
# cookie is accepted by these routes only, never by the JSON API. Each page mirrors the API route whose
# data it shows or whose command it sends, so it has that route's roles and area scope.
WORKBENCH: dict[str, str] = {
    "GET /workbench": "GET /board",
    "GET /workbench/board": "GET /board",
    "GET /workbench/live": "GET /board",
    "GET /workbench/ledger": "GET /ledger",
    "GET /workbench/ledger/export.{fmt}": "GET /ledger/export.{fmt}",
    "GET /workbench/lists/{kind}": "GET /lists/{kind}",
    "GET /workbench/lists/{kind}/export.{fmt}": "GET /lists/{kind}/export.{fmt}",
    "GET /workbench/cases/{case_id}": "GET /cases/{case_id}/history",
    "GET /workbench/cases/{case_id}/attachments/{sha256}": "GET /cases/{case_id}/attachments/{sha256}",
    "GET /workbench/figures": "GET /scores",
    "GET /workbench/evaluation": "GET /departments/evaluation",
    "GET /workbench/reports/{kind}": "GET /reports/{kind}",
    "GET /workbench/reports/{kind}/export.xlsx": "GET /reports/{kind}/export.xlsx",
    "GET /workbench/recurring": "GET /recurring",
} | {"POST /workbench" + key.removeprefix("POST "): key for key in RULES if key.startswith(CMD)}
SIGN_IN = rule(set(), Scope.SIGN_IN, "工作台登录")
RULES |= {
    "GET /": PUBLIC,  # a browser goes to the workbench, a program to /docs
    "GET /signin": SIGN_IN,
    "POST /signin": SIGN_IN,
    "POST /signout": SIGN_IN,
} | {page: RULES[api] for page, api in WORKBENCH.items()}
SESSION_COOKIE = "minqing_session"

ROLE_LABELS = {
    R.INTAKE_CLERK: "民情信息员", R.GRID_LEADER: "网格长", R.TOWNSHIP: "镇（街道）", R.DEPARTMENT: "职能部门",
    R.LEADER: "领导干部", R.SUPERVISION: "督查室", R.RESIDENT: "居民", R.ADMIN: "系统管理员",
    R.AUDITOR: "审计", R.INTEGRATOR: "对接系统", R.METRICS: "监控系统",
}  # fmt: skip


class AuthenticationError(Exception):
    """401: no token, or one that proves nothing."""

    def __init__(self, code: str, message: str, description: str, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.code, self.message, self.description, self.error = code, message, description, error

    @property
    def www_authenticate(self) -> str:
        if self.error == "":
            return 'Bearer realm="minqing"'
        return f'Bearer realm="minqing", error="{self.error}", error_description="{self.description}"'


class SignInRequiredError(AuthenticationError):
    """A workbench page without a valid sign-in cookie: the browser is sent to /signin."""


class AccessDeniedError(Exception):
    """403: a valid token, but not for this."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def sees_personal_data(principal: Principal | None) -> bool:
    if principal is None:
        return False
    return principal.role in PERSONAL_DATA_ROLES or principal.role == R.RESIDENT or PII_GRANT in principal.grants


def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("token_missing", "需要登录：请在 Authorization 头中提供 Bearer 令牌。", "", error="")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("token_invalid", "Authorization 头须为 “Bearer <令牌>”。", "Use the Bearer scheme")
    keys: TokenKeys = request.app.state.token_keys
    try:
        return keys.verify(token.strip())
    except TokenError as e:
        raise AuthenticationError(e.code, e.message, e.description) from None


def session_principal(request: Request) -> Principal:
    """The workbench's sign-in cookie holds the bearer token itself, verified like a header's."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequiredError("sign_in_required", "请先登录工作台。", "", error="")
    keys: TokenKeys = request.app.state.token_keys
    try:
        return keys.verify(token)
    except TokenError as e:
        raise SignInRequiredError(e.code, e.message, e.description) from None


async def authorize(request: Request) -> None:
    route = request.scope.get("route")
    key = f"{request.method} {getattr(route, 'path', None) or request.scope['path']}"
    found = RULES.get(key)
    limiter = request.app.state.rate_limiter
    if found is not None and found.scope == Scope.PUBLIC:
        return
    if found is not None and found.scope in (Scope.OWN_AUTH, Scope.SIGN_IN):
        limiter.check("ip:" + (request.client.host if request.client else "?"))
        return
    principal = _authenticated(request, key)
    request.state.principal = principal
    limiter.check(principal.token_id)
    found = _role_allowed(principal, found)
    if found.scope == Scope.CASE:
        await _check_case(request, principal, request.path_params["case_id"])
    elif found.scope == Scope.REGISTER:
        await _check_register(request, principal)
    # Scope.AREA is not checked here: the routes pass `AreaDep` to every query they run.


def _authenticated(request: Request, key: str) -> Principal:
    try:
        return session_principal(request) if key in WORKBENCH else authenticate(request)
    except AuthenticationError:
        # Guessing tokens costs the guesser's address its budget too.
        request.app.state.rate_limiter.check("ip:" + (request.client.host if request.client else "?"))
        raise


def _role_allowed(principal: Principal, found: Rule | None) -> Rule:
    if found is None:
        raise AccessDeniedError("no_rule", "此接口尚未配置访问规则，默认拒绝。")
    if principal.role not in found.roles:
        allowed = "、".join(ROLE_LABELS[r] for r in sorted(found.roles))
        raise AccessDeniedError(
            "role_not_allowed", f"{ROLE_LABELS[principal.role]}无权{found.why}；可以的角色：{allowed}。"
        )
    return found


def admit(request: Request, key: str) -> None:
    """What `authorize` decides from the token alone (401, the role's 403), for a caller that must
    decide before the body is read (api/limits.py InputGuard); `authorize` still runs in full after."""
    _role_allowed(_authenticated(request, key), RULES.get(key))


async def _check_case(request: Request, principal: Principal, raw_id: str) -> None:
    cases = request.app.state.cases
    try:
        case_id: UUID | None = UUID(raw_id)
    except ValueError:  # the number on the receipt: one read of its reservation
        case_id = await anyio.to_thread.run_sync(_resolved, cases, raw_id)
    if principal.role == R.RESIDENT:
        # Decided on the token alone: a resident learns nothing about other cases, not even that they exist.
        if case_id is None or principal.case != str(case_id):
            raise AccessDeniedError("not_your_case", "居民令牌只能查看、检验和评议本人的案件。")
        return
    if principal.role not in (R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT) or case_id is None:
        return  # an unknown case: the route answers 404 (or 422 for a malformed id)
    case: Case = await anyio.to_thread.run_sync(cases.get_case, case_id)
    if not in_area(principal, case):
        # Says nothing about the case (not even its number): the caller may not know it.
        role = ROLE_LABELS[principal.role]
        raise AccessDeniedError("out_of_scope", f"该案件不在{role}的管辖范围内，无权查看或办理。")


def _resolved(cases: Any, raw_id: str) -> UUID | None:
    try:
        return resolve_case(cases, raw_id)
    except CaseNotFoundError:
        return None


def in_area(principal: Principal, case: Case) -> bool:
    """A scoped role's cases: those it works on (the case's own rule), and a grid leader's whole grids."""
    if principal.role == R.GRID_LEADER and case.units.get("grid") in principal.grids:
        return True
    if principal.role in (R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT):
        return case.works_on(principal.actor)
    return True


def area_of(principal: Principal) -> Area:
    """What `in_area` admits, as a condition every read-model query ANDs in."""
    actor = principal.actor
    if principal.role == R.GRID_LEADER:
        return Area(grids=tuple(sorted(principal.grids)), assignee=actor.id)
    if principal.role == R.TOWNSHIP:
        return Area(street=actor.unit)
    if principal.role == R.DEPARTMENT:
        return Area(department=actor.unit)
    if principal.role == R.RESIDENT:
        return Area()  # nothing: a resident reads its one case, never a list
    return Area.all()


async def _check_register(request: Request, principal: Principal) -> None:
    if principal.role != R.GRID_LEADER:
        return
    try:
        body: Any = await request.json()  # the very object the route validates: parsed once (StrictJSONRequest)
    except ValueError:
        raise _unreadable_body() from None
    grid = body.get("grid") if isinstance(body, dict) else None
    if not isinstance(grid, str):
        return
    units = request.app.state.cases.reference.units_of(grid)
    if units is not None and units["grid"] not in principal.grids:
        raise AccessDeniedError("out_of_scope", f"网格长只能登记本人网格内的诉求（{grid} 不是您的网格）。")


UNREADABLE_BODY = "请求体须为 UTF-8 编码的 JSON。"  # api/errors.py gives every unreadable body the same reason


def _unreadable_body() -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": UNREADABLE_BODY, "input": {}}])


class StrictJSONRequest(Request):
    """A JSON body is parsed once, by orjson (UTF-8 only: a BOM or UTF-16 is refused), and that one
    object is what the access check reads and the route validates."""

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = orjson.loads(await self.body())
        return self._strict_json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


async def principal_of(request: Request) -> Principal:
    return request.state.principal


PrincipalDep = Annotated[Principal, Depends(principal_of)]


async def caller_area(principal: PrincipalDep) -> Area:
    return area_of(principal)


AreaDep = Annotated[Area, Depends(caller_area)]


def acting(principal: Principal, claimed: Any) -> Actor:
    """The actor of a command is the token's. A body may still name one (older
    clients): it must then be the very same, or the command is refused."""
    if claimed is not None and claimed.to_actor() != principal.actor:
        raise AccessDeniedError("actor_mismatch", "请求体中的 actor 与令牌身份不一致；actor 可省略，以令牌为准。")
    return principal.actor


MATRIX_ROLES = (
    R.INTAKE_CLERK, R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION,
    R.RESIDENT, R.AUDITOR, R.INTEGRATOR, R.ADMIN,
)  # fmt: skip
SCOPE_MARKS = {Scope.CASE: "¹", Scope.REGISTER: "²", Scope.AREA: "³"}


def roles_matrix() -> str:
    """The roles matrix of docs/security.md, generated from RULES (a test keeps the doc in step)."""
    head = "| route | " + " | ".join(str(r) for r in MATRIX_ROLES) + " |"
    lines = [head, "|---|" + "---|" * len(MATRIX_ROLES)]
    for key, found in RULES.items():
        if key in WORKBENCH or found.scope == Scope.SIGN_IN or key == "GET /":
            continue  # the workbench's pages have the rules of the API routes they mirror
        if found.scope in (Scope.PUBLIC, Scope.OWN_AUTH):
            cells = ["public" if found.scope == Scope.PUBLIC else "api_key"] * len(MATRIX_ROLES)
        else:
            mark = SCOPE_MARKS.get(found.scope, "")
            cells = [("✓" + mark if r in found.roles else "") for r in MATRIX_ROLES]
        lines.append(f"| `{key}` {found.why} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(roles_matrix())
