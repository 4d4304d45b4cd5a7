"""The workbench's pages. Every figure comes from the function the JSON API's route calls, and
every page passes the same access rule as that route (api/access.py WORKBENCH)."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID, uuid4

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api import figures, ledger, recurring
from api.access import (
    ROLE_LABELS,
    RULES,
    AreaDep,
    AuthenticationError,
    PrincipalDep,
    SignInRequiredError,
    area_of,
    sees_personal_data,
    session_principal,
)
from api.cases import present
from api.dependencies import CasesDep, CommandHeaders
from api.read_dependencies import ReadSideDep
from cases.clock import in_china
from cases.commands import COMMANDS, CaseCommand
from cases.errors import ActorNotAllowedError, CaseError
from cases.vocabulary import STATUS_LABELS, Role, Status
from commands.errors import InvalidReferenceError, StaleVersionError
from projections.area import Area
from projections.checkpoints import working_days_until
from projections.exports import HEADERS
from projections.ledger_query import LISTS, LedgerQuery, ledger_page
from projections.recurring import RecurringQuery
from projections.runtime import ReadSide
from reference.model import ReferenceData
from replay.history import EVENT_LABELS, history
from security.tokens import DEV_ACTORS, Principal, TokenError, TokenKeys
from streams.feed import EventFilter
from streams.tail import Tail, follow
from web import forms, labels
from web.session import (
    FormDep,
    csrf_checked,
    csrf_token,
    remember_nonce,
    signed_in,
    signed_out,
    signin_form_ok,
    signin_nonce,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_checked)])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(labels=labels, STATUS_LABELS={str(k): v for k, v in STATUS_LABELS.items()})
templates.env.globals.update(HEADERS=HEADERS, EVENT_LABELS=EVENT_LABELS)
templates.env.filters["duration"] = labels.duration
templates.env.filters["holder"] = labels.holder
templates.env.filters["percent"] = labels.percent

NEXT_LEVEL = {"district": "street", "street": "community", "community": "grid", "grid": "grid"}
BOARD_LIMIT = 300


def china_time(iso: str | None) -> str:
    return in_china(datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M") if iso else "—"


# Shown otherwise (a label beside it) or of no use to a reader of the timeline.
HIDDEN = frozenset({"policy_version", "assignee_name", "case_id", "case_version", "kind", "stop_reason"})


def details(payload: dict[str, Any], reference: ReferenceData) -> list[tuple[str, str]]:
    """An event's own fields as (Chinese label, readable value)."""
    names = {"channel": reference.channels, "category": reference.categories, "departments": reference.departments}
    names |= {"lead_department": reference.departments} | labels.CHOICES
    names |= {"to_department": reference.departments, "from_department": reference.departments}
    shown = []
    for key, value in payload.items():
        if value in (None, "", [], {}) or key in HIDDEN:
            continue
        if key == "petitioner" and isinstance(value, dict):
            text = " ".join(str(value[k]) for k in ("name", "phone", "address") if value.get(k))
        elif key == "deadlines" and isinstance(value, dict):
            text = "，".join(f"{labels.DEADLINES.get(k, k)} {d.get('due')}" for k, d in value.items() if d)
        elif isinstance(value, list):
            text = "、".join(names.get(key, {}).get(str(v), str(v)) for v in value)
        elif isinstance(value, bool):
            text = "是" if value else "否"
        else:
            text = names.get(key, {}).get(str(value), str(value))
        # An event's own field names first (an attachment's `name` is its file name, not a unit's).
        shown.append((labels.FIELDS.get(key, HEADERS.get(key, key)), text))
    return shown


templates.env.filters["china_time"] = china_time
templates.env.globals["details"] = details


def query(path: str, **params: Any) -> str:
    given = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(given)}" if given else path


