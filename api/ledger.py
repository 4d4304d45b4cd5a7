"""The ledger (民情工作台账) and the three lists, as JSON, CSV and .xlsx."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.read_dependencies import ReadSideDep
from projections.exports import to_csv, to_xlsx
from projections.ledger import CASE_COLUMNS
from projections.ledger_query import LISTS, LedgerQuery, ledger_page, ledger_rows

router = APIRouter(tags=["ledger"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIST_TITLES = {"problems": "问题清单", "responsibilities": "责任清单", "rectifications": "整改清单"}
EXPORT_COLUMNS = tuple(
    c for c in CASE_COLUMNS if c not in ("case_id", "position", "version", "last_event", "petitioner_id", "next_due")
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
    registered_from: date | None = None,
    registered_to: date | None = None,
    overdue: bool | None = Query(None, description="Open past the resolve limit, judged at query time."),
    q: Annotated[str | None, Query(max_length=100, description="Text in title, description or location.")] = None,
    sort: Literal["registered_at", "number", "resolve_due", "closed_at", "status"] = "registered_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> LedgerQuery:
    given = {
        "number": number, "status": status, "handling_type": handling_type, "tier": tier, "channel": channel,
        "category": category, "district": district, "street": street, "community": community, "grid": grid,
        "assignee": assignee, "responsible_unit": responsible_unit, "lead_department": lead_department,
        "feedback_method": feedback_method, "rating": rating,
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
    )


LedgerQueryDep = Annotated[LedgerQuery, Depends(ledger_query)]


@router.get("/ledger", summary="The ledger: filter, sort, search and page through every case")
def ledger(read: ReadSideDep, query: LedgerQueryDep) -> dict[str, Any]:
    today = read.today()
    return ledger_page(read.views, query, today=today, yellow_within=read.policy().board_yellow_within_working_days)


@router.get("/ledger/export.{fmt}", summary="The ledger (all matching rows) as CSV or .xlsx with Chinese headers")
def ledger_export(fmt: Literal["csv", "xlsx"], read: ReadSideDep, query: LedgerQueryDep) -> Response:
    rows = ledger_rows(read.views, query, today=read.today())
    if fmt == "csv":
        return _file(to_csv(EXPORT_COLUMNS, rows), "text/csv; charset=utf-8", "ledger.csv")
    sheets = {"民情工作台账": (EXPORT_COLUMNS, rows)}
    sheets |= {LIST_TITLES[k]: (LISTS[k], rows) for k in LISTS}
    return _file(to_xlsx(sheets), XLSX, "ledger.xlsx")


@router.get("/lists/{kind}", summary="One of the three lists (问题 / 责任 / 整改清单)")
def three_list(
    kind: Literal["problems", "responsibilities", "rectifications"], read: ReadSideDep, query: LedgerQueryDep
) -> dict[str, Any]:
    page = ledger_page(
        read.views, query, today=read.today(), yellow_within=read.policy().board_yellow_within_working_days
    )
    columns = LISTS[kind]
    return {
        "kind": kind,
        "title": LIST_TITLES[kind],
        "total": page["total"],
        "items": [{c: item[c] for c in ("case_id", *columns)} for item in page["items"]],
        "next_cursor": page["next_cursor"],
    }


@router.get("/lists/{kind}/export.{fmt}", summary="One of the three lists as CSV or .xlsx")
def three_list_export(
    kind: Literal["problems", "responsibilities", "rectifications"],
    fmt: Literal["csv", "xlsx"],
    read: ReadSideDep,
    query: LedgerQueryDep,
) -> Response:
    rows = ledger_rows(read.views, query, today=read.today())
    if fmt == "csv":
        return _file(to_csv(LISTS[kind], rows), "text/csv; charset=utf-8", f"{kind}.csv")
    return _file(to_xlsx({LIST_TITLES[kind]: (LISTS[kind], rows)}), XLSX, f"{kind}.xlsx")


def _file(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
