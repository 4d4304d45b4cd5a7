"""Exports offices use and hand on: CSV (UTF-8 with BOM so Excel opens
Chinese correctly) and .xlsx. Chinese headers and Chinese names for every
code (channel, status, department, …), times in Beijing time: real date-time
cells in .xlsx, ISO text with +08:00 in CSV.

A petition's text is the petitioner's, and a spreadsheet runs a cell that
begins like a formula: every text cell goes through `_formula_like`, so text
never opens as one (OWASP "CSV injection"; docs/security.md, "Exports: formula
neutralisation").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from cases.clock import CHINA
from cases.vocabulary import (
    FEEDBACK_METHOD_LABELS,
    HANDLING_TYPE_LABELS,
    SATISFACTION_LABELS,
    STATUS_LABELS,
    SUGGESTION_OUTCOME_LABELS,
    TIER_LABELS,
)
from reference.model import ReferenceData

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
    "attachment_count": "附件数",
    "last_event": "最近事件", "version": "版本", "position": "日志位置", "colour": "督办灯色",
    "item": "项目", "value": "数值", "rank": "名次", "unit": "单位编码", "name": "单位", "received": "受理数",
    "closed": "办结数", "callbacks": "有效回访数", "composite_score": "综合得分",
    "petitioner": "诉求人", "phone": "联系电话",
    "latitude": "纬度（WGS-84）", "longitude": "经度（WGS-84）", "media_url": "图片链接",
    "month": "月份", "dispatched": "派单数", "responded": "按时签收数", "resolved": "解决数",
    "satisfied": "满意数", "basically_satisfied": "基本满意数", "dissatisfied": "不满意数",
    "response_rate": "响应率（%）", "resolution_rate": "解决率（%）", "satisfaction_rate": "满意率（%）",
    # second handling, transfers and approvals (issue 17)
    "reopened_count": "重办次数", "reopened_at": "最近重办时间", "follow_up_at": "回访时间",
    "follow_up_resolved": "回访问题已解决", "reassigned_count": "改派次数", "transferred_count": "转办次数",
    "pending_requests": "待审批申请数", "approved_requests": "批准申请数", "refused_requests": "驳回申请数",
    "reopened": "重办件数", "reopens": "重办次数",
    "external_platform": "来源平台", "external_id": "平台工单号", "received_at": "平台登记时间",
    "main_case": "主件标识", "main_number": "并入主件编号", "linked_at": "并案时间", "duplicate_count": "重复件数",
    "problems": "问题数", "duplicates": "重复件数", "problem_callbacks": "主件有效回访数",
}  # fmt: skip

# Periodic reports: the summary sheet's items (docs/read-models.md).
REPORT_ITEMS = {
    "received": "受理数", "problems": "问题数（重复件并入主件计一件）", "duplicates": "重复件数",
    "closed": "办结数", "closed_on_time": "按期办结数", "open_at_end": "期末未办结数",
    "overdue_at_end": "期末超期未办结数", "whistled": "吹哨件数", "supervised": "督办件数", "reopened": "重办件数",
    "response_rate": "响应率（%）", "resolution_rate": "解决率（%）", "satisfaction_rate": "满意率（%）",
    "composite_score": "综合得分",
}  # fmt: skip
RATES = ("response_rate", "resolution_rate", "satisfaction_rate")

MOMENTS = frozenset(
    {"registered_at", "assigned_at", "accepted_at", "rectified_at", "verified_at", "closed_at", "feedback_at",
     "rated_at", "reopened_at", "follow_up_at", "received_at", "linked_at"}
)  # fmt: skip
DAYS = frozenset(
    {"registered_date", "accepted_date", "progress_date", "resolved_date", "closed_date", "accept_due",
     "progress_due", "resolve_due", "rectification_deadline", "supervision_due"}
)  # fmt: skip
MOMENT_FORMAT, DAY_FORMAT = "yyyy-mm-dd hh:mm", "yyyy-mm-dd"
BOLD = Font(bold=True)
YES_NO = {"yes": "是", "no": "否"}

# Excel, LibreOffice and Google Sheets read a cell beginning with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Names = dict[str, Mapping[Any, str]]  # code -> name; the vocabulary's codes are StrEnum members
Sheet = tuple[Sequence[str], Iterable[dict[str, Any]]]


def _label(column: str) -> str:
    return HEADERS.get(column, column)


def code_names(reference: ReferenceData) -> Names:
    """Column -> code -> the Chinese name a clerk reads, from the reference data and the vocabulary."""
    return {
        "channel": reference.channels,
        "category": reference.categories,
        "lead_department": reference.departments,
        "responsible_unit": reference.departments,  # free text mostly; a department's code is named
        "status": STATUS_LABELS,
        "handling_type": HANDLING_TYPE_LABELS,
        "tier": TIER_LABELS,
        "rating": SATISFACTION_LABELS,
        "feedback_method": FEEDBACK_METHOD_LABELS,
        "suggestion_outcome": SUGGESTION_OUTCOME_LABELS,
        "deadlines_provisional": YES_NO,
        "first_verification_passed": YES_NO,
        "follow_up_resolved": YES_NO,
        "item": REPORT_ITEMS,
    }


def display_row(columns: Sequence[str], row: dict[str, Any], names: Names) -> list[Any]:
    """What a clerk sees in each column: Chinese names, Beijing date-times, days, percentages."""
    return [_display(c, row.get(c), names) for c in columns]


def _display(column: str, value: Any, names: Names) -> Any:
    if value is None or value == "":
        return None
    try:
        if column in MOMENTS and isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return moment.astimezone(CHINA).replace(tzinfo=None, microsecond=0) if moment.tzinfo else moment
        if column in DAYS and isinstance(value, str):
            return date.fromisoformat(value)
    except ValueError:
        return value  # not a time after all: shown as it is
    if column in RATES and isinstance(value, float):
        return round(100 * value, 2)
    if column in names and isinstance(value, str):
        return names[column].get(value, value)
    return value


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]], reference: ReferenceData) -> bytes:
    names = code_names(reference)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_label(c) for c in columns])
    for row in rows:
        writer.writerow([_csv(_text(v)) for v in display_row(columns, row, names)])
    return ("\ufeff" + out.getvalue()).encode()


def _formula_like(value: Any) -> bool:
    """The rule for every export: text that a spreadsheet would run as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def _csv(value: Any) -> Any:
    # CSV has no types: the OWASP remedy, a leading apostrophe, makes it plain text.
    return "'" + value if _formula_like(value) else value


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.replace(tzinfo=CHINA).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_xlsx(sheets: Mapping[str, Sheet], reference: ReferenceData) -> bytes:
    names = code_names(reference)
    book = Workbook(write_only=True)
    for title, (columns, rows) in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        shown = [display_row(columns, row, names) for row in rows]
        headers = [_label(c) for c in columns]
        for i, header in enumerate(headers):
            widest = max([_width(header), *(_width(values[i]) for values in shown[:1000])])
            sheet.column_dimensions[get_column_letter(i + 1)].width = min(widest, 60) + 2
        sheet.freeze_panes = "A2"
        if columns:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(shown) + 1}"
        sheet.append([_cell(sheet, h, bold=True) for h in headers])
        for values in shown:
            sheet.append([_cell(sheet, v) for v in values])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(sheet: Any, value: Any, *, bold: bool = False) -> Any:
    if value is not None and not isinstance(value, (int, float, str, date)):
        value = str(value)
    formula_like = _formula_like(value)
    if not bold and not formula_like and not isinstance(value, date):
        return value  # a plain value: openpyxl writes it as it is, faster than a styled cell
    cell = WriteOnlyCell(sheet, value=value)
    if formula_like:
        # .xlsx has types: written as a string, never a formula, keeping its value; the quote
        # prefix (Excel's own leading apostrophe) keeps it text when someone edits the cell.
        cell.data_type = "s"
        cell.quotePrefix = True
    if bold:
        cell.font = BOLD
    if isinstance(value, datetime):
        cell.number_format = MOMENT_FORMAT
    elif isinstance(value, date):
        cell.number_format = DAY_FORMAT
    return cell


