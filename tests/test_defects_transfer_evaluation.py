"""A department that transfers its part (转办) before reporting in has not failed to report: the
whistle evaluation counts it as transferred, its own figure, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from cases.actor import Actor
from cases.vocabulary import Role
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import HOUSING, TOWNSHIP, URBAN
from tests.test_workbench import sign_in

WATER = Actor("D-shuiwu-1", Role.DEPARTMENT, "shuiwu")


def _evaluation(driver: Driver) -> dict[str, dict]:
    return {d["department"]: d for d in driver.get("/departments/evaluation")["departments"]}


def test_a_transfer_before_reporting_in_is_counted_as_transferred_not_as_silence(driver: Driver, clock: Clock) -> None:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["zhujian", "chengguan"], reason="违建致渗水")
    clock.advance(hours=3)
    driver.act(case_id, "transfer", HOUSING, to_department="shuiwu", reason="渗水系供水管爆裂，属水务")

    figures = _evaluation(driver)
    housing, urban, water = figures["zhujian"], figures["chengguan"], figures["shuiwu"]
    assert (housing["whistled"], housing["reported_in"], housing["not_reported"]) == (1, 0, 0)
    assert housing["transferred"] == 1
    assert (urban["not_reported"], urban["transferred"]) == (1, 0)  # silent, and nothing handed on
    assert (water["whistled"], water["not_reported"], water["transferred"]) == (1, 1, 0)

    clock.advance(hours=1)
    driver.act(case_id, "report-in", WATER)
    water = _evaluation(driver)["shuiwu"]
    assert (water["reported_in"], water["not_reported"], water["reported_on_time"]) == (1, 0, 1)


def test_a_department_that_reported_in_and_then_transferred_keeps_its_report_in(driver: Driver) -> None:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["chengguan"], reason="占道经营")
    driver.act(case_id, "report-in", URBAN)
    driver.act(case_id, "transfer", URBAN, to_department="shuiwu", reason="属水务")
    urban = _evaluation(driver)["chengguan"]
    assert (urban["whistled"], urban["reported_in"], urban["not_reported"], urban["transferred"]) == (1, 1, 0, 0)


def test_the_workbench_ranking_shows_the_transfer(driver: Driver) -> None:
    case_id = driver.accepted(tier="big")
    driver.act(case_id, "whistle", TOWNSHIP, departments=["zhujian"], reason="违建")
    driver.act(case_id, "transfer", HOUSING, to_department="shuiwu", reason="属水务")
    driver.get("/departments/evaluation")  # waits for the ledger
    sign_in(driver.client, TOWNSHIP)
    page = driver.client.get("/workbench/evaluation", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert "报到前转办" in page.text
    row = next(r for r in page.text.split("<tr>") if "住房和城乡建设" in r)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    # 被吹哨 1, 已报到 0, 按时报到 0 (no rate: nothing left to answer), 未报到 0, 报到前转办 1
    assert cells[1:6] == ["1", "0", "0", "0", "1"], cells
