"""Exports a clerk can hand on: Chinese names for every code, Beijing times as
real Excel date-times, a usable sheet (bold frozen header, filter), Chinese
file names; the same through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from projections.exports import display_row
from tests.api_steps import Driver
from tests.factories import GRID_LEADER, HOUSING, RESIDENT, TOWNSHIP

# The driver's clock: Monday 2026-03-02 01:00 UTC, 09:00 in Beijing.
REGISTERED_IN_BEIJING = datetime(2026, 3, 2, 9, 0)


def _export(driver: Driver, path: str, **params: Any) -> httpx.Response:
    response = driver.client.get(path, params={"wait_for": driver.position, **params})
    assert response.status_code == 200, response.text
    return response


def _sheet_rows(sheet: Worksheet) -> list[dict[str, Any]]:
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]


def _saved_as(response: httpx.Response) -> tuple[str, str]:
    """(the Chinese file name from filename*, the ASCII fallback)."""
    parts = dict(p.strip().split("=", 1) for p in response.headers["content-disposition"].split(";")[1:])
    charset, _, quoted = parts["filename*"].partition("''")
    assert charset == "UTF-8"
    return unquote(quoted), parts["filename"].strip('"')


def _whistled_and_closed(driver: Driver) -> str:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["zhujian"], reason="违建")
    driver.act(case_id, "report-in", HOUSING)
    driver.act(case_id, "consult", TOWNSHIP, outcome="住建牵头", lead_department="zhujian")
    driver.act(case_id, "rectify", GRID_LEADER, summary="已修复")
    driver.act(case_id, "verify", RESIDENT, passed=True)
    driver.act(case_id, "close", GRID_LEADER, summary="销号")
    driver.act(case_id, "feedback", GRID_LEADER, method="hotline_callback", content="回访")
    driver.act(case_id, "rate", RESIDENT, satisfaction="satisfied")
    return case_id


def test_the_ledger_workbook_shows_chinese_names_and_beijing_date_times(driver: Driver) -> None:
    _whistled_and_closed(driver)
    response = _export(driver, "/ledger/export.xlsx")
    book = load_workbook(io.BytesIO(response.content))
    sheet = book["民情工作台账"]
    [row] = _sheet_rows(sheet)
    shown = {header: cell.value for header, cell in row.items()}
    assert shown["受理渠道"] == "服务热线" and shown["诉求类别"] == "房屋质量与维修"
    assert shown["状态"] == "已销号" and shown["群众评价"] == "满意" and shown["反馈方式"] == "热线回访"
    assert shown["办理类型"] == "承诺件" and shown["分级"] == "大事"
    assert shown["牵头部门"] == "区住房和城乡建设局"
    assert shown["首次检验通过"] == "是" and shown["时限待核（无法定日历）"] == "否"
    registered = row["登记时间"]
    assert registered.is_date and registered.value == REGISTERED_IN_BEIJING
    assert registered.number_format == "yyyy-mm-dd hh:mm"
    due = date.fromisoformat(driver.get("/ledger")["items"][0]["resolve_due"])
    assert row["办结时限"].is_date and row["办结时限"].value == datetime(due.year, due.month, due.day)
    assert row["销号时间"].is_date and row["登记日期"].value == datetime(2026, 3, 2)

    header = sheet[1]
    assert all(cell.font.bold for cell in header)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{header[-1].column_letter}2"
    assert sheet.column_dimensions["A"].width >= 8 and sheet.column_dimensions[registered.column_letter].width >= 16
    assert [c.value for c in book["责任清单"][2]][-1] == "已销号"
    assert _saved_as(response) == ("民情工作台账_20260302.xlsx", "ledger.xlsx")


def test_the_csv_export_shows_the_same_chinese_values_and_beijing_time_as_text(driver: Driver) -> None:
    _whistled_and_closed(driver)
    response = _export(driver, "/ledger/export.csv")
    assert response.content.startswith("\ufeff".encode())
    header, values = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    row = dict(zip(header, values, strict=True))
    assert (row["受理渠道"], row["状态"], row["群众评价"], row["牵头部门"]) == (
        "服务热线",
        "已销号",
        "满意",
        "区住房和城乡建设局",
    )
    assert row["首次检验通过"] == "是" and row["分级"] == "大事"
    assert row["登记时间"] == "2026-03-02T09:00:00+08:00"
    assert row["办结时限"] == driver.get("/ledger")["items"][0]["resolve_due"]
    assert _saved_as(response) == ("民情工作台账_20260302.csv", "ledger.csv")
    listed = _export(driver, "/lists/problems/export.csv")
    assert _saved_as(listed) == ("问题清单_20260302.csv", "problems.csv")
    assert "已销号" in listed.content.decode("utf-8-sig") and "closed" not in listed.content.decode("utf-8-sig")


def test_the_quarterly_notice_names_statuses_in_chinese(driver: Driver) -> None:
    driver.closed()
    driver.accepted()
    response = _export(driver, "/reports/quarterly/export.xlsx", period="2026-Q1")
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["概况", "排名", "按渠道", "按类别", "公示"]
    notice = [{k: c.value for k, c in r.items()} for r in _sheet_rows(book["公示"])]
    assert sorted(r["状态"] for r in notice) == ["办理中", "已销号"]
    assert {r["诉求人"] for r in notice} == {"张**"} and "满意" in {r["群众评价"] for r in notice}
    assert _saved_as(response) == ("福州市马尾区2026年第1季度民情诉求办理公示.xlsx", "quarterly-2026-Q1.xlsx")


def test_the_yearly_report_export_has_the_breakdowns_of_its_json(driver: Driver) -> None:
    driver.closed()
    driver.register(channel="online", category="noise")
    yearly = driver.get("/reports/yearly", period="2026")
    book = load_workbook(io.BytesIO(_export(driver, "/reports/yearly/export.xlsx", period="2026").content))
    assert book.sheetnames == ["概况", "排名", "按月", "按渠道", "按类别"]
    summary = {r["项目"].value: r["数值"].value for r in _sheet_rows(book["概况"])}
    assert summary["受理数"] == yearly["figures"]["received"] == 2 and summary["办结数"] == 1
    assert summary["满意率（%）"] == round(100 * yearly["rates"]["satisfaction_rate"], 2)
    months = [{k: c.value for k, c in r.items()} for r in _sheet_rows(book["按月"])]
    assert [(m["月份"], m["受理数"]) for m in months] == [
        (g["unit"], g["counts"]["received"]) for g in yearly["by_month"]
    ]
    channels = {r["受理渠道"].value: r["受理数"].value for r in _sheet_rows(book["按渠道"])}
    assert channels == {"服务热线": yearly["by_channel"]["hotline"], "网络平台": yearly["by_channel"]["online"]}
    categories = {r["诉求类别"].value: r["受理数"].value for r in _sheet_rows(book["按类别"])}
    assert categories == {"房屋质量与维修": 1, "噪声扰民": 1}
    ranking = _sheet_rows(book["排名"])
    assert ranking[0]["单位"].value == "罗星街道"


def test_a_row_is_displayed_with_names_beijing_times_and_days() -> None:
    names = {"status": {"closed": "已销号"}}
    shown = display_row(("status", "registered_at", "resolve_due", "title"), {
        "status": "closed", "registered_at": "2026-03-02T01:00:00+00:00", "resolve_due": "2026-03-18", "title": None,
    }, names)  # fmt: skip
    assert shown == ["已销号", REGISTERED_IN_BEIJING, date(2026, 3, 18), None]
