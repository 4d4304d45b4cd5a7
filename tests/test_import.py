"""Importing a hotline platform's work orders through HTTP (POST /imports), on both stores:
each good row a case that keeps the platform's order number, bad rows reported in Chinese and
not written, a file imported twice adds nothing, a dry run writes nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from commands.imports import ImportReport
from config.settings import Settings
from service import create_app
from tests.api_steps import position
from tests.factories import ADMIN, CLERK, GRID_LEADER, SUPERVISOR, DefaultReader, auth, registration
from tests.import_files import HEADERS_110, HEADERS_12345, order_110, order_12345, to_csv, to_xlsx

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def upload(
    client: TestClient,
    data: bytes,
    *,
    mapping: str = "12345",
    content_type: str = CSV,
    dry_run: bool = False,
    actor: Any = CLERK,
    expect: int = 200,
) -> dict[str, Any]:
    response = client.post(
        "/imports",
        params={"mapping": mapping, "dry_run": dry_run, "filename": "export.csv"},
        content=data,
        headers={**auth(actor), "Content-Type": content_type},
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def ledger_rows(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    page = client.get("/ledger", params={"wait_for": position(client), "limit": 200, **params})
    assert page.status_code == 200, page.text
    rows: list[dict[str, Any]] = page.json()["items"]
    return rows


def test_a_good_file_registers_each_row_with_the_platform_order_number(client: TestClient) -> None:
    report = upload(client, to_csv([order_12345(i) for i in range(1, 4)]))

    assert (report["total"], report["imported_count"], report["refused_count"]) == (3, 3, 0)
    assert report["summary"] == "共 3 行：导入 3 行，已导入过 0 行（跳过），拒绝 0 行。"
    first = report["imported"][0]
    assert (first["row"], first["external_id"]) == (2, "GD202603010000001")

    case = client.get(f"/cases/{first['case_id']}", headers=auth(SUPERVISOR)).json()
    assert case["imported"] == {
        "platform": "12345",
        "external_id": "GD202603010000001",
        "received_at": "2026-03-01T09:01:00+08:00",
    }
    assert (case["channel"], case["category"]) == ("hotline_12345", "sanitation")
    assert case["units"]["grid"] == "35010500100102"
    assert case["title"] == "反映问题第1号"
    # Sealed like every registration: in clear for a role that may see it, masked for an auditor.
    assert case["petitioner"]["name"] == "李先生"
    assert client.get(f"/cases/{first['case_id']}").json()["petitioner"]["phone"] != "13900000001"

    history = client.get(f"/cases/{first['case_id']}/history").json()["events"]
    assert [e["type"] for e in history] == ["Registered", "OrderImported"]
    assert history[1]["label"] == "导入热线工单"
    assert history[1]["payload"]["external_id"] == "GD202603010000001"
    assert history[1]["actor"]["id"] == CLERK.id

    rows = ledger_rows(client, channel="hotline_12345")
    assert sorted(r["external_id"] for r in rows) == [f"GD20260301000000{i}" for i in (1, 2, 3)]
    assert {r["external_platform"] for r in rows} == {"12345"}
    [found] = ledger_rows(client, external_id="GD202603010000002", external_platform="12345")
    assert found["case_id"] == report["imported"][1]["case_id"]

    feed = client.get("/events", params={"type": "OrderImported"}).json()
    assert len(feed["events"]) == 3


def test_bad_rows_are_refused_in_chinese_and_nothing_of_them_is_written(client: TestClient) -> None:
    rows = [
        order_12345(1),
        order_12345(2, 问题分类="外星人入侵"),
        order_12345(3, 联系电话="98765", 诉求内容="", 补充说明=""),
        order_12345(4),
        order_12345(5, 所属网格="不存在的网格", 来电时间="昨天下午"),
        order_12345(6, 工单编号="GD202603010000001"),  # the same order as row 2
    ]
    before = position(client)
    report = upload(client, to_csv(rows))

    assert (report["imported_count"], report["refused_count"]) == (2, 4)
    refused = {(r["row"], r["field"]): r for r in report["refused"]}
    assert refused[(3, "category")]["reason"].startswith("未知的诉求类别“外星人入侵”")
    assert refused[(3, "category")]["column"] == "问题分类"
    assert refused[(3, "category")]["external_id"] == "GD202603010000002"
    assert "电话号码格式不符" in refused[(4, "petitioner_phone")]["reason"]
    assert "98765" not in refused[(4, "petitioner_phone")]["reason"]  # personal data is never echoed
    assert refused[(4, "description")]["reason"] == "必填：该行的诉求内容为空"
    assert "未知的网格“不存在的网格”" in refused[(6, "grid")]["reason"]
    assert "无法识别的时间“昨天下午”" in refused[(6, "received_at")]["reason"]
    assert refused[(7, "external_id")]["reason"] == "与第 2 行工单号重复"

    # Two cases of two events each, with their number and order reservations: nothing of the bad rows.
    assert position(client) - before == 2 * 4
    assert sorted(r["external_id"] for r in ledger_rows(client)) == ["GD202603010000001", "GD202603010000004"]


def test_importing_the_same_file_again_adds_nothing(client: TestClient) -> None:
    data = to_xlsx([order_12345(i) for i in range(1, 6)])
    upload(client, data, content_type=XLSX)
    head = position(client)

    again = upload(client, data, content_type=XLSX)

    assert (again["imported_count"], again["skipped_count"], again["refused_count"]) == (0, 5, 0)
    assert again["skipped"][0]["case_id"] is not None
    assert position(client) == head
    # One more row in a later export: only it is new.
    more = upload(client, to_xlsx([order_12345(i) for i in range(1, 7)]), content_type=XLSX)
    assert (more["imported_count"], more["skipped_count"]) == (1, 5)
    assert len(ledger_rows(client)) == 6


def test_the_same_order_number_from_another_platform_is_another_case(client: TestClient) -> None:
    upload(client, to_csv([order_12345(1)]))
    mine = order_110(1, 警情编号="GD202603010000001")
    report = upload(client, to_csv([mine], HEADERS_110), mapping="110")
    assert report["imported_count"] == 1


def test_a_dry_run_checks_every_row_and_writes_nothing(client: TestClient) -> None:
    data = to_csv([order_12345(1), order_12345(2, 问题分类="未知"), order_12345(3)])
    before = position(client)

    dry = upload(client, data, dry_run=True)

    assert dry["dry_run"] is True
    assert (dry["imported_count"], dry["refused_count"]) == (2, 1)
    assert dry["summary"].startswith("（试导入，未写入任何数据）")
    assert position(client) == before
    real = upload(client, data)
    assert {k: real[k] for k in ("imported_count", "refused_count")} == {"imported_count": 2, "refused_count": 1}
    assert [r["row"] for r in real["refused"]] == [r["row"] for r in dry["refused"]]


def test_a_gbk_csv_from_a_chinese_platform_is_read(client: TestClient) -> None:
    data = to_csv([order_12345(i) for i in range(1, 3)], encoding="gbk")
    report = upload(client, data)  # no charset: UTF-8 fails, GB18030 reads it
    assert report["imported_count"] == 2
    case = client.get(f"/cases/{report['imported'][0]['case_id']}").json()
    assert case["location"] == "马尾区罗星街道马限社区2号楼"

    named = upload(client, to_csv([order_12345(3)], encoding="gb18030"), content_type="text/csv; charset=GB18030")
    assert named["imported_count"] == 1


def test_an_xlsx_with_numbers_and_date_cells_is_read(client: TestClient) -> None:
    report = upload(client, to_xlsx([order_12345(i) for i in range(1, 4)]), content_type=XLSX)
    assert report["imported_count"] == 3
    case = client.get(f"/cases/{report['imported'][2]['case_id']}", headers=auth(SUPERVISOR)).json()
    assert case["petitioner"]["phone"] == "13900000003"  # stored by Excel as a number
    assert case["imported"]["received_at"] == "2026-03-01T11:03:00+08:00"  # a date cell


def test_a_110_export_with_a_toml_mapping_derives_the_title(client: TestClient) -> None:
    report = upload(client, to_csv([order_110(i) for i in range(1, 3)], HEADERS_110), mapping="110", actor=ADMIN)
    assert report["imported_count"] == 2
    case = client.get(f"/cases/{report['imported'][0]['case_id']}").json()
    assert case["channel"] == "call_110"
    assert case["title"] == "报警人称楼上深夜持续发出噪音，影响休息（第1起）"  # the first line, cut at 24
    assert case["registered_by"]["role"] == "admin"


def test_a_file_without_a_mapped_header_is_refused_whole(client: TestClient) -> None:
    headers = [h for h in HEADERS_12345 if h != "问题分类"]
    before = position(client)
    body = upload(client, to_csv([order_12345(1)], headers), expect=422)
    reason = "文件第 1 行表头中没有“问题分类”列（映射文件 columns.category，诉求类别）"
    assert body["error"]["fields"] == [{"field": "columns.category", "reason": reason}]
    assert position(client) == before


def test_an_unknown_mapping_or_content_type_is_a_422(client: TestClient) -> None:
    data = to_csv([order_12345(1)])
    unknown = upload(client, data, mapping="nonesuch", expect=422)
    assert unknown["error"]["fields"][0]["field"] == "mapping"
    assert "12345" in unknown["error"]["fields"][0]["reason"]  # names the mappings there are
    wrong = upload(client, data, content_type="application/json", expect=422)
    assert wrong["error"]["fields"][0]["field"] == "Content-Type"
    xls = upload(client, b"\xd0\xcf\x11\xe0" + b"\0" * 100, content_type=XLSX, expect=422)
    assert "另存为 .xlsx" in xls["error"]["fields"][0]["reason"]


def test_only_the_intake_office_and_the_operator_may_import(client: TestClient) -> None:
    data = to_csv([order_12345(1)])
    denied = upload(client, data, actor=GRID_LEADER, expect=403)
    assert denied["error"]["code"] == "role_not_allowed"
    upload(client, data, actor=SUPERVISOR, expect=403)
    assert client.get("/imports/mappings", headers=auth(CLERK)).json()["mappings"][0]["name"] == "110"


def test_an_upload_over_the_cap_is_refused_before_it_is_read(settings: Settings) -> None:
    app = create_app(replace(settings, max_import_bytes=2048), log_cache=False)
    with TestClient(app) as client:
        big = to_csv([order_12345(i) for i in range(1, 40)])
        assert len(big) > 2048
        response = client.post(
            "/imports", params={"mapping": "12345"}, content=big, headers={**auth(CLERK), "Content-Type": CSV}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        # The cap is the import's own: larger than a JSON command's 64 KiB would allow is fine under it.
        small = to_csv([order_12345(1)])
        ok = client.post(
            "/imports", params={"mapping": "12345"}, content=small, headers={**auth(CLERK), "Content-Type": CSV}
        )
        assert ok.status_code == 200, ok.text


def test_the_refusal_report_as_csv_guards_against_formulas() -> None:
    from commands.imports import Refusal

    report = ImportReport("12345", "m", "f.csv", False, total=1)
    report.refused.append(Refusal(2, "=HYPERLINK()", "category", "问题分类", "未知"))
    text = report.refusals_csv()
    assert text.splitlines()[0] == "行号,工单号,字段,表头,原因"
    assert "'=HYPERLINK()" in text


def test_an_imported_petitioner_is_the_same_person_as_a_registered_one(client: TestClient) -> None:
    # Keys are made a batch at a time on import: the same phone still means the same person.
    registered = client.post("/cases", json=registration(petitioner_phone="13900000001"), headers=auth(CLERK)).json()[
        "case_id"
    ]
    report = upload(client, to_csv([order_12345(1), order_12345(2, 联系电话="13900000001"), order_12345(3)]))
    ids = [client.get(f"/cases/{r['case_id']}").json()["petitioner_id"] for r in report["imported"]]
    assert ids[0] == ids[1] == client.get(f"/cases/{registered}").json()["petitioner_id"]
    assert ids[2] != ids[0]


def test_the_demo_district_holds_imported_12345_and_110_orders(settings: Settings, clock: Any) -> None:
    from demo.stories import load_imported

    app = create_app(settings, log_cache=False)
    with TestClient(app) as client:
        client.auth = DefaultReader()
        summary = load_imported(app.state.cases, now=clock.now)
        assert summary == {"imported": 12, "imported_before": 0, "imported_refused": 0, "imported_dispatched": 6}
        rows = ledger_rows(client)
        assert Counter(r["channel"] for r in rows) == {"hotline_12345": 8, "call_110": 4}
        assert all(r["external_id"] and r["received_at"] for r in rows)
        assert Counter(r["status"] for r in rows) == {"registered": 6, "assigned": 6}
        assert load_imported(app.state.cases, now=clock.now)["imported_before"] == 12  # idempotent


def test_the_delimiter_comes_from_the_header_line() -> None:
    from commands.imports import Mapping, read_table
    from config.settings import IMPORT_MAPPINGS

    mapping = Mapping.load(IMPORT_MAPPINGS / "12345.json")
    tabbed = "\t".join(HEADERS_12345) + "\n" + "\t".join(["GD1", "", "", "", "", "甲;乙;丙;丁", "", "", "", ""]) + "\n"
    table = read_table(tabbed.encode("utf-8"), mapping)
    assert table.headers == HEADERS_12345
    assert table.rows == [(2, ["GD1", "", "", "", "", "甲;乙;丙;丁", "", "", "", ""])]
