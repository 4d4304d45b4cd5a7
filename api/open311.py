"""Open311 GeoReport v2 under /open311/v2, JSON and XML, so that existing
Open311 clients can submit and track petitions. Errors keep GeoReport's shape
and codes (400 bad request, 403 bad api_key, 404 unknown), not ours."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl
from uuid import UUID

import anyio
from fastapi import APIRouter, Path, Request, Response
from pydantic import ValidationError

from api.schemas import RegisterIn
from cases.actor import Actor
from cases.vocabulary import Role
from commands.cases import Cases
from commands.errors import CaseNotFoundError, InvalidInputError
from config.settings import Open311Key
from open311 import media
from open311.georeport import (
    DEFAULT_DAYS,
    MAX_RESULTS,
    SUBMITTED_NOTICE,
    Open311Error,
    definition,
    iso,
    registration,
    render,
    request_of_case,
    request_of_row,
    services,
)
from projections.service_requests import ServiceRequestQuery, service_requests
from replay.records import resolve_case

router = APIRouter(prefix="/open311/v2", tags=["open311"])

Format = Annotated[str, Path(pattern="^(json|xml)$", description="json or xml")]
MAX_FORM_BYTES = 64 * 1024
# The changeset of reference data that does not say when it changed (ReferenceData.load always does).
STARTED = datetime.now(UTC).replace(microsecond=0)
# Clerk id recorded on cases that arrive through Open311.
OPEN311_CLERK = "OPEN311"


def _answer(kind: str, payload: Any, fmt: str, status: int = 200) -> Response:
    body, media_type = render(kind, payload, fmt)
    return Response(body, status_code=status, media_type=media_type)


def error_response(request: Request, exc: Open311Error) -> Response:
    fmt = "xml" if request.url.path.endswith(".xml") else "json"
    return _answer("errors", [{"code": exc.status, "description": exc.description}], fmt, exc.status)


def _cases(request: Request) -> Cases:
    return request.app.state.cases


@router.get("/discovery.{fmt}", summary="Service discovery")
def discovery(request: Request, fmt: Format) -> Response:
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    # The spec's changeset is a date-time: when the service list (our reference data) last changed.
    reference = _cases(request).reference
    changeset = iso(reference.changed_at or STARTED)
    return _answer(
        "discovery",
        {
            "changeset": changeset,
            "contact": "民情 Minqing",
            "key_service": "向区民情办申请 api_key",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": base,
                    "changeset": changeset,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
        fmt,
    )


@router.get("/services.{fmt}", summary="Service list: our petition categories")
def service_list(request: Request, fmt: Format) -> Response:
    return _answer("services", services(_cases(request).reference), fmt)


@router.get("/services/{service_code}.{fmt}", summary="Service definition: the attributes a request needs")
def service_definition(request: Request, service_code: Annotated[str, Path(max_length=64)], fmt: Format) -> Response:
    return _answer("service_definition", definition(_cases(request).reference, service_code), fmt)


@router.post("/requests.{fmt}", summary="Submit a service request (form-encoded, with api_key): registers a petition")
async def submit(request: Request, fmt: Format) -> Response:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Open311Error(400, "请求须为 application/x-www-form-urlencoded 表单")
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise Open311Error(400, f"表单超过 {MAX_FORM_BYTES // 1024} KiB")
    try:
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise Open311Error(400, "表单须为 UTF-8 编码") from None
    cases = _cases(request)
    channel = _key(request, form.get("api_key", "")).channel
    fields = registration(form, cases.reference, channel)
    try:
        media_url = media.checked_url(form)
    except ValueError as e:
        raise Open311Error(400, str(e)) from None
    try:
        body = RegisterIn.model_validate({"actor": {"id": OPEN311_CLERK, "role": "intake_clerk"}, **fields})
    except ValidationError as e:
        reasons = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise Open311Error(400, reasons) from None
    try:
        # The application is synchronous; run it off the event loop like the def routes are.
        result = await anyio.to_thread.run_sync(
            lambda: cases.register(Actor(OPEN311_CLERK, Role.INTAKE_CLERK), **body.fields())
        )
    except InvalidInputError as e:
        raise Open311Error(400, f"{e.field}: {e.reason}") from None
    if media_url:
        settings = request.app.state.settings
        await anyio.to_thread.run_sync(
            lambda: media.attach_media(
                request.app.state.evidence,
                UUID(result.case_id),
                Actor(OPEN311_CLERK, Role.INTAKE_CLERK),
                media_url,
                hosts=settings.media_fetch_hosts,
                timeout=settings.media_fetch_timeout,
            )
        )
    # The spec's answer: the id, what happens next, and the submitter's own account id as sent.
    answer = {
        "service_request_id": result.number,
        "service_notice": SUBMITTED_NOTICE,
        "account_id": body.petitioner_account_id,
    }
    return _answer("requests", [answer], fmt)


@router.get(
    "/requests.{fmt}",
    summary="Service requests, filtered (from the ledger: may lag a command by milliseconds); "
    "without api_key only the public notice's fields",
)
def request_list(request: Request, fmt: Format) -> Response:
    full = _may_read_all(request)
    params = request.query_params
    numbers: list[str] = []
    if ids := params.get("service_request_id"):
        numbers = [n.strip() for n in ids.split(",") if n.strip()][:MAX_RESULTS]
    is_open: bool | None = None
    if status := params.get("status"):
        wanted = {s.strip() for s in status.split(",")}
        if not wanted <= {"open", "closed"}:
            raise Open311Error(400, "status: 只能是 open 或 closed")
        is_open = None if wanted == {"open", "closed"} else wanted == {"open"}
    end = _moment("end_date", params.get("end_date"))
    start = _moment("start_date", params.get("start_date"))
    if not numbers and start is None:
        # The spec's default window: the last 90 days (or up to end_date).
        try:
            start = (end or _cases(request).clock()) - timedelta(days=DEFAULT_DAYS)
        except OverflowError:
            raise Open311Error(400, "end_date: 超出可表示的日期范围") from None
    query = ServiceRequestQuery(numbers, params.get("service_code") or None, is_open, start, end, MAX_RESULTS)
    rows = service_requests(request.app.state.read_side.views, query)
    reference = _cases(request).reference
    answers = [request_of_row(row, reference, full=full) for row in rows]
    return _answer("requests", media.absolute(answers, str(request.base_url)), fmt)


@router.get(
    "/requests/{request_id}.{fmt}",
    summary="One service request by its id (the case number), current; without api_key only the public notice's fields",
)
def request_one(request: Request, request_id: Annotated[str, Path(max_length=64)], fmt: Format) -> Response:
    full = _may_read_all(request)
    cases = _cases(request)
    try:
        case = cases.get_case(resolve_case(cases, request_id))
    except CaseNotFoundError:
        raise Open311Error(404, f"service_request_id {request_id} 不存在") from None
    answers = [request_of_case(case, cases.reference, full=full)]
    return _answer("requests", media.absolute(answers, str(request.base_url)), fmt)


def _key(request: Request, api_key: str) -> Open311Key:
    keys: dict[str, Open311Key] = request.app.state.open311_keys
    for key, grant in keys.items():
        if api_key and hmac.compare_digest(key.encode(), api_key.encode()):
            return grant
    raise Open311Error(403, "api_key 无效")


def _may_read_all(request: Request) -> bool:
    """Anyone reads what the public notice shows; every field needs a key that may read.
    A key that is sent must be valid, so a mistyped one is told, not quietly masked."""
    api_key = request.query_params.get("api_key")
    if api_key is None:
        return False
    if not _key(request, api_key).read:
        raise Open311Error(
            403, "此 api_key 只可提交诉求，不可读取诉求详情；不带 api_key 可读公示字段，或向区民情办申请读取权限"
        )
    return True


def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: 须为 W3C 日期时间，如 2026-03-02T09:00:00+08:00") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name}: 须带时区（Z 或 +08:00）")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Open311Error(400, f"{name}: 超出可表示的日期范围") from None
