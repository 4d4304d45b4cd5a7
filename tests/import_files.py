"""Spreadsheets as a 12345 platform and a 110 dispatch export them, for the import tests and the
benchmark (the headers of reference/mappings/12345.json and 110.toml)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from demo.platform_exports import HEADERS_110, HEADERS_12345, export_csv

__all__ = ["HEADERS_110", "HEADERS_12345", "order_110", "order_12345", "to_csv", "to_xlsx"]

CATEGORIES = ["城乡建设/房屋修缮", "城市管理/市容环卫", "生态环境/噪声污染", "城乡建设/物业管理", "咨询建议"]
GRIDS = ["马限社区第1网格", "马限社区第2网格", "君竹社区第1网格", "35010500200101"]
SURNAMES = "王李张刘陈杨黄赵吴周"


def order_12345(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "工单编号": f"GD2026030100{i:05d}",
        "来电时间": f"2026-03-01 {8 + i % 10:02d}:{i % 60:02d}:00",
        "来电人": f"{SURNAMES[i % 10]}先生",
        "联系电话": f"139{i:08d}",
        "诉求标题": f"反映问题第{i}号",
        "诉求内容": f"来电人反映小区{i % 30 + 1}号楼附近的问题，请尽快处理。",
        "补充说明": "来电人要求回电" if i % 3 == 0 else "",
        "问题分类": CATEGORIES[i % len(CATEGORIES)],
        "事发地址": f"马尾区罗星街道马限社区{i % 30 + 1}号楼",
        "所属网格": GRIDS[i % len(GRIDS)],
    }
    return row | overrides


def order_110(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "警情编号": f"J350105202603{i:06d}",
        "报警时间": f"2026年03月01日 2{i % 4}:1{i % 10}",
        "报警人": f"{SURNAMES[i % 10]}女士",
        "报警电话": f"0591-8{i:07d}",
        "警情类别": ["噪音扰民", "邻里纠纷", "宠物扰民"][i % 3],
        "简要警情": f"报警人称楼上深夜持续发出噪音，影响休息（第{i}起）。\n民警到场后已劝离，转网格跟进。",
        "发案地点": f"君竹社区{i % 12 + 1}号楼",
        "管辖网格": "君竹社区第1网格",
    }
    return row | overrides


def to_csv(rows: list[dict[str, Any]], headers: list[str] = HEADERS_12345, encoding: str = "utf-8") -> bytes:
    return export_csv(headers, ([row.get(h, "") for h in headers] for row in rows), encoding)


def to_xlsx(rows: list[dict[str, Any]], headers: list[str] = HEADERS_12345, *, typed: bool = True) -> bytes:
    """As Excel holds an export: phone numbers as numbers, times as date cells."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("工单")
    sheet.append(headers)
    for row in rows:
        cells = []
        for h in headers:
            value = row.get(h, "")
            if typed and h == "联系电话" and str(value).isdigit():
                value = int(value)
            elif typed and h == "来电时间" and value:
                value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
            cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
