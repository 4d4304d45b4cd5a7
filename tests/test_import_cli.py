"""`minqing import FILE --mapping MAPPING [--dry-run]` as an intake office runs it: a real
process over a migrated store, progress on stderr, the report on stdout (and as CSV)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from uuid import UUID

import orjson

from commands.cases import Cases
from config.settings import Settings
from reference.model import HERE
from tests.import_files import HEADERS_110, HEADERS_12345, order_110, order_12345, to_csv, to_xlsx
from tests.serving import MINQING, environment


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MINQING, *args], env=environment(settings), capture_output=True, text=True, timeout=300)


def head(cases: Cases) -> int:
    return cases.recorder.max_notification_id() or 0


def test_import_registers_a_file_shows_progress_and_adds_nothing_the_second_time(
    settings: Settings, cases: Cases, tmp_path: Path
) -> None:
    export = tmp_path / "12345导出.xlsx"
    export.write_bytes(to_xlsx([order_12345(i) for i in range(1, 6)]))

    first = run(settings, "import", str(export), "--mapping", "12345", "--clerk", "CL002")

    assert first.returncode == 0, first.stderr
    assert "共 5 行：导入 5 行，已导入过 0 行（跳过），拒绝 0 行。" in first.stdout
    assert "导入进度 5/5 行（100%）" in first.stderr and "行/秒" in first.stderr
    found = cases.imported_already("12345", [f"GD20260301000000{i}" for i in range(1, 6)])
    assert len(found) == 5
    case = cases.get_case(UUID(found["GD202603010000003"]))
    assert case.imported is not None and case.imported["external_id"] == "GD202603010000003"
    assert case.registered_by["id"] == "CL002"
    assert case.petitioner.get("sealed")  # sealed through the vault, never in clear
    written = head(cases)

    again = run(settings, "import", str(export), "--mapping", "12345", "--json")

    assert again.returncode == 0, again.stderr
    report = orjson.loads(again.stdout)
    assert (report["imported_count"], report["skipped_count"]) == (0, 5)
    assert head(cases) == written


def test_bad_rows_exit_1_with_a_chinese_report_and_a_csv_of_refusals(
    settings: Settings, cases: Cases, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    rows = [order_12345(1), order_12345(2, 问题分类="外星人入侵"), order_12345(4, 联系电话="139")]
    export.write_bytes(to_csv(rows, encoding="gbk"))  # as Chinese platforms export: GBK
    refusals = tmp_path / "拒绝明细.csv"

    result = run(settings, "import", str(export), "--mapping", "12345", "--report", str(refusals))

    assert result.returncode == 1, result.stderr
    assert "共 3 行：导入 1 行，已导入过 0 行（跳过），拒绝 2 行。" in result.stdout
    assert "第 3 行  工单号 GD202603010000002  category（问题分类）：未知的诉求类别“外星人入侵”" in result.stdout
    assert "第 4 行  工单号 GD202603010000004  petitioner_phone（联系电话）：电话号码格式不符" in result.stdout
    text = refusals.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # a BOM: Excel opens it as UTF-8
    lines = text.decode("utf-8-sig").splitlines()
    assert lines[0] == "行号,工单号,字段,表头,原因"
    assert lines[1].startswith("3,GD202603010000002,诉求类别,问题分类,未知的诉求类别")
    assert cases.imported_already("12345", ["GD202603010000002", "GD202603010000004"]) == {}
    assert len(cases.imported_already("12345", ["GD202603010000001"])) == 1


def test_a_dry_run_writes_nothing(settings: Settings, cases: Cases, tmp_path: Path) -> None:
    export = tmp_path / "110.csv"
    export.write_bytes(to_csv([order_110(i) for i in range(1, 4)], HEADERS_110))
    before = head(cases)

    dry = run(settings, "import", str(export), "--mapping", str(HERE / "mappings" / "110.toml"), "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert "（试导入，未写入任何数据）共 3 行：可导入 3 行" in dry.stdout
    assert head(cases) == before
    real = run(settings, "import", str(export), "--mapping", "110", "--quiet")
    assert real.returncode == 0 and real.stderr == ""
    assert head(cases) > before


def test_a_missing_mapped_header_refuses_the_whole_file(settings: Settings, cases: Cases, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes(to_csv([order_12345(1)], [h for h in HEADERS_12345 if h != "联系电话"]))
    before = head(cases)

    result = run(settings, "import", str(export), "--mapping", "12345")

    assert result.returncode == 2
    assert "columns.petitioner_phone: 文件第 1 行表头中没有“联系电话”列" in result.stderr
    assert head(cases) == before
    unknown = run(settings, "import", str(export), "--mapping", "nonesuch")
    assert unknown.returncode == 2 and "没有名为 nonesuch 的映射" in unknown.stderr
