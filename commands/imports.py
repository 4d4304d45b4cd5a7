"""Importing a hotline platform's work orders (12345, 110 非警务): a spreadsheet (xlsx or CSV in
UTF-8 or GBK/GB18030) read through a column mapping, each row registered as a case that keeps
the platform's order number (docs/imports.md).

Every row is checked the way POST /cases checks a registration (shapes and sizes, then the
reference data) before anything is written; a bad row is reported (row, order number, field,
reason in Chinese) and writes nothing, good rows are saved in batches, each row all or nothing.
An order number already imported from the platform is skipped, so importing a file again adds
nothing: the number is reserved by a stream saved with the case (commands/records.py)."""

from __future__ import annotations

import csv
import io
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from cases.actor import Actor
from cases.case import IMPORTING_ROLES
from cases.clock import in_china
from cases.errors import ActorNotAllowedError, CaseError
from cases.inputs import ImportedOrder
from commands.cases import Cases
from commands.errors import InvalidInputError

FIELDS = tuple(ImportedOrder.model_fields)
REQUIRED = ("external_id", "channel", "category", "description", "location", "grid", "petitioner_name",
            "petitioner_phone")  # fmt: skip
FIELD_LABELS = {
    "external_id": "平台工单号", "channel": "受理渠道", "category": "诉求类别", "title": "诉求标题",
    "description": "诉求内容", "location": "地点", "grid": "网格", "petitioner_name": "诉求人姓名",
    "petitioner_phone": "联系电话", "petitioner_address": "诉求人住址", "received_at": "平台登记时间",
}  # fmt: skip
PERSONAL = frozenset({"petitioner_name", "petitioner_phone", "petitioner_address"})  # never echoed in a report
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d",
                "%Y/%m/%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日")  # fmt: skip
ENCODINGS = ("auto", "utf-8", "gb18030", "gbk")
BATCH = 200  # rows saved per transaction when none of them clashes
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class ImportFileError(InvalidInputError):
    """The file or the mapping as a whole cannot be read (a missing header, an unknown format):
    nothing of it is imported (HTTP 422 with the field and the reason)."""

    code = "import_file_invalid"