def area(principal: Principal) -> tuple[dict[str, str], dict[str, str]]:
    """The area a scoped role works in: as `unit=` for the board and figures, as a ledger filter."""
    role, unit = principal.role, principal.actor.unit
    if role == Role.GRID_LEADER and principal.grids:
        grid = sorted(principal.grids)[0]
        return {"unit": grid}, {"grid": grid}
    if role == Role.TOWNSHIP and unit:
        return {"unit": unit}, {"street": unit}
    if role == Role.DEPARTMENT and unit:
        return {"unit": unit}, {"lead_department": unit}
    return {}, {}


def may(principal: Principal, page: str) -> bool:
    return principal.role in RULES[page].roles


def home(principal: Principal) -> str:
    if principal.role == Role.RESIDENT and principal.case:
        return f"/workbench/cases/{principal.case}"
    if not may(principal, "GET /workbench"):
        return "/signin?refused=1"
    unit = area(principal)[0].get("unit")
    by = {Role.GRID_LEADER: "grid", Role.TOWNSHIP: "community", Role.DEPARTMENT: "department"}.get(principal.role)
    return query("/workbench", unit=unit, by=by)


def page(request: Request, template: str, principal: Principal | None, status_code: int = 200, **context: Any) -> Any:
    nav = []
    if principal is not None:
        unit, filters = area(principal)
        entries = [
            ("board", "督办看板", "GET /workbench", home(principal)),
            ("ledger", "台账", "GET /workbench/ledger", query("/workbench/ledger", **filters)),
            *(
                (f"list-{kind}", title, "GET /workbench/lists/{kind}", query(f"/workbench/lists/{kind}", **filters))
                for kind, title in labels.LISTS.items()
            ),
            ("figures", "三率考评", "GET /workbench/figures", query("/workbench/figures", **unit)),
            ("evaluation", "吹哨报到评价", "GET /workbench/evaluation", "/workbench/evaluation"),
            ("reports", "定期通报", "GET /workbench/reports/{kind}", query("/workbench/reports/monthly", **unit)),
            ("recurring", "每月一题", "GET /workbench/recurring", "/workbench/recurring"),
        ]
        nav = [(key, title, href) for key, title, rule, href in entries if may(principal, rule)]
    context |= {
        "request": request,
        "role_names": {str(k): v for k, v in ROLE_LABELS.items()},
        "principal": principal,
        "role_name": ROLE_LABELS.get(principal.role) if principal else None,
        "csrf": csrf_token(request) if principal else "",
        "nav": nav,
        "query": query,
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)


# --- signing in and out ----------------------------------------------------------------------


@router.get("/")
def root(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/workbench", status_code=303)
    return RedirectResponse("/docs", status_code=307)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, refused: bool = False) -> Any:
    message = "此身份不使用工作台，请换一个令牌登录。" if refused else None
    return _signin(request, message)


def _signin(request: Request, message: str | None, status_code: int = 200) -> Any:
    keys: TokenKeys = request.app.state.token_keys
    actors = [{**a, "name": ROLE_LABELS[a["role"]]} for a in DEV_ACTORS] if keys.dev else []
    nonce, signin_csrf = signin_nonce(request)
    response = page(request, "signin.html", None, status_code, actors=actors, message=message, signin_csrf=signin_csrf)
    remember_nonce(request, response, nonce)
    return response


@router.post("/signin")
def signin(request: Request, form: FormDep) -> Any:
    keys: TokenKeys = request.app.state.token_keys
    if not signin_form_ok(request, form):
        return _signin(request, "登录表单已失效（跨站请求校验未通过）：请重新登录。", 403)
    token = form.get("token", "").strip().removeprefix("Bearer ").strip()
    if form.get("dev") and keys.dev:
        actor = next((a for a in DEV_ACTORS if a["sub"] == form["dev"]), None)
        if actor is None:
            return _signin(request, "没有这个演示身份。", 422)
        grids = None
        if actor["role"] == Role.GRID_LEADER:
            grids = sorted(request.app.state.cases.reference.grid_leaders[actor["sub"]].grids)
        token = keys.issue(actor["role"], actor["sub"], unit=actor.get("unit"), grids=grids)
    if not token:
        return _signin(request, "请粘贴令牌（minqing token issue … 的输出）。", 422)
    try:
        principal = keys.verify(token)
    except TokenError as e:
        return _signin(request, e.message, 401)
    return signed_in(request, token, home(principal))


