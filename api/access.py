"""Who may call what: ONE table from (method, path template) to the roles
allowed and the scope check, enforced by one app-wide dependency.

A route missing from the table is refused (403 `no_rule`), and a test checks
that every route of the OpenAPI document has a rule. The case aggregate keeps
its own, finer rules (the assignee, a whistled department) as a second line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import anyio
import orjson
from fastapi import Depends, Request

from cases.actor import Actor
from cases.case import Case
from cases.vocabulary import Role
from security.tokens import Principal, TokenError, TokenKeys

R = Role
STAFF = frozenset({R.INTAKE_CLERK, R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION, R.ADMIN})
READERS = STAFF | {R.AUDITOR, R.INTEGRATOR}  # projections and figures
HANDLERS = frozenset({R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER})  # the people working a case
# May read a petitioner's name and phone in clear (auditors and integrators need the `pii` grant).
PERSONAL_DATA_ROLES = frozenset({R.INTAKE_CLERK, R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION})
PII_GRANT = "pii"


class Scope(StrEnum):
    PUBLIC = "public"  # no token at all
    OWN_AUTH = "own_auth"  # no bearer token: the route checks its own credential (Open311's api_key)
    ANY = "any"  # the role is enough
    CASE = "case"  # the case in the path must be within the caller's area (a resident: their one case)
    REGISTER = "register"  # a grid leader registers only in their own grids
    AREA = "area"  # lists and figures: a scoped role must filter to its own area


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
    CMD + "classify": rule({R.INTAKE_CLERK, R.TOWNSHIP}, Scope.CASE, "分类"),
    CMD + "assign": rule({R.INTAKE_CLERK, R.TOWNSHIP}, Scope.CASE, "派单"),
    CMD + "return": rule({R.GRID_LEADER}, Scope.CASE, "退单"),
    CMD + "accept": rule({R.GRID_LEADER}, Scope.CASE, "签收"),
    CMD + "report-progress": rule(HANDLERS, Scope.CASE, "报告进展"),
    CMD + "whistle": rule({R.TOWNSHIP}, Scope.CASE, "吹哨"),
    CMD + "report-in": rule({R.DEPARTMENT}, Scope.CASE, "报到"),
    CMD + "consult": rule({R.TOWNSHIP}, Scope.CASE, "会商"),
    CMD + "take-lead": rule({R.LEADER}, Scope.CASE, "包案"),
    CMD + "plan-rectification": rule(HANDLERS, Scope.CASE, "整改清单"),
    CMD + "extend": rule({R.TOWNSHIP, R.LEADER, R.SUPERVISION}, Scope.CASE, "延期"),
    CMD + "rectify": rule(HANDLERS, Scope.CASE, "整改完成"),
    CMD + "verify": rule({R.RESIDENT, R.INTAKE_CLERK}, Scope.CASE, "居民检验"),
    CMD + "close": rule(HANDLERS | {R.INTAKE_CLERK}, Scope.CASE, "销号"),
    CMD + "feedback": rule(HANDLERS | {R.INTAKE_CLERK}, Scope.CASE, "反馈"),
    CMD + "rate": rule({R.RESIDENT, R.INTAKE_CLERK}, Scope.CASE, "评议打分"),
    CMD + "supervise": rule({R.SUPERVISION}, Scope.CASE, "督办"),
    CMD + "recompute-deadlines": rule({R.INTAKE_CLERK, R.ADMIN}, Scope.CASE, "重算时限"),
    "GET /cases/{case_id}": rule(READERS | {R.RESIDENT}, Scope.CASE, "查看案件"),
    "GET /cases/{case_id}/history": rule(READERS | {R.RESIDENT}, Scope.CASE, "查看案件历史"),
    "GET /ledger": rule(READERS, Scope.AREA, "台账"),
    "GET /ledger/export.{fmt}": rule(READERS, Scope.AREA, "导出台账"),
    "GET /lists/{kind}": rule(READERS, Scope.AREA, "三清单"),
    "GET /lists/{kind}/export.{fmt}": rule(READERS, Scope.AREA, "导出三清单"),
    "GET /board": rule(READERS, Scope.AREA, "13710督办看板"),
    "GET /scores": rule(READERS, Scope.AREA, "三率"),
    "GET /departments/evaluation": rule(
        {R.TOWNSHIP, R.DEPARTMENT, R.LEADER, R.SUPERVISION, R.ADMIN, R.AUDITOR, R.INTEGRATOR}, Scope.ANY, "吹哨报到评价"
    ),
    # Bulletins are published (一季一公示) and masked: any staff member may read any area's.
    "GET /reports/{kind}": rule(READERS, Scope.ANY, "定期通报"),
    "GET /reports/{kind}/export.xlsx": rule(READERS, Scope.ANY, "导出通报"),
    "GET /audit/verify": rule({R.SUPERVISION, R.ADMIN, R.AUDITOR}, Scope.ANY, "校验哈希链"),
    "GET /audit/seals": rule({R.SUPERVISION, R.ADMIN, R.AUDITOR, R.INTEGRATOR}, Scope.ANY, "封存根哈希"),
    "GET /events": rule({R.AUDITOR, R.INTEGRATOR, R.SUPERVISION, R.ADMIN}, Scope.ANY, "事件流（个人信息已遮蔽）"),
    "GET /events/stream": rule({R.AUDITOR, R.INTEGRATOR, R.SUPERVISION, R.ADMIN}, Scope.ANY, "实时事件流"),
    "POST /persons/{person_id}/erase": rule({R.ADMIN}, Scope.ANY, "删除个人信息（销毁密钥）"),
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


async def authorize(request: Request) -> None:
    route = request.scope.get("route")
    key = f"{request.method} {getattr(route, 'path', request.url.path)}"
    found = RULES.get(key)
    limiter = request.app.state.rate_limiter
    if found is not None and found.scope == Scope.PUBLIC:
        return
    if found is not None and found.scope == Scope.OWN_AUTH:
        limiter.check("ip:" + (request.client.host if request.client else "?"))
        return
    try:
        principal = authenticate(request)
    except AuthenticationError:
        # Guessing tokens costs the guesser's address its budget too.
        limiter.check("ip:" + (request.client.host if request.client else "?"))
        raise
    request.state.principal = principal
    limiter.check(principal.token_id)
    if found is None:
        raise AccessDeniedError("no_rule", "此接口尚未配置访问规则，默认拒绝。")
    if principal.role not in found.roles:
        allowed = "、".join(ROLE_LABELS[r] for r in sorted(found.roles))
        raise AccessDeniedError(
            "role_not_allowed", f"{ROLE_LABELS[principal.role]}无权{found.why}；可以的角色：{allowed}。"
        )
    if found.scope == Scope.CASE:
        await _check_case(request, principal, request.path_params["case_id"])
    elif found.scope == Scope.REGISTER:
        await _check_register(request, principal)
    elif found.scope == Scope.AREA:
        _check_area(request, principal)


async def _check_case(request: Request, principal: Principal, raw_id: str) -> None:
    if principal.role == R.RESIDENT:
        # Decided on the token alone: a resident learns nothing about other cases, not even that they exist.
        if principal.case != raw_id.lower():
            raise AccessDeniedError("not_your_case", "居民令牌只能查看、检验和评议本人的案件。")
        return
    if principal.role not in (R.GRID_LEADER, R.TOWNSHIP, R.DEPARTMENT):
        return
    try:
        case_id = UUID(raw_id)
    except ValueError:
        return  # the route's own validation answers 422
    case: Case = await anyio.to_thread.run_sync(request.app.state.cases.get_case, case_id)
    if not in_area(principal, case):
        raise AccessDeniedError("out_of_scope", f"案件 {case.number} 不在{ROLE_LABELS[principal.role]}的管辖范围内。")


def in_area(principal: Principal, case: Case) -> bool:
    actor = principal.actor
    if principal.role == R.GRID_LEADER:
        return case.units.get("grid") in principal.grids or case.assignee == actor.id
    if principal.role == R.TOWNSHIP:
        return actor.unit is not None and case.units.get("street") == actor.unit
    if principal.role == R.DEPARTMENT:
        whistled = any(actor.unit in w["departments"] for w in case.whistles)
        return actor.unit is not None and (whistled or case.lead_department == actor.unit)
    return True


async def _check_register(request: Request, principal: Principal) -> None:
    if principal.role != R.GRID_LEADER:
        return
    try:
        body: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return  # 422 from validation
    grid = body.get("grid") if isinstance(body, dict) else None
    if not isinstance(grid, str):
        return
    units = request.app.state.cases.reference.units_of(grid)
    if units is not None and units["grid"] not in principal.grids:
        raise AccessDeniedError("out_of_scope", f"网格长只能登记本人网格内的诉求（{grid} 不是您的网格）。")


def _check_area(request: Request, principal: Principal) -> None:
    """A scoped role reads lists and figures of its own area only, named in the query."""
    role, q = principal.role, request.query_params
    reference = request.app.state.cases.reference
    unit = q.get("unit")
    if role == R.GRID_LEADER:
        ok = q.get("grid") in principal.grids or unit in principal.grids
        hint = "grid=<本人网格编码>（看板、三率、通报用 unit=）"
    elif role == R.TOWNSHIP:
        street = principal.actor.unit
        units = reference.units_of(unit) if unit else None
        ok = street is not None and (
            q.get("street") == street or unit == street or bool(units and units["street"] == street)
        )
        hint = f"street={street}（看板、三率、通报用 unit=）"
    elif role == R.DEPARTMENT:
        dept = principal.actor.unit
        ok = dept is not None and (q.get("lead_department") == dept or unit == dept)
        hint = f"lead_department={dept}（看板、三率、通报用 unit=）"
    else:
        return
    if not ok:
        raise AccessDeniedError("scope_required", f"{ROLE_LABELS[role]}只能查看本辖区的数据：请加查询参数 {hint}。")


def principal_of(request: Request) -> Principal:
    return request.state.principal


PrincipalDep = Annotated[Principal, Depends(principal_of)]


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
        if found.scope in (Scope.PUBLIC, Scope.OWN_AUTH):
            cells = ["public" if found.scope == Scope.PUBLIC else "api_key"] * len(MATRIX_ROLES)
        else:
            mark = SCOPE_MARKS.get(found.scope, "")
            cells = [("✓" + mark if r in found.roles else "") for r in MATRIX_ROLES]
        lines.append(f"| `{key}` {found.why} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(roles_matrix())
