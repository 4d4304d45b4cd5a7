"""Exports offices use: CSV (UTF-8 with BOM so Excel opens Chinese correctly)
and .xlsx, with Chinese column headers.

A petition's text is the petitioner's, and a spreadsheet runs a cell that
begins like a formula: every cell goes through `_cell`, so text never opens as
one (OWASP "CSV injection"; docs/security.md, "Exports: formula neutralisation").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

HEADERS = {
    "case_id": "案件标识", "number": "编号", "registered_at": "登记时间", "registered_date": "登记日期",
    "registered_month": "登记月份", "channel": "受理渠道", "category": "诉求类别", "title": "诉求标题",
    "description": "诉求内容", "location": "地点", "district": "区县编码", "district_name": "区县",
    "street": "街道编码", "street_name": "镇（街道）", "community": "社区编码", "community_name": "社区（村）",
    "grid": "网格编码", "grid_name": "网格", "micro_grid": "微网格", "petitioner_name": "诉求人",
    "petitioner_phone": "联系电话", "handling_type": "办理类型", "tier": "分级", "policy_version": "时限政策",
    "status": "状态", "assignee": "网格长工号", "assignee_name": "网格长", "assigned_at": "派单时间",
    "returned_count": "退单次数", "accepted_at": "签收时间", "accepted_date": "签收日期",
    "progress_date": "进展报告日期", "whistle_count": "吹哨次数", "lead_department": "牵头部门",
    "leader": "包案领导工号", "leader_name": "包案领导", "measures": "整改措施", "responsible_unit": "责任单位",
    "responsible_person": "挂牌负责人", "rectification_deadline": "整改时限", "accept_due": "签收时限",
    "progress_due": "进展时限", "resolve_due": "办结时限", "deadlines_provisional": "时限待核（无法定日历）",
    "extended_count": "延期次数", "rectified_at": "整改完成时间", "resolved_date": "办结日期",
    "first_verification_passed": "首次检验通过", "failed_verifications": "检验不通过次数",
    "verified_at": "检验通过时间", "closed_at": "销号时间", "closed_date": "销号日期", "closed_month": "销号月份",
    "suggestion_outcome": "建议办理结果", "feedback_method": "反馈方式", "feedback_at": "反馈时间",
    "rating": "群众评价", "rated_at": "评价时间", "supervision_count": "督办次数", "supervision_due": "督办时限",
    "last_event": "最近事件", "version": "版本", "position": "日志位置", "colour": "督办灯色",
    "item": "项目", "value": "数值", "rank": "名次", "unit": "单位编码", "name": "单位", "received": "受理数",
    "closed": "办结数", "callbacks": "有效回访数", "composite_score": "综合得分",
    "petitioner": "诉求人", "phone": "联系电话",
}  # fmt: skip


# Excel, LibreOffice and Google Sheets read a cell beginning with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _label(column: str) -> str:
    return HEADERS.get(column, column)


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_csv(_label(c)) for c in columns])
    for row in rows:
        writer.writerow([_csv(row.get(c)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(sheets: dict[str, tuple[Sequence[str], Iterable[dict[str, Any]]]]) -> bytes:
    book = Workbook(write_only=True)
    for title, (columns, rows) in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        sheet.append([_xlsx(sheet, _label(c)) for c in columns])
        for row in rows:
            sheet.append([_xlsx(sheet, row.get(c)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> tuple[Any, bool]:
    """The rule for every export: a number stays a number, anything else is
    text; and whether that text would open as a formula."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value, False
    text = str(value)
    return text, text.startswith(FORMULA_STARTS)


def _csv(value: Any) -> Any:
    # CSV has no types: the OWASP remedy, a leading apostrophe, makes it plain text.
    value, formula_like = _cell(value)
    if value is None:
        return ""
    return "'" + value if formula_like else value


def _xlsx(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    # .xlsx has types: text is written as a string, never a formula, and keeps its value;
    # the quote prefix (Excel's own leading apostrophe) keeps it text when someone edits the cell.
    value, formula_like = _cell(value)
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"
    cell.quotePrefix = formula_like
    return cell
