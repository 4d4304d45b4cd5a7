"""Importing a hotline platform's work orders: POST /imports takes the spreadsheet as the raw
body (xlsx or CSV, its type in Content-Type) and answers the row-by-row report (docs/imports.md).

A raw body rather than multipart/form-data: one file per request needs no form, the body is
capped by the input guard before anything parses it, and FastAPI's form parsing would add a
dependency (python-multipart) for nothing the query string cannot say."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request

from api.access import PrincipalDep
from cases.inputs import printable
from commands.errors import InvalidInputError
from commands.imports import Mapping, import_file, mapping_named, mapping_names
from config.settings import Settings

router = APIRouter(prefix="/imports", tags=["imports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ACCEPTED = {XLSX, "text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream"}
SPREADSHEET = {
    "content": {
        XLSX: {"schema": {"type": "string", "format": "binary"}},
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
    },
    "required": True,
    "description": "The platform's export as it is: xlsx, or CSV in UTF-8 or GBK/GB18030"
    " (`text/csv; charset=gbk` names it; without a charset UTF-8 is tried, then GB18030).",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the intake office (intake_clerk) and the operator (admin) may import."},
    413: {"description": "The file is larger than MINQING_MAX_IMPORT_BYTES (20 MiB by default)."},
    422: {"description": "The file or the mapping as a whole is unusable (a missing header, an unknown mapping)."},
}


@router.post(
    "",
    summary="Import a hotline platform's work orders (12345 / 110 非警务): the report of every row",
    responses=ERRORS,
    openapi_extra={"requestBody": SPREADSHEET},
)
async def import_orders(
    request: Request,
    principal: PrincipalDep,
    mapping: Annotated[
        str, Query(min_length=1, max_length=64, description="A mapping's name (GET /imports/mappings).")
    ],
    dry_run: Annotated[bool, Query(description="Check every row and report, write nothing.")] = False,
    filename: Annotated[str | None, Query(max_length=200, description="The file's name, kept in the events.")] = None,
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    media, _, params = (request.headers.get("content-type") or "").partition(";")
    if media.strip().lower() not in ACCEPTED:
        raise InvalidInputError("Content-Type", f"须为 xlsx（{XLSX}）或 CSV（text/csv）")
    charset = next(
        (v.strip().strip('"') for k, _, v in (p.partition("=") for p in params.split(";")) if k.strip() == "charset"),
        None,
    )
    data = await request.body()
    if not data:
        raise InvalidInputError("body", "请上传平台导出的表格文件（xlsx 或 CSV）")
    chosen = mapping_named(settings.import_mappings, mapping)
    cases = request.app.state.cases
    source = filename or f"upload-{mapping}"
    try:
        printable(source)  # the name is kept in the events
    except ValueError as e:
        raise InvalidInputError("filename", str(e)) from None

    def run() -> dict[str, Any]:
        report = import_file(
            cases, principal.actor, data, chosen, source=source, dry_run=dry_run, charset=charset or None
        )
        return report.as_dict()

    # The import is synchronous (eventsourcing and psycopg are): it runs off the event loop.
    return await anyio.to_thread.run_sync(run)


@router.get("/mappings", summary="The column mappings this office keeps, by name")
def list_mappings(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    found: list[dict[str, Any]] = []
    for name in mapping_names(settings.import_mappings):
        mapping: Mapping = mapping_named(settings.import_mappings, name)
        found.append({"name": name, **mapping.describe()})
    return {"mappings": found}