# --- the mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """How one platform's export maps onto a registration (docs/imports.md)."""

    platform: str
    name: str
    columns: dict[str, tuple[str, ...]]  # our field -> the platform's header(s), joined by a newline
    constants: dict[str, str] = field(default_factory=dict)  # our field -> one value for every row
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # our field -> platform value -> ours
    header_row: int = 1
    sheet: str | None = None
    encoding: str = "auto"
    time_formats: tuple[str, ...] = TIME_FORMATS
    title_length: int = 30

    @classmethod
    def load(cls, path: Path) -> Mapping:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ImportFileError("mapping", f"无法读取映射文件 {path}：{e.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else orjson.loads(raw)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, orjson.JSONDecodeError) as e:
            raise ImportFileError("mapping", f"映射文件 {path.name} 不是合法的 JSON 或 TOML：{e}") from None
        return cls.parse(data, default_name=path.stem)

    @classmethod
    def parse(cls, data: Any, *, default_name: str = "") -> Mapping:
        def bad(where: str, reason: str) -> ImportFileError:
            return ImportFileError(f"mapping.{where}", reason)

        if not isinstance(data, dict):
            raise ImportFileError("mapping", "映射文件须为一个对象（JSON 对象或 TOML 表）")
        unknown = set(data) - {"platform", "name", "columns", "constants", "values", "header_row", "sheet",
                               "encoding", "time_formats", "title_length", "description"}  # fmt: skip
        if unknown:
            raise bad(sorted(unknown)[0], "映射文件中没有这一项（可用：platform、columns、constants、values 等）")
        platform = data.get("platform")
        if not isinstance(platform, str) or not platform.strip() or "/" in platform:
            raise bad("platform", "须注明来源平台（如 12345、110），用于区分各平台的工单号")
        columns: dict[str, tuple[str, ...]] = {}
        for name, spec in (data.get("columns") or {}).items():
            if name not in FIELDS:
                raise bad(f"columns.{name}", f"不是可导入的字段；可用：{'、'.join(FIELDS)}")
            headers = (spec,) if isinstance(spec, str) else tuple(spec) if isinstance(spec, list) else ()
            if not headers or not all(isinstance(h, str) and h.strip() for h in headers):
                raise bad(f"columns.{name}", "须为表头名称，或表头名称的列表")
            columns[name] = tuple(h.strip() for h in headers)
        constants = data.get("constants") or {}
        for name, value in constants.items():
            if name not in FIELDS or name in PERSONAL or name in ("external_id", "received_at"):
                raise bad(f"constants.{name}", "这个字段不能取固定值")
            if name in columns:
                raise bad(f"constants.{name}", "已在 columns 中对应了表头，不能再取固定值")
            if not isinstance(value, str):
                raise bad(f"constants.{name}", "固定值须为字符串")
        for name in REQUIRED:
            if name not in columns and name not in constants:
                raise bad(
                    f"columns.{name}", f"必填：须对应表头（columns）或给出固定值（constants）：{FIELD_LABELS[name]}"
                )
        values = data.get("values") or {}
        for name, table in values.items():
            if name not in ("channel", "category", "grid") or not isinstance(table, dict):
                raise bad(f"values.{name}", "只有 channel、category、grid 可以对照取值，且须为“平台取值: 本系统编码”")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                raise bad(f"values.{name}", "对照表的键和值都须为字符串")
        encoding = data.get("encoding", "auto")
        if encoding not in ENCODINGS:
            raise bad("encoding", f"须为以下之一：{'、'.join(ENCODINGS)}")
        header_row = data.get("header_row", 1)
        if not isinstance(header_row, int) or not 1 <= header_row <= 50:
            raise bad("header_row", "须为 1 至 50 的整数（表头所在的行号）")
        formats = data.get("time_formats", list(TIME_FORMATS))
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
            raise bad("time_formats", "须为时间格式的列表（如 %Y-%m-%d %H:%M:%S）")
        title_length = data.get("title_length", 30)
        if not isinstance(title_length, int) or not 5 <= title_length <= 200:
            raise bad("title_length", "须为 5 至 200 的整数")
        sheet = data.get("sheet")
        if sheet is not None and not isinstance(sheet, str):
            raise bad("sheet", "须为工作表名称")
        return cls(
            platform=platform.strip(),
            name=str(data.get("name") or default_name or platform),
            columns=columns,
            constants={k: v.strip() for k, v in constants.items()},
            values={k: {a.strip(): b.strip() for a, b in v.items()} for k, v in values.items()},
            header_row=header_row,
            sheet=sheet,
            encoding=encoding,
            time_formats=tuple(formats),
            title_length=title_length,
        )

    def describe(self) -> dict[str, Any]:
        return {"platform": self.platform, "title": self.name, "columns": {k: list(v) for k, v in self.columns.items()}}


def mapping_named(directory: Path, name: str) -> Mapping:
    """A mapping the operator keeps in the mappings directory, by its file name without suffix."""
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
        raise ImportFileError("mapping", "映射名称只能含字母、数字和 - _ .")
    for suffix in (".json", ".toml"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return Mapping.load(path)
    known = "、".join(mapping_names(directory)) or "（无）"
    raise ImportFileError("mapping", f"没有名为 {name} 的映射；可用：{known}")


def mapping_names(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if p.suffix in (".json", ".toml"))


# --- reading the spreadsheet ---------------------------------------------------------

Cell = str | datetime | date | None


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[Cell]]]  # (row number as the spreadsheet shows it, cells); blank rows dropped

    def column(self, header: str) -> int | None:
        return self.headers.index(header) if header in self.headers else None


