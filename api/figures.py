"""Supervision figures: the 13710 board, the three rates, the whistle
evaluation and the periodic reports."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.access import AreaDep
from api.ledger import XLSX, _file
from api.read_dependencies import ReadSideDep
from cases.clock import in_china
from commands.errors import InvalidInputError
from projections.area import Area
from projections.board import board
from projections.evaluation import department_evaluation
from projections.exports import report_sheets, to_xlsx
from projections.reports import report
from projections.scores import GROUPS, ScoresQuery, scores_of
from replay.board_at import board_at

router = APIRouter(tags=["supervision"])

Unit = Annotated[
    str | None, Query(max_length=64, description="A district, street, community, grid or department code.")
]


@router.get("/board", summary="13710 supervision board: checkpoints and colours, judged at query time")
def supervision_board(
    read: ReadSideDep,
    area: AreaDep,
    unit: Unit = None,
    by: Literal["district", "street", "community", "grid", "department"] = "street",
    colour: Literal["red", "yellow", "green"] | None = None,
    as_of: Annotated[date | None, Query(description="Judge deadlines as of this day (default: today).")] = None,
    yellow_within: Annotated[int | None, Query(ge=0, le=30, description="Working days; default from policy.")] = None,
    include_closed: bool = False,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    handling_type: Annotated[str | None, Query(max_length=64)] = None,
    tier: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    at: Annotated[
        datetime | None,
        Query(
            description="The board as it stood at this past moment (no zone: China time), from the board "
            "states the ledger keeps; with include_closed, rebuilt from the events up to then (slower)."
        ),
    ] = None,
) -> dict[str, Any]:
    given = {"handling_type": handling_type, "tier": tier, "status": status, "channel": channel}
    filters = {k: v for k, v in given.items() if v is not None}
    if at is not None:
        if as_of is not None:
            raise InvalidInputError("at", "at 与 as_of 只能指定其一")
        moment = in_china(at)
        if moment > read.cases.clock():
            raise InvalidInputError("at", "at 须为过去的时刻；查看未来某日的预警请用 as_of")
        options: dict[str, Any] = {"unit": unit, "by": by, "colour_filter": colour, "include_closed": include_closed}
        options |= {"limit": limit, "filters": filters}
        return board_at(read.cases, read.views, moment, area, yellow_within=yellow_within, **options)
    today = as_of or read.today()
    margin = yellow_within if yellow_within is not None else read.policy(today).board_yellow_within_working_days
    return board(
        read.views,
        area,
        today=today,
        yellow_within=margin,
        unit=unit,
        by=by,
        colour_filter=colour,
        include_closed=include_closed,
        limit=limit,
        filters=filters,
    )


@router.get("/scores", summary="Three rates (响应率/解决率/满意率) and the composite score, with their counts")
def three_rates(
    read: ReadSideDep,
    area: AreaDep,
    by: Literal[tuple(GROUPS)] = "street",  # type: ignore[valid-type]
    unit: Unit = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    registered_from: date | None = None,
    registered_to: date | None = None,
) -> dict[str, Any]:
    query = ScoresQuery(by, unit, month, registered_from, registered_to)
    return scores_of(read.views, read.policy(), area, query)


@router.get("/departments/evaluation", summary="Whistle evaluation (吹哨报到评价) per department")
def whistle_evaluation(
    read: ReadSideDep, area: AreaDep, month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None
) -> dict[str, Any]:
    return department_evaluation(
        read.views,
        read.cases.reference.departments,
        area,
        report_in_within_hours=read.policy().report_in_within_hours,
        month=month,
    )


def report_of(read: Any, area: Area, kind: str, period: str, unit: str | None, **page: Any) -> dict[str, Any]:
    """The report; without a page, every case of a quarterly notice (the printed notice, the export)."""
    return report(
        read.views,
        read.cases.reference,
        read.policy(),
        area,
        kind=kind,
        period=period,
        unit=unit,
        today=read.today(),
        **page,
    )


Period = Annotated[str, Query(max_length=10, description="2026-03 (monthly), 2026-Q1 (quarterly) or 2026 (yearly).")]
Kind = Literal["monthly", "quarterly", "yearly"]


@router.get("/reports/{kind}", summary="Monthly bulletin, quarterly public notice (masked) or yearly summary")
def periodic_report(
    kind: Kind,
    read: ReadSideDep,
    area: AreaDep,
    period: Period,
    unit: Unit = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Quarterly: how many of the notice's cases (by number) to list.")
    ] = 200,
    after: Annotated[
        str | None, Query(max_length=64, description="Quarterly: list the cases after this number (`cases_next`).")
    ] = None,
) -> dict[str, Any]:
    """The quarterly notice's `cases` come a page at a time (`cases_total`, `cases_next`); the workbench's
    printed notice and the .xlsx export list them all."""
    return report_of(read, area, kind, period, unit, cases_limit=limit, cases_after=after)


@router.get("/reports/{kind}/export.xlsx", summary="A periodic report as .xlsx")
def periodic_report_export(kind: Kind, read: ReadSideDep, area: AreaDep, period: Period, unit: Unit = None) -> Response:
    body = report_of(read, area, kind, period, unit)
    content = to_xlsx(report_sheets(body), read.cases.reference)
    return _file(content, XLSX, f"{body['title']}.xlsx", f"{kind}-{body['period']}.xlsx")
