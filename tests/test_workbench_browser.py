"""The workbench in a real headless Chromium, against a real `minqing serve` on PostgreSQL with the
demo district: what each role sees, the live board, the time slider, a case's timeline and forms.

Prints the board's first render and the live-update latency (docs/performance.md). With
MINQING_SCREENSHOTS=1 it also refreshes docs/screenshots/*.png.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cases.actor import Actor
from config.settings import Settings
from tests.conftest import PG_URL, REQUIRE_PG, _postgres_schema
from tests.factories import CLERK, GRID_LEADER, SECURITY, SUPERVISOR, TOWNSHIP, auth, registration
from tests.serving import MINQING, environment, serve

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
DEMO_CASES = "150"
SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
STREET = "350105001"  # 罗星街道: case numbers start with their street's code


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
        if REQUIRE_PG:  # strict runs (CI) need every test
            pytest.fail(missing)
        pytest.skip(missing)
    for schema in _postgres_schema():
        settings = Settings(database_url=f"{PG_URL}?schema={schema}&pool_size=4&max_overflow=8", **SECURITY)
        loaded = subprocess.run(
            [*MINQING, "demo", "--cases", DEMO_CASES], env=environment(settings), capture_output=True, timeout=600
        )
        assert loaded.returncode == 0, loaded.stderr.decode()
        yield from serve(settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def fresh_case(server: str) -> dict[str, Any]:
    """A case registered and classified just now: its first limit is a working day away, so it is yellow."""
    with httpx.Client(base_url=server) as api:
        registered = api.post("/cases", json=registration(), headers=auth(CLERK)).json()
        case_id = registered["case_id"]
        api.post(f"/cases/{case_id}/classify", json={"handling_type": "committed", "tier": "big"}, headers=auth(CLERK))
        return api.get(f"/cases/{case_id}", headers=auth(SUPERVISOR)).json()


@pytest.fixture
def signed_in(browser: Any, server: str) -> Iterator[Any]:
    """Signs a fresh browser context in as the actor; closed after the test (its live stream with it)."""
    contexts: list[Any] = []

    def open_as(actor: Actor) -> Any:
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        contexts.append(context)
        return sign_in(context.new_page(), server, actor)

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Any, server: str, actor: Actor) -> Any:
    page.goto(server + "/")
    assert page.url == server + "/signin"
    page.get_by_label("访问令牌").fill(auth(actor)["Authorization"].removeprefix("Bearer "))
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**/workbench**")
    return page


def case_numbers(page: Any) -> list[str]:
    return page.locator("table.cases tbody tr").evaluate_all("rows => rows.map(r => r.dataset.number)")


def unit_names(page: Any) -> list[str]:
    return page.locator("table.units tbody th").all_inner_texts()


def test_each_role_sees_only_what_it_may(signed_in: Any, server: str, fresh_case: dict[str, Any]) -> None:
    office = signed_in(SUPERVISOR)
    assert {"罗星街道", "马尾镇", "琅岐镇", "亭江镇"} <= set(unit_names(office))
    assert len({n.split("-")[0] for n in case_numbers(office)}) > 1  # cases of several streets
    assert office.get_by_role("link", name="吹哨报到评价").count() == 1
    other = next(n for n in case_numbers(office) if not n.startswith(STREET + "-"))
    other_case = office.locator(f'tr[data-number="{other}"] a').first.get_attribute("href")

    street = signed_in(TOWNSHIP)
    assert street.url.endswith(f"/workbench?unit={STREET}&by=community")
    numbers = case_numbers(street)
    assert numbers and all(n.startswith(STREET + "-") for n in numbers)
    assert "马尾镇" not in unit_names(street)
    # Another street's code only narrows the township's own area: nothing of that street comes back.
    elsewhere = street.goto(f"{server}/workbench?unit=350105101")
    assert elsewhere is not None and elsewhere.status == 200
    assert not [n for n in case_numbers(street) if not n.startswith(STREET + "-")]

    grid = signed_in(GRID_LEADER)
    assert grid.url.endswith("/workbench?unit=35010500100101&by=grid")
    assert unit_names(grid) == ["马限社区第1网格"]
    assert all(n.startswith(STREET + "-") for n in case_numbers(grid))
    assert grid.get_by_role("link", name="吹哨报到评价").count() == 0
    refused = grid.goto(server + other_case)
    assert refused is not None and refused.status == 403
    assert "不在网格长的管辖范围内" in grid.locator("main").inner_text()


def test_the_board_shows_red_yellow_and_green_and_renders_within_a_second(
    signed_in: Any, server: str, fresh_case: dict[str, Any]
) -> None:
    page = signed_in(SUPERVISOR)
    renders = []
    for _ in range(3):
        started = time.perf_counter()
        page.goto(f"{server}/workbench", wait_until="load")
        renders.append(time.perf_counter() - started)
    first_render = statistics.median(renders)
    print(f"\nworkbench board first render (navigation to load, median of 3): {first_render * 1000:.0f} ms")
    for colour in ("red", "yellow", "green"):
        assert int(page.locator(f"#total-{colour}").inner_text()) > 0, colour
        assert page.locator(f"table.cases tr.row-{colour}").count() > 0, colour
    assert page.locator(f'tr[data-number="{fresh_case["number"]}"]').get_attribute("class") == "row-yellow"
    assert page.locator("td.cp.red").count() > 0 and page.locator("td.cp.green").count() > 0
    assert first_render < 1.0
    _screenshot(page, "board")


def test_a_command_sent_through_the_api_appears_on_the_open_board_without_a_reload(
    signed_in: Any, server: str, fresh_case: dict[str, Any]
) -> None:
    page = signed_in(SUPERVISOR)
    page.wait_for_function("document.body.dataset.live === 'open'")
    page.evaluate("window.notReloaded = true")
    cell = page.locator(f'tr[data-number="{fresh_case["number"]}"] td.supervised')
    latencies = []
    with httpx.Client(base_url=server) as api:
        for round_ in range(1, 4):
            before = int(cell.inner_text())
            due = (date.today() + timedelta(days=20)).isoformat()
            body = {"responsible_unit": "马限社区", "new_due": due, "notice": f"第{round_}次督办"}
            started = time.perf_counter()
            sent = api.post(f"/cases/{fresh_case['id']}/supervise", json=body, headers=auth(SUPERVISOR))
            assert sent.status_code == 200, sent.text
            page.wait_for_function(
                "([n, before]) => Number(document.querySelector(`tr[data-number='${n}'] td.supervised`)"
                "?.textContent) > before",
                arg=[fresh_case["number"], before],
                timeout=5000,
            )
            latencies.append(time.perf_counter() - started)
    assert page.evaluate("window.notReloaded") is True
    latency = statistics.median(latencies)
    print(f"\nworkbench live update (API command to the open board, median of 3): {latency * 1000:.0f} ms")
    assert latency < 1.0


def test_the_time_slider_shows_the_board_as_it_stood(signed_in: Any, server: str) -> None:
    page = signed_in(SUPERVISOR)
    live_total = page.locator("#board .totals").inner_text()
    page.evaluate(
        "() => { const s = document.getElementById('moment'); s.value = '400';"
        " s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_function("document.getElementById('board-status').textContent.includes('回放')", timeout=20000)
    assert page.locator("#board .totals").inner_text() != live_total
    assert "at=" in page.url  # the moment is in the address, to share or reload
    page.get_by_role("button", name="回到当前").click()
    page.wait_for_function("document.getElementById('board-status').textContent.includes('实时')", timeout=10000)
    assert page.locator("#board .totals").inner_text() == live_total


def test_the_case_page_shows_the_full_timeline_and_a_form_lands_an_event_as_the_signed_in_actor(
    signed_in: Any, server: str, fresh_case: dict[str, Any]
) -> None:
    page = signed_in(SUPERVISOR)
    page.goto(f"{server}/workbench/cases/{fresh_case['id']}")
    with httpx.Client(base_url=server) as api:
        story = api.get(f"/cases/{fresh_case['id']}/history", headers=auth(SUPERVISOR)).json()
    shown = page.locator("#timeline > li")
    assert shown.count() == len(story["events"])
    assert [li.get_attribute("data-type") for li in shown.all()] == [e["type"] for e in story["events"]]
    assert "登记" in shown.first.inner_text() and "民情信息员 CL001" in shown.first.inner_text()
    assert page.locator(".dwell .stretch").count() >= 2

    page.locator("summary", has_text="督办").click()
    form = page.locator('form[data-command="supervise"]')
    form.get_by_label("责任单位").fill("马限社区第1网格")
    form.get_by_label("新时限").fill((date.today() + timedelta(days=30)).isoformat())
    form.get_by_label("督办意见").fill("浏览器中提交的督办意见")
    form.get_by_role("button").click()
    page.wait_for_selector("p.notice")
    assert "已督办" in page.locator("p.notice").inner_text()
    with httpx.Client(base_url=server) as api:
        last = api.get(f"/cases/{fresh_case['id']}/history", headers=auth(SUPERVISOR)).json()["events"][-1]
    assert last["type"] == "SupervisionNoticeIssued" and last["payload"]["notice"] == "浏览器中提交的督办意见"
    assert (last["actor"]["id"], last["actor"]["role"]) == ("SV001", "supervision")
    assert page.locator("#timeline > li").last.get_attribute("data-type") == "SupervisionNoticeIssued"
    if os.environ.get("MINQING_SCREENSHOTS"):  # a demo case with a longer story
        page.goto(f"{server}/workbench?colour=red")
        page.locator("table.cases tbody tr a").first.click()
        page.wait_for_selector("#timeline")
        _screenshot(page, "case", full_page=True)


def test_a_stale_form_gets_the_412_message(signed_in: Any, server: str, fresh_case: dict[str, Any]) -> None:
    page = signed_in(SUPERVISOR)
    page.goto(f"{server}/workbench/cases/{fresh_case['id']}")
    seen = int(page.locator("#case-version").inner_text())
    with httpx.Client(base_url=server) as api:  # someone else acts meanwhile
        due = (date.today() + timedelta(days=9)).isoformat()
        body = {"responsible_unit": "马限社区", "new_due": due, "notice": "他人先办"}
        assert api.post(f"/cases/{fresh_case['id']}/supervise", json=body, headers=auth(SUPERVISOR)).status_code == 200
        before = api.get(f"/cases/{fresh_case['id']}", headers=auth(SUPERVISOR)).json()["version"]
    page.locator("summary", has_text="督办").click()
    form = page.locator('form[data-command="supervise"]')
    form.get_by_label("责任单位").fill("马限社区")
    form.get_by_label("新时限").fill((date.today() + timedelta(days=30)).isoformat())
    form.get_by_label("督办意见").fill("过时的表单")
    with page.expect_response(lambda r: r.url.endswith("/supervise")) as answer:
        form.get_by_role("button").click()
    assert answer.value.status == 412
    alert = page.locator("p.alert").inner_text()
    assert f"您看到的是第 {seen} 版" in alert and "请刷新后重试" in alert
    with httpx.Client(base_url=server) as api:
        assert api.get(f"/cases/{fresh_case['id']}", headers=auth(SUPERVISOR)).json()["version"] == before


def test_the_figures_page_draws_its_charts_and_the_quarterly_notice_prints(signed_in: Any, server: str) -> None:
    page = signed_in(SUPERVISOR)
    page.get_by_role("link", name="三率考评").click()
    page.wait_for_function("document.body.dataset.charts === 'drawn'")
    assert page.locator("#chart-units svg").count() == 1 and page.locator("#chart-months svg").count() == 1
    assert page.locator("table.scores tbody tr").count() == 4
    _screenshot(page, "figures", full_page=True)
    page.goto(f"{server}/workbench/reports/quarterly")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()  # print CSS: the notice alone
    assert page.locator("article.report h1").is_visible()


def _screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    if os.environ.get("MINQING_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(target.with_suffix(".tmp.png")), full_page=full_page)
        shutil.move(target.with_suffix(".tmp.png"), target)


def test_the_ledgers_excel_button_gives_chinese_values_and_real_date_cells(
    signed_in: Any, server: str, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    from cases.vocabulary import STATUS_LABELS

    page = signed_in(SUPERVISOR)
    page.goto(server + "/workbench/ledger")
    with page.expect_download() as download:
        page.get_by_role("link", name="导出 Excel").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("民情工作台账_") and saved.suffix == ".xlsx"
    sheet = load_workbook(saved)["民情工作台账"]
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2))
    assert rows and all(c.font.bold for c in sheet[1])
    channel, status, registered = (header.index(h) for h in ("受理渠道", "状态", "登记时间"))
    codes = {"online", "hotline", "hotline_12345", "call_110"}
    assert all(row[channel].value not in codes for row in rows)
    assert {row[status].value for row in rows} <= set(STATUS_LABELS.values())
    assert all(row[registered].is_date for row in rows)