def read_table(data: bytes, mapping: Mapping, *, charset: str | None = None) -> Table:
    """The spreadsheet's header and data rows: xlsx by its signature, otherwise CSV."""
    if data.startswith(XLS_MAGIC):
        raise ImportFileError("file", "不支持旧版 Excel（.xls）文件：请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    grid = _xlsx_rows(data, mapping.sheet) if data.startswith(XLSX_MAGIC) else _csv_rows(data, mapping, charset)
    header_at = mapping.header_row
    if len(grid) < header_at:
        raise ImportFileError("file", f"文件没有第 {header_at} 行表头（映射文件 header_row）")
    headers = [_text(c) or "" for c in grid[header_at - 1]]
    rows = [
        (header_at + i + 1, list(cells)) for i, cells in enumerate(grid[header_at:]) if any(_text(c) for c in cells)
    ]
    return Table(headers, rows)


def _xlsx_rows(data: bytes, sheet: str | None) -> list[list[Cell]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError("file", f"无法读取 xlsx 文件（{type(e).__name__}）：文件可能已损坏") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportFileError("mapping.sheet", f"工作簿中没有名为“{sheet}”的工作表")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        return [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | datetime | date):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number or an order number Excel stored as a number
    return str(value)


def _csv_rows(data: bytes, mapping: Mapping, charset: str | None) -> list[list[Cell]]:
    encoding = (charset or "").lower() or mapping.encoding
    if encoding in ("auto", ""):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = _decode(data, "gb18030")  # GBK and GB2312 are subsets: what Chinese platforms export
    else:
        text = _decode(data, "utf-8-sig" if encoding in ("utf-8", "utf8") else encoding)
    if "\x00" in text:
        raise ImportFileError("file", "文件含有 NUL 字符：不是 CSV 文本（xlsx 请直接上传原文件）")
    # The delimiter from the header line alone: a description full of semicolons must not decide it.
    header = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", "\t", ";") if d in header), ",")
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise ImportFileError("charset", f"不认识的字符编码 {encoding}") from None
    except UnicodeDecodeError as e:
        raise ImportFileError("file", f"文件不是 {encoding} 编码的文本（第 {e.start} 字节处）") from None


def _text(cell: Cell) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(cell, date):
        return cell.isoformat()
    stripped = cell.strip()
    return stripped or None


# --- one row -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    row: int
    external_id: str | None
    field: str
    column: str | None  # the platform's header, when the field comes from one
    reason: str


class Lookups:
    """Platform values to our codes: the mapping's own table first, then our code, then our name."""

    def __init__(self, cases: Cases, mapping: Mapping) -> None:
        ref = cases.reference
        self.known = {
            "channel": dict(ref.channels),
            "category": dict(ref.categories),
            "grid": {code: units["grid_name"] for code, units in ref.grids.items()},
        }
        self.micro_grids = set(ref.micro_grids)
        self.by_name: dict[str, dict[str, str | None]] = {}
        for kind, names in self.known.items():
            index: dict[str, str | None] = {}
            for code, label in names.items():
                index[label] = None if label in index else code  # a name two units share names neither
            self.by_name[kind] = index
        self.values = mapping.values

    def resolve(self, kind: str, value: str) -> str | None:
        mapped = self.values.get(kind, {}).get(value)
        if mapped is not None:
            return mapped
        if value in self.known[kind] or (kind == "grid" and value in self.micro_grids):
            return value
        return self.by_name[kind].get(value)


UNKNOWN = {
    "channel": "未知的受理渠道",
    "category": "未知的诉求类别",
    "grid": "未知的网格",
}


def parse_row(
    mapping: Mapping, lookups: Lookups, table: Table, row: int, cells: list[Cell], now: datetime
) -> tuple[dict[str, Any] | None, list[Refusal]]:
    """One row as the fields of a registration, or the reasons it cannot be one."""
    raw: dict[str, Any] = dict(mapping.constants)
    for name, headers in mapping.columns.items():
        parts = [cells[i] for h in headers if (i := table.headers.index(h)) < len(cells)]
        if name == "received_at" and len(parts) == 1 and isinstance(parts[0], datetime | date):
            raw[name] = parts[0]
            continue
        text = "\n".join(t for p in parts if (t := _text(p)))
        if text:
            raw[name] = text
    external_id = raw.get("external_id")
    refusals: list[Refusal] = []

    def refuse(name: str, reason: str) -> None:
        headers = mapping.columns.get(name)
        refusals.append(Refusal(row, external_id, name, "、".join(headers) if headers else None, reason))

    for kind in ("channel", "category", "grid"):
        if kind in raw:
            code = lookups.resolve(kind, raw[kind])
            if code is None:
                refuse(kind, f"{UNKNOWN[kind]}“{raw[kind]}”：请在映射文件 values.{kind} 中对照为本系统的编码")
            else:
                raw[kind] = code
    if "title" not in raw and "description" in raw:
        first_line = raw["description"].strip().splitlines()[0]
        raw["title"] = first_line[: mapping.title_length]
    if "received_at" in raw:
        moment = _moment(raw["received_at"], mapping.time_formats)
        if moment is None:
            refuse("received_at", f"无法识别的时间“{raw['received_at']}”：格式须为 {mapping.time_formats[0]} 等")
            del raw["received_at"]
        elif moment > now:
            refuse("received_at", f"平台登记时间 {moment:%Y-%m-%d %H:%M} 晚于导入时间，请核对")
            del raw["received_at"]
        else:
            raw["received_at"] = moment
    try:
        order = ImportedOrder.model_validate(raw).model_dump()
    except ValidationError as e:
        for error in e.errors():
            name = str(error["loc"][0]) if error["loc"] else "row"
            if not any(r.field == name for r in refusals):
                refuse(name, _reason(name, error))
        return None, refusals
    return (None, refusals) if refusals else (order, [])


def _moment(value: Any, formats: tuple[str, ...]) -> datetime | None:
    if isinstance(value, datetime):
        return in_china(value)
    if isinstance(value, date):
        return in_china(datetime(value.year, value.month, value.day))
    text = str(value).strip()
    for fmt in formats:
        try:
            return in_china(datetime.strptime(text, fmt))
        except ValueError:
            continue
    try:
        return in_china(datetime.fromisoformat(text))
    except ValueError:
        return None


def _reason(name: str, error: Any) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing":
        return f"必填：该行的{FIELD_LABELS.get(name, name)}为空"
    if kind == "string_too_long":
        return f"长度不得超过 {context.get('max_length')} 个字符"
    if kind == "string_too_short":
        return f"{FIELD_LABELS.get(name, name)}不得为空"
    if kind == "string_pattern_mismatch":
        if name == "petitioner_phone":
            return "电话号码格式不符：须为 11 位手机号，或带区号的座机号（如 0550-7012345）"
        if name == "external_id":
            return "工单号只能含字母、数字和 - _ . : / #"
        return "格式不符"
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    return "取值不符"


# --- the import ----------------------------------------------------------------------


@dataclass
class ImportReport:
    platform: str
    mapping: str
    source: str
    dry_run: bool
    total: int = 0
    imported: list[dict[str, Any]] = field(default_factory=list)  # row, external_id, case_id, number
    skipped: list[dict[str, Any]] = field(default_factory=list)  # row, external_id, case_id: imported before
    refused: list[Refusal] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refused_rows(self) -> int:
        return len({r.row for r in self.refused})

    def summary(self) -> str:
        verb = "可导入" if self.dry_run else "导入"
        head = "（试导入，未写入任何数据）" if self.dry_run else ""
        return (
            f"{head}共 {self.total} 行：{verb} {len(self.imported)} 行，"
            f"已导入过 {len(self.skipped)} 行（跳过），拒绝 {self.refused_rows} 行。"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "mapping": self.mapping,
            "source": self.source,
            "dry_run": self.dry_run,
            "total": self.total,
            "imported_count": len(self.imported),
            "skipped_count": len(self.skipped),
            "refused_count": self.refused_rows,
            "summary": self.summary(),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.total / self.seconds, 1) if self.seconds > 0 else None,
            "refused": [asdict(r) for r in self.refused],
            "skipped": self.skipped,
            "imported": self.imported,
        }

    def refusals_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["行号", "工单号", "字段", "表头", "原因"])
        for r in self.refused:
            label = FIELD_LABELS.get(r.field, r.field)
            writer.writerow([r.row, _safe(r.external_id or ""), label, _safe(r.column or ""), _safe(r.reason)])
        return out.getvalue()


