"""Recurring problems (每月一题): the month's most frequent problems by category and place, and
repeat petitions from one place or one person (a keyed hash, never in clear). Through HTTP, on
both stores."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from replay.rebuild import rebuild
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import CLERK, GRID_LEADER, OTHER_STREET_GRID, OTHER_TOWNSHIP, RESIDENT, TOWNSHIP, auth

ROOF = "马限社区3栋楼顶"
SECOND_GRID = "35010500100102"  # 马限社区第2网格: the same community, another grid
PERSISTENT = "13700007777"  # a resident who calls again and again


def petition(driver: Driver, phone: str, *, category: str = "housing", location: str = ROOF, **more: Any) -> str:
    return driver.register(
        category=category, location=location, petitioner_phone=phone, petitioner_name="赵大爷", **more
    )


def month_of_petitions(driver: Driver, clock: Clock) -> dict[str, str]:
    """February: the persistent resident about the roof. March: the roof leak from three homes (one
    linked as a duplicate), the persistent resident again about noise, parking in another grid, and
    a petition in another street. April: one more, outside the month."""
    clock.now = clock.now.replace(month=2, day=10)
    february = petition(driver, PERSISTENT)
    clock.now = clock.now.replace(month=3, day=2)
    roof = petition(driver, "13900001111")
    second = petition(driver, "13900002222")
    third = petition(driver, "13900003333")
    driver.act(third, "link-duplicate", CLERK, main_case=roof, reason="同一楼顶渗水")
    noise = petition(driver, PERSISTENT, category="noise", location="马限社区5栋")
    parking = petition(driver, "13900004444", category="parking", location="马限路口", grid=SECOND_GRID)
    elsewhere = petition(driver, "13900005555", grid=OTHER_STREET_GRID, location="青洲社区1栋")
    clock.now = clock.now.replace(month=4, day=1)
    april = petition(driver, "13900006666")
    clock.now = clock.now.replace(month=3, day=20)
    return {
        "february": february, "roof": roof, "second": second, "third": third, "noise": noise,
        "parking": parking, "elsewhere": elsewhere, "april": april,
    }  # fmt: skip


def test_the_months_problems_and_its_repeat_petitions(client: TestClient, driver: Driver, clock: Clock) -> None:
    ids = month_of_petitions(driver, clock)
    body = driver.get("/recurring", month="2026-03")

    assert (body["month"], body["window"]) == ("2026-03", {"from_month": "2026-01", "to_month": "2026-03", "months": 3})
    assert (body["petitions"], body["problems"]) == (6, 5)  # the linked duplicate is its main case's problem
    assert [(c["category"], c["category_name"], c["petitions"], c["problems"]) for c in body["by_category"]] == [
        ("housing", "房屋质量与维修", 4, 3),
        ("noise", "噪声扰民", 1, 1),
        ("parking", "停车与交通秩序", 1, 1),
    ]
    top = body["by_place"][0]
    assert (top["category"], top["unit"], top["name"], top["petitions"], top["problems"]) == (
        "housing", "350105001001", "马限社区", 3, 2,
    )  # fmt: skip
    assert {c["case_id"] for c in top["cases"]} == {ids["roof"], ids["second"], ids["third"]}
    assert body["candidate"] == top
    (linked,) = [c for c in top["cases"] if c["case_id"] == ids["third"]]
    assert linked["main_number"] is not None

    # The same roof in February and March: a repeat place (the window reaches back three months).
    (place,) = body["repeat_places"]
    assert (place["location"], place["grid"], place["petitions"], place["problems"]) == (ROOF, "35010500100101", 4, 3)
    assert ids["february"] in {c["case_id"] for c in place["cases"]}
    # The persistent resident: by a keyed hash, with the masked name the ledger keeps; never in clear.
    (person,) = body["repeat_persons"]
    assert re.fullmatch(r"[0-9a-f]{16}", person["person"])
    assert (person["petitions"], person["categories"], person["petitioner"]) == (2, ["housing", "noise"], "赵**")
    assert {c["case_id"] for c in person["cases"]} == {ids["february"], ids["noise"]}
    petitioner_id = client.get(f"/cases/{ids['noise']}").json()["petitioner_id"]
    text = client.get("/recurring", params={"month": "2026-03"}, headers=auth(CLERK)).text
    assert PERSISTENT not in text and PERSISTENT[-4:] + '"' not in text and petitioner_id not in text
    assert "赵大爷" not in text
    # The same person reads the same in every report.
    april = driver.get("/recurring", month="2026-04", window=3)
    assert [p["person"] for p in april["repeat_persons"]] == []  # nothing from them in April
    assert driver.get("/recurring", month="2026-03", window=1)["repeat_persons"] == []  # one each in March
    again = driver.get("/recurring", month="2026-03", level="grid")
    assert again["repeat_persons"][0]["person"] == person["person"]
    assert again["by_place"][0]["unit"] == "35010500100101" and again["by_place"][0]["name"] == "马限社区第1网格"
    # A higher threshold, and the street level.
    assert driver.get("/recurring", month="2026-03", min_count=5)["repeat_places"] == []
    street = driver.get("/recurring", month="2026-03", level="street")
    assert street["by_place"][0]["unit"] == "350105001" and street["by_place"][0]["petitions"] == 3


def test_each_caller_sees_its_own_area(client: TestClient, driver: Driver, clock: Clock) -> None:
    month_of_petitions(driver, clock)

    def seen(actor: Actor) -> Any:
        response = client.get("/recurring", params={"month": "2026-03", "wait_for": driver.position},
                              headers=auth(actor))  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    assert seen(TOWNSHIP)["petitions"] == 5 and seen(OTHER_TOWNSHIP)["petitions"] == 0
    elsewhere = seen(Actor("T2011", Role.TOWNSHIP, "350105002"))  # the street of OTHER_STREET_GRID
    assert elsewhere["petitions"] == 1 and elsewhere["repeat_persons"] == elsewhere["repeat_places"] == []
    # A grid leader: their grids and the cases assigned to them.
    assert seen(GRID_LEADER)["petitions"] == 4
    response = client.get("/recurring", headers=auth(RESIDENT, "x"))
    assert response.status_code == 403 and response.json()["error"]["code"] == "role_not_allowed"


def test_bad_input_is_refused_with_the_field_and_a_reason(client: TestClient) -> None:
    for params, field in (
        ({"month": "2026-13"}, "month"),
        ({"month": "March"}, "month"),
        ({"month": "2026-3"}, "month"),
        ({"month": "2026-03", "level": "district"}, "query.level"),
        ({"month": "2026-03", "window": 0}, "query.window"),
        ({"month": "2026-03", "min_count": 1}, "query.min_count"),
        ({"month": "2026-03", "limit": 51}, "query.limit"),
    ):
        response = client.get("/recurring", params=params)
        assert response.status_code == 422, (params, response.text)
        (error,) = response.json()["error"]["fields"]
        assert error["field"] == field and re.search(r"[\u4e00-\u9fff]", error["reason"]), (params, error)


def test_an_empty_month_and_this_month_by_default(client: TestClient, driver: Driver) -> None:
    body = driver.get("/recurring")
    assert body["month"] == "2026-03" and body["petitions"] == 0 and body["candidate"] is None
    assert body["by_place"] == body["repeat_places"] == body["repeat_persons"] == []


def test_a_rebuild_from_the_log_gives_the_same_answer(
    client: TestClient, driver: Driver, clock: Clock, settings: Settings
) -> None:
    month_of_petitions(driver, clock)
    before = driver.get("/recurring", month="2026-03")
    app = client.app.state  # type: ignore[attr-defined]
    outcome, _ = rebuild(app.cases, settings, app.read_side.views, "ledger")
    assert outcome.equal is True and outcome.swapped, outcome
    assert driver.get("/recurring", month="2026-03") == before


def test_the_workbench_page_shows_the_months_problem(client: TestClient, driver: Driver, clock: Clock) -> None:
    month_of_petitions(driver, clock)
    driver.get("/ledger")  # caught up
    client.cookies.set("minqing_session", auth(CLERK)["Authorization"].removeprefix("Bearer "))
    page = client.get("/workbench/recurring", params={"month": "2026-03"}, headers={"Authorization": ""})
    assert page.status_code == 200, page.text
    assert "每月一题" in page.text and 'id="candidate"' in page.text and "房屋质量与维修" in page.text
    assert ROOF in page.text and PERSISTENT not in page.text
    ledger = client.get("/workbench/ledger", headers={"Authorization": ""})
    assert 'href="/workbench/recurring"' in ledger.text  # in the nav
    bad = client.get("/workbench/recurring", params={"month": "2026-13"}, headers={"Authorization": ""})
    assert bad.status_code == 422 and "月份" in bad.text