@router.post("/signout")
def signout(request: Request) -> Response:
    return signed_out(request)


# --- the 13710 board -------------------------------------------------------------------------

Level = Literal["district", "street", "community", "grid", "department"]
Filter = Annotated[str | None, Query(max_length=64)]


class BoardParams:
    def __init__(
        self,
        unit: Filter = None,
        by: Level = "street",
        colour: Literal["red", "yellow", "green"] | None = None,
        handling_type: Filter = None,
        tier: Filter = None,
        status: Filter = None,
        channel: Filter = None,
        at: datetime | None = None,
    ) -> None:
        self.unit, self.by, self.colour, self.at = unit, by, colour, at
        self.filters = {"handling_type": handling_type, "tier": tier, "status": status, "channel": channel}

    def as_query(self, **changes: Any) -> dict[str, Any]:
        at = self.at.isoformat() if self.at else None
        return {"unit": self.unit, "by": self.by, "colour": self.colour, **self.filters, "at": at} | changes


BoardDep = Annotated[BoardParams, Depends()]


def board_of(read: ReadSide, p: BoardParams, area: Area) -> dict[str, Any]:
    result = figures.supervision_board(
        read,
        area,
        unit=p.unit,
        by=p.by,
        colour=p.colour,
        as_of=None,
        yellow_within=None,
        include_closed=False,
        limit=BOARD_LIMIT,
        **p.filters,
        at=p.at,
    )
    today = date.fromisoformat(result["as_of"])
    for case in result["cases"]:
        for checkpoint in case["checkpoints"].values():
            checkpoint["colour"] = _light(checkpoint, today, result["yellow_within_working_days"])
    return result


def _light(checkpoint: dict[str, Any], today: date, within: int) -> str:
    state = checkpoint["state"]
    if state == "overdue":
        return "red"
    if state == "met_late":
        return "yellow"
    if state == "pending" and checkpoint["due"]:
        return "yellow" if working_days_until(today, date.fromisoformat(checkpoint["due"])) <= within else "green"
    return "green" if state == "met_on_time" else "none"


def _trail(read: ReadSide, unit: str | None) -> list[tuple[str, str, str]]:
    """district → street → community → grid down to `unit`: (level, code, name)."""
    reference = read.cases.reference
    if not unit:
        return []
    for units in reference.grids.values():
        levels = [lv for lv in labels.LEVELS if units[lv] == unit]
        if levels:
            depth = labels.LEVELS.index(levels[0]) + 1
            return [(lv, units[lv], units[f"{lv}_name"]) for lv in labels.LEVELS[:depth]]
    if unit in reference.departments:
        return [("department", unit, reference.departments[unit])]
    return [("unit", unit, unit)]


def _board_context(read: ReadSide, p: BoardParams, principal: Principal) -> dict[str, Any]:
    board = board_of(read, p, area_of(principal))
    first = read.views.query("SELECT MIN(registered_at) AS first FROM ledger_cases")[0]["first"]
    scoped = bool(area(principal)[0])
    trail = _trail(read, p.unit)
    if scoped:  # a scoped role's trail starts at its own area
        own = area(principal)[0]["unit"]
        trail = trail[next((i for i, t in enumerate(trail) if t[1] == own), 0) :]
    return {
        "board": board,
        "p": p,
        "next_level": "department" if p.by == "department" else NEXT_LEVEL[p.by],
        "trail": trail,
        "scoped": scoped,
        "first": str(first) if first else None,
        "now": read.cases.clock().isoformat(),
        "reference": read.cases.reference,
        "statuses": {str(s): STATUS_LABELS[s] for s in Status if s != Status.CLOSED},
    }