def _safe(text: str) -> str:
    # A cell beginning like a formula is read as one by Excel: the report is opened there.
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


Progress = Callable[[int, int], None]  # (rows done, rows in all)


def import_file(
    cases: Cases,
    actor: Actor,
    data: bytes,
    mapping: Mapping,
    *,
    source: str,
    dry_run: bool = False,
    charset: str | None = None,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> ImportReport:
    """Reads, checks and (unless a dry run) registers every row; the report says what became of each."""
    if actor.role not in IMPORTING_ROLES:
        raise ActorNotAllowedError("只有民情信息员（登记员）或系统管理员可以导入热线工单。")
    started = time.perf_counter()
    table = read_table(data, mapping, charset=charset)
    _check_headers(table, mapping)
    lookups = Lookups(cases, mapping)
    report = ImportReport(mapping.platform, mapping.name, source, dry_run, total=len(table.rows))
    seen: dict[str, int] = {}
    done = 0
    if progress:
        progress(0, report.total)
    for chunk in _chunks(table.rows, batch):
        now = cases.clock()
        good: list[tuple[int, dict[str, Any]]] = []
        for row, cells in chunk:
            order, refusals = parse_row(mapping, lookups, table, row, cells, now)
            if order is not None and (first := seen.get(order["external_id"])) is not None:
                refusals = [
                    Refusal(row, order["external_id"], "external_id", _header(mapping), f"与第 {first} 行工单号重复")
                ]
                order = None
            if order is None:
                report.refused += refusals
                continue
            seen[order["external_id"]] = row
            good.append((row, order))
        before = cases.imported_already(mapping.platform, [o["external_id"] for _, o in good])
        fresh = []
        for row, order in good:
            if order["external_id"] in before:
                report.skipped.append(
                    {"row": row, "external_id": order["external_id"], "case_id": before[order["external_id"]]}
                )
            else:
                fresh.append((row, order))
        if dry_run:
            report.imported += [
                {"row": row, "external_id": o["external_id"], "case_id": None, "number": None} for row, o in fresh
            ]
        else:
            _save(cases, actor, mapping, source, fresh, report)
        done += len(chunk)
        if progress:
            progress(done, report.total)
    report.seconds = time.perf_counter() - started
    return report


def _save(
    cases: Cases,
    actor: Actor,
    mapping: Mapping,
    source: str,
    rows: list[tuple[int, dict[str, Any]]],
    report: ImportReport,
) -> None:
    if not rows:
        return
    try:
        results = cases.import_orders(actor, [o for _, o in rows], platform=mapping.platform, source=source)
        outcome = list(zip(rows, results, strict=True))
    except (InvalidInputError, CaseError):
        # One row the checks above let through is refused by the application or the case: find it, row by row.
        outcome = []
        for row, order in rows:
            try:
                [result] = cases.import_orders(actor, [order], platform=mapping.platform, source=source)
            except (InvalidInputError, CaseError) as e:
                name = getattr(e, "field", "row")
                headers = mapping.columns.get(name)
                reason = getattr(e, "reason", None) or str(e)
                report.refused.append(
                    Refusal(row, order["external_id"], name, "、".join(headers) if headers else None, reason)
                )
                continue
            outcome.append(((row, order), result))
    for (row, order), result in outcome:
        if result is None:
            report.skipped.append({"row": row, "external_id": order["external_id"], "case_id": None})
        else:
            report.imported.append(
                {"row": row, "external_id": order["external_id"], "case_id": result.case_id, "number": result.number}
            )


def _header(mapping: Mapping) -> str | None:
    headers = mapping.columns.get("external_id")
    return "、".join(headers) if headers else None


def _check_headers(table: Table, mapping: Mapping) -> None:
    for name, headers in mapping.columns.items():
        for header in headers:
            count = table.headers.count(header)
            if count == 0:
                raise ImportFileError(
                    f"columns.{name}",
                    f"文件第 {mapping.header_row} 行表头中没有“{header}”列"
                    f"（映射文件 columns.{name}，{FIELD_LABELS[name]}）",
                )
            if count > 1:
                raise ImportFileError(f"columns.{name}", f"文件表头中“{header}”列出现了 {count} 次，无法确定取哪一列")


def _chunks(rows: list[tuple[int, list[Cell]]], size: int) -> Iterator[list[tuple[int, list[Cell]]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]
