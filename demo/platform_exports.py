"""Spreadsheets as the hotline platforms export them (12345 work orders, 110 non-police
dispatches): their headers, those reference/mappings/12345.json and 110.toml read, and the CSV
they write. Used by the demo district's imported orders and by the import tests and benchmark."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

HEADERS_12345 = ["工单编号", "来电时间", "来电人", "联系电话", "诉求标题", "诉求内容", "补充说明", "问题分类",
                 "事发地址", "所属网格"]  # fmt: skip
HEADERS_110 = ["警情编号", "报警时间", "报警人", "报警电话", "警情类别", "简要警情", "发案地点", "管辖网格"]


def export_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]], encoding: str = "gb18030") -> bytes:
    """A header line, then the rows; GB18030 by default, as the platforms export (GBK family)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)
