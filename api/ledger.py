"""The ledger (民情工作台账) and the three lists, as JSON, CSV and .xlsx."""

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.access import AreaDep
from api.read_dependencies import ReadSideDep
from projections import geojson
from projections.exports import to_csv, to_xlsx
from projections.ledger import CASE_COLUMNS
from projections.ledger_query import LISTS, LedgerQuery, ledger_page, ledger_rows, parse_bbox

router = APIRouter(tags=["ledger"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
LIST_TITLES = {"problems": "问题清单", "responsibilities": "责任清单", "rectifications": "整改清单"}
EXPORT_COLUMNS = tuple(
    c
    for c in CASE_COLUMNS
    if c not in ("case_id", "position", "version", "last_event", "petitioner_id", "next_due", "main_case")
)


Filter = Annotated[str | None, Query(max_length=64)]


def ledger_query(
    number: Filter = None,
    status: Filter = None,
    handling_type: Filter = None,
    tier: Filter = None,
    channel: Filter = None,
    category: Filter = None,
    district: Filter = None,
    street: Filter = None,
    community: Filter = None,
    grid: Filter = None,
    assignee: Filter = None,
    responsible_unit: Filter = None,
    lead_department: Filter = None,
    feedback_method: Filter = None,
    rating: Filter = None,
    external_id: Annotated[str | None, Query(max_length=64, description="A hotline platform's order number.")] = None,
    external_platform: Annotated[str | None, Query(max_length=64, description="12345, 110, …")] = None,
    main_number: Annotated[str | None, Query(max_length=64, description="The duplicates of this main case.")] = None,
    registered_from: date | None = None,
    registered_to: date | None = None,
    overdue: bool | None = Query(None, description="Open past the resolve limit, judged at query time."),
    q: Annotated[str | None, Query(max_length=100, description="Text in title, description or location.")] = None,
    sort: Literal["registered_at", "number", "resolve_due", "closed_at", "status"] = "registered_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    bbox: Annotated[
        str | None,
        Query(
            max_length=120,
            description="Only cases whose point lies in this box: west,south,east,north in WGS-84 degrees"
            " (min longitude, min latitude, max longitude, max latitude).",
        ),
    ] = None,
) -> LedgerQuery:
    given = {
        "number": number, "status": status, "handling_type": handling_type, "tier": tier, "channel": channel,
        "category": category, "district": district, "street": street, "community": community, "grid": grid,
        "assignee": assignee, "responsible_unit": responsible_unit, "lead_department": lead_department,
        "feedback_method": feedback_method, "rating": rating, "main_number": main_number,
        "external_id": external_id, "external_platform": external_platform,
    }  # fmt: skip
    return LedgerQuery(
        filters={k: v for k, v in given.items() if v is not None},
        registered_from=registered_from,
        registered_to=registered_to,
        overdue=overdue,
        q=q,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        cursor=cursor,
        bbox=parse_bbox(bbox),
    )


LedgerQueryDep = Annotated[LedgerQuery, Depends(ledger_query)]


@router.get("/ledger", summary="The ledger: filter, sort, search and page through every case")
def ledger(read: ReadSideDep, query: LedgerQueryDep, area: AreaDep) -> dict[str, Any]:
    today = read.today()
    margin = read.policy().board_yellow_within_working_days
    return ledger_page(read.views, query, area, today=today, yellow_within=margin)


@router.get(
    "/ledger/export.{fmt}",
    summary="The ledger (all matching rows) as CSV or .xlsx with Chinese headers, or as GeoJSON for a GIS",
)
def ledger_export(
    fmt: Literal["csv", "xlsx", "geojson"], read: ReadSideDep, query: LedgerQueryDep, area: AreaDep
) -> Response:
    rows = ledger_rows(read.views, query, area, today=read.today())
    if fmt == "geojson":
        collection = geojson.feature_collection(rows, EXPORT_COLUMNS, read.cases.reference)
        content = geojson.encode(collection)
        return _file(content, geojson.MEDIA_TYPE, _dated("民情工作台账", read, fmt), "ledger.geojson")
    if fmt == "csv":
        content = to_csv(EXPORT_COLUMNS, rows, read.cases.reference)
        return _file(content, CSV, _dated("民情工作台账", read, fmt), "ledger.csv")
    sheets = {"民情工作台账": (EXPORT_COLUMNS, rows)}
    sheets |= {LIST_TITLES[k]: (LISTS[k], rows) for k in LISTS}
    return _file(to_xlsx(sheets, read.cases.reference), XLSX, _dated("民情工作台账", read, fmt), "ledger.xlsx")


@router.get("/lists/{kind}", summary="One of the three lists (问题 / 责任 / 整改清单)")
def three_list(
    kind: Literal["problems", "responsibilities", "rectifications"],
    read: ReadSideDep,
    query: LedgerQueryDep,
    area: AreaDep,
) -> dict[str, Any]:
    page = ledger_page(
        read.views, query, area, today=read.today(), yellow_within=read.policy().board_yellow_within_working_days
    )
    columns = LISTS[kind]
    return {
        "kind": kind,
        "title": LIST_TITLES[kind],
        "total": page["total"],
        "total_exact": page["total_exact"],
        "items": [{c: item[c] for c in ("case_id", *columns)} for item in page["items"]],
        "next_cursor": page["next_cursor"],
    }


@router.get("/lists/{kind}/export.{fmt}", summary="One of the three lists as CSV or .xlsx")
def three_list_export(
    kind: Literal["problems", "responsibilities", "rectifications"],
    fmt: Literal["csv", "xlsx"],
    read: ReadSideDep,
    query: LedgerQueryDep,
    area: AreaDep,
) -> Response:
    rows = ledger_rows(read.views, query, area, today=read.today())
    if fmt == "csv":
        content = to_csv(LISTS[kind], rows, read.cases.reference)
        return _file(content, CSV, _dated(LIST_TITLES[kind], read, fmt), f"{kind}.csv")
    content = to_xlsx({LIST_TITLES[kind]: (LISTS[kind], rows)}, read.cases.reference)
    return _file(content, XLSX, _dated(LIST_TITLES[kind], read, fmt), f"{kind}.xlsx")


def _dated(title: str, read: Any, extension: str) -> str:
    return f"{title}_{read.today():%Y%m%d}.{extension}"


def _file(content: bytes, media_type: str, filename: str, ascii_filename: str) -> Response:
    """Saved under its Chinese name (RFC 6266 `filename*`); `filename` for clients that know only ASCII."""
    disposition = f"attachment; filename=\"{ascii_filename}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})