def _width(value: Any) -> int:
    if isinstance(value, datetime):
        return len("2026-03-02 09:00")
    if isinstance(value, date):
        return len("2026-03-02")
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # CJK characters are two columns wide


def report_sheets(body: dict[str, Any]) -> dict[str, Sheet]:
    """A periodic report (projections.reports) as sheets: summary, ranking, the same
    breakdowns as its JSON (by channel, category and, yearly, month), the public notice."""
    rates = body["rates"] or {}
    summary = [
        {"item": "通报", "value": body["title"]},
        {"item": "统计期间", "value": f"{body['from']} 至 {body['to']}"},
        {"item": "数据截至", "value": body["as_of"]},
        *({"item": k, "value": v} for k, v in body["figures"].items()),
        *({"item": k, "value": _display(k, rates.get(k), {})} for k in (*RATES, "composite_score")),
    ]
    figures = ("received", "closed", "callbacks", *RATES, "composite_score")
    sheets: dict[str, Sheet] = {
        "概况": (("item", "value"), summary),
        "排名": (("rank", "unit", "name", *figures), [_flat(g) for g in body["ranking"]]),
    }
    if "by_month" in body:
        sheets["按月"] = (("month", *figures), [{"month": g["unit"], **_flat(g)} for g in body["by_month"]])
    sheets["按渠道"] = (("channel", "received"), [{"channel": k, "received": n} for k, n in body["by_channel"].items()])
    sheets["按类别"] = (
        ("category", "received"),
        [{"category": k, "received": n} for k, n in body["by_category"].items()],
    )
    if "cases" in body:
        sheets["公示"] = (
            ("number", "title", "community_name", "petitioner", "phone", "status", "closed_date", "rating"),
            body["cases"],
        )
    return sheets


def _flat(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "counts"} | group["counts"]