@router.get("/workbench", response_class=HTMLResponse)
def board_page(request: Request, read: ReadSideDep, p: BoardDep, principal: PrincipalDep) -> Any:
    return page(request, "board.html", principal, active="board", **_board_context(read, p, principal))


@router.get("/workbench/board", response_class=HTMLResponse)
def board_fragment(request: Request, read: ReadSideDep, p: BoardDep, principal: PrincipalDep) -> Any:
    return page(request, "board_fragment.html", principal, **_board_context(read, p, principal))


@router.get("/workbench/live")
async def live(request: Request, unit: Filter = None) -> StreamingResponse:
    """A ping per batch of new events in the area (their position only): the page then refreshes its board."""
    tail: Tail = request.app.state.tail
    await tail.start()
    frames = follow(tail, EventFilter.parse(None, unit, None), tail.head, 15.0)
    return StreamingResponse(
        _pings(frames), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _pings(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in frames:
        ids = re.findall(rb"^id: (\d+)$", chunk, re.MULTILINE)
        if ids:
            yield b"event: changed\nid: %s\ndata: %s\n\n" % (ids[-1], ids[-1])
        else:
            yield chunk  # retry and heartbeat lines


# --- the ledger and the three lists ----------------------------------------------------------


def _ledger_context(request: Request, read: ReadSide, q: LedgerQuery, area: Area) -> dict[str, Any]:
    margin = read.policy().board_yellow_within_working_days
    result = ledger_page(read.views, q, area, today=read.today(), yellow_within=margin)
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    return {
        "result": result,
        "params": params,
        "reference": read.cases.reference,
        "statuses": {str(s): STATUS_LABELS[s] for s in Status},
        "next_page": query(request.url.path, **params, cursor=result["next_cursor"]) if result["next_cursor"] else None,
        "first_page": query(request.url.path, **params) if q.cursor else None,
    }


@router.get("/workbench/ledger", response_class=HTMLResponse)
def ledger_view(request: Request, read: ReadSideDep, q: ledger.LedgerQueryDep, principal: PrincipalDep) -> Any:
    columns: tuple[str, ...] = ("number", "registered_date", "title", "community_name", "grid_name", "status")
    columns += ("handling_type", "assignee_name", "resolve_due")
    context = _ledger_context(request, read, q, area_of(principal))
    return page(request, "ledger.html", principal, active="ledger", title="民情工作台账", columns=columns, **context)


@router.get("/workbench/lists/{kind}", response_class=HTMLResponse)
def list_view(
    request: Request,
    kind: Literal["problems", "responsibilities", "rectifications"],
    read: ReadSideDep,
    q: ledger.LedgerQueryDep,
    principal: PrincipalDep,
) -> Any:
    context = _ledger_context(request, read, q, area_of(principal))
    title = labels.LISTS[kind]
    return page(request, "ledger.html", principal, active=f"list-{kind}", title=title, columns=LISTS[kind], **context)


@router.get("/workbench/ledger/export.{fmt}")
def ledger_download(
    fmt: Literal["csv", "xlsx"], read: ReadSideDep, q: ledger.LedgerQueryDep, area: AreaDep
) -> Response:
    return ledger.ledger_export(fmt, read, q, area)


@router.get("/workbench/lists/{kind}/export.{fmt}")
def list_download(
    kind: Literal["problems", "responsibilities", "rectifications"],
    fmt: Literal["csv", "xlsx"],
    read: ReadSideDep,
    q: ledger.LedgerQueryDep,
    area: AreaDep,
) -> Response:
    return ledger.three_list_export(kind, fmt, read, q, area)


# --- a case ----------------------------------------------------------------------------------


def _case_context(read: ReadSide, cases: Any, case_id: UUID, principal: Principal) -> dict[str, Any]:
    clear = sees_personal_data(principal)
    story = history(cases, case_id, clear=clear)
    case = cases.get_case(case_id)
    shown = present(case, clear=clear, vault=cases.vault)
    row = ledger_page(
        read.views,
        LedgerQuery(filters={"number": case.number}, limit=1),
        area_of(principal),
        today=read.today(),
        yellow_within=read.policy().board_yellow_within_working_days,
    )["items"]
    total = sum(s["seconds"] for s in story["dwell"]["stretches"]) or 1.0
    return {
        "case": shown,
        "story": story,
        "checkpoints": row[0]["checkpoints"] if row else None,
        "light": row[0]["colour"] if row else None,
        "total_seconds": total,
        "commands": forms.available(principal.role, case.status, linked=case.main_case is not None),
        "form_key": uuid4().hex,  # a double click on a form lands once
        "clear": clear,
        "reference": cases.reference,
    }


@router.get("/workbench/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, case_id: UUID, read: ReadSideDep, cases: CasesDep, principal: PrincipalDep, done: str = ""
) -> Any:
    context = _case_context(read, cases, case_id, principal)
    return page(request, "case.html", principal, done=done, problems=[], **context)


def _command_page(command: CaseCommand) -> Any:
    def endpoint(
        request: Request, case_id: UUID, form: FormDep, read: ReadSideDep, cases: CasesDep, principal: PrincipalDep
    ) -> Any:
        problems: list[str] = []
        status_code = 200
        try:
            body = forms.parse(command.body, form)
            version = form.get("version", "")
            headers = CommandHeaders(form.get("idempotency_key") or None, int(version) if version.isdigit() else None)
            fingerprinted = {**body.model_dump(mode="json", exclude={"actor"}), "actor": principal.actor.as_dict()}
            options = headers.options(command.path, case_id, fingerprinted)
            result = cases.act(command, case_id, principal.actor, body.fields(), **options)
        except ValidationError as e:
            problems, status_code = forms.problems(e), 422
        except StaleVersionError as e:
            problems, status_code = [e.message], 412
        except InvalidReferenceError as e:
            problems, status_code = [e.message], 422
        except CaseError as e:
            problems, status_code = [e.message], 403 if isinstance(e, ActorNotAllowedError) else 409
        else:
            return RedirectResponse(
                query(f"/workbench/cases/{case_id}", done=command.label, wait_for=result.position), status_code=303
            )
        context = _case_context(read, cases, case_id, principal)
        return page(request, "case.html", principal, status_code, done="", problems=problems, **context)

    endpoint.__name__ = f"workbench_{command.name}"
    return endpoint


for _command in COMMANDS:
    if getattr(_command.body, "file_body", False):
        continue  # a file upload: web/evidence.py
    router.add_api_route(
        f"/workbench/cases/{{case_id}}/{_command.path}",
        _command_page(_command),
        methods=["POST"],
        response_class=HTMLResponse,
    )


# --- figures and reports ---------------------------------------------------------------------


@router.get("/workbench/figures", response_class=HTMLResponse)
def figures_page(
    request: Request,
    read: ReadSideDep,
    principal: PrincipalDep,
    unit: Filter = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> Any:
    trail = _trail(read, unit)
    level = trail[-1][0] if trail else "district"
    by = "department" if level == "department" else NEXT_LEVEL.get(level, "street")
    if not unit:
        by = "street"
    common: dict[str, Any] = {"unit": unit, "registered_from": None, "registered_to": None}
    area = area_of(principal)
    per_unit = figures.three_rates(read, area, by=by, month=month, **common)
    per_month = figures.three_rates(read, area, by="month", month=None, **common)
    per_month["groups"].sort(key=lambda g: str(g["unit"]))
    return page(
        request,
        "figures.html",
        principal,
        active="figures",
        per_unit=per_unit,
        per_month=per_month,
        unit=unit,
        month=month,
        trail=trail,
        level_label=labels.LEVEL_LABELS.get(by, by),
    )


@router.get("/workbench/evaluation", response_class=HTMLResponse)
def evaluation_page(
    request: Request,
    read: ReadSideDep,
    principal: PrincipalDep,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> Any:
    result = figures.whistle_evaluation(read, area_of(principal), month=month)
    ranking = sorted(
        result["departments"],
        key=lambda d: (-_on_time_rate(d), -d["led_closed"]),
    )
    return page(request, "evaluation.html", principal, active="evaluation", result=result, ranking=ranking)


def _on_time_rate(department: dict[str, Any]) -> float:
    """Of the whistles it had to answer: one it transferred before reporting in is not among them."""
    answerable = department["whistled"] - department["transferred"]
    return department["reported_on_time"] / answerable if answerable > 0 else 0


@router.get("/workbench/reports/{kind}", response_class=HTMLResponse)
def report_page(
    request: Request,
    kind: Literal["monthly", "quarterly", "yearly"],
    read: ReadSideDep,
    principal: PrincipalDep,
    period: Annotated[str | None, Query(max_length=10)] = None,
    unit: Filter = None,
) -> Any:
    today = read.today()
    default = {"monthly": today.strftime("%Y-%m"), "quarterly": f"{today.year}-Q{(today.month - 1) // 3 + 1}"}
    period = period or default.get(kind, str(today.year))
    body = figures.report_of(read, area_of(principal), kind, period, unit)
    return page(request, "report.html", principal, active="reports", kind=kind, report=body, unit=unit, period=period)


@router.get("/workbench/reports/{kind}/export.xlsx")
def report_download(
    kind: Literal["monthly", "quarterly", "yearly"],
    read: ReadSideDep,
    area: AreaDep,
    period: Annotated[str, Query(max_length=10)],
    unit: Filter = None,
) -> Response:
    return figures.periodic_report_export(kind, read, area, period=period, unit=unit)


@router.get("/workbench/recurring", response_class=HTMLResponse)
def recurring_page(
    request: Request,
    read: ReadSideDep,
    principal: PrincipalDep,
    month: Annotated[str | None, Query(max_length=7)] = None,
    level: Literal["street", "community", "grid"] = "community",
    window: Annotated[int, Query(ge=1, le=12)] = 3,
) -> Any:
    """每月一题: the month's most frequent problems and the repeat petitions, from the /recurring query."""
    month = month or read.today().strftime("%Y-%m")
    body = recurring.recurring_problems(read, area_of(principal), RecurringQuery(month, level, window))
    return page(
        request,
        "recurring.html",
        principal,
        active="recurring",
        report=body,
        month=month,
        level=level,
        window=window,
        reference=read.cases.reference,
    )


# --- errors as pages -------------------------------------------------------------------------


def is_page(request: Request) -> bool:
    path = request.url.path
    return path in ("/", "/signin", "/signout") or (
        path.startswith("/workbench") and not path.startswith("/workbench/static")
    )


def principal_or_none(request: Request) -> Principal | None:
    found = getattr(request.state, "principal", None)
    if found is not None:
        return found
    try:
        return session_principal(request)
    except Exception:
        return None


def error_page(request: Request, status_code: int, message: str) -> Any:
    return page(request, "error.html", principal_or_none(request), status_code, message=message)


def install(app: FastAPI) -> None:
    """The pages, their static files, and errors on a page shown as a page (the API's stay JSON)."""
    app.include_router(router)
    app.mount("/workbench/static", StaticFiles(directory=Path(__file__).parent / "static"), name="workbench-static")
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _as_page(handler)
    app.exception_handlers[SignInRequiredError] = _sign_in_first(app.exception_handlers[AuthenticationError])


def _as_page(handler: Callable[..., Any]) -> Callable[..., Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if not is_page(request) or request.url.path == "/workbench/live":
            return response
        try:
            message = orjson.loads(response.body)["error"]["message"]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            message = "请求未能完成。"
        return error_page(request, response.status_code, message)

    return handle


def _sign_in_first(handler: Callable[..., Any]) -> Callable[..., Any]:
    # Async, awaiting the wrapped handler: returned from a sync handler, its coroutine was a 500.
    async def handle(request: Request, exc: Exception) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/signin", status_code=303)
        response = handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    return handle
