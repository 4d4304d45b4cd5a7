"""Duplicates (重复件 / 并案): several residents report the same leak. A duplicate is linked to a
main case, follows it (its status and its closing), keeps its own petitioner's feedback and rating,
and the figures count the problem once and the residents each. Through HTTP, on both stores."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cases.actor import Actor
from config.settings import Settings
from replay.rebuild import rebuild
from tests.api_steps import Driver
from tests.conftest import Clock
from tests.factories import (
    CLERK,
    GRID_LEADER,
    LEADER_OF_GRID,
    OTHER_STREET_GRID,
    OTHER_TOWNSHIP,
    RESIDENT,
    TOWNSHIP,
    auth,
)

NEIGHBOUR = {"petitioner_name": "李建国", "petitioner_phone": "13900001111", "location": "马限社区3栋502"}
UPSTAIRS = {"petitioner_name": "王桂兰", "petitioner_phone": "13900002222", "location": "马限社区3栋602"}


def send(client: TestClient, case_id: str, command: str, actor: Actor, **body: Any) -> Any:
    return client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))


def link(
    driver: Driver, duplicate: str, main: str, actor: Actor = CLERK, reason: str = "同一楼栋渗水，并案办理"
) -> None:
    driver.act(duplicate, "link-duplicate", actor, main_case=main, reason=reason)


def case(client: TestClient, case_id: str) -> dict[str, Any]:
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 200, response.text
    return response.json()


def row(driver: Driver, case_id: str) -> dict[str, Any]:
    (found,) = [r for r in driver.get("/ledger", limit=200)["items"] if r["case_id"] == case_id]
    return found


def refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def close(driver: Driver, case_id: str) -> None:
    driver.act(case_id, "rectify", GRID_LEADER, summary="已修复屋面防水")
    driver.act(case_id, "verify", RESIDENT, passed=True)
    driver.act(case_id, "close", GRID_LEADER, summary="整改达标，居民检验通过")


def test_a_duplicate_follows_its_main_case_and_closes_with_it(client: TestClient, driver: Driver) -> None:
    main = driver.accepted()
    number = case(client, main)["number"]
    duplicate = driver.register(**NEIGHBOUR)
    link(driver, duplicate, number)  # by the number on the receipt

    shown = case(client, duplicate)
    assert (shown["main_case"], shown["main_number"], shown["status"]) == (main, number, "registered")
    assert case(client, main)["duplicates"] == [duplicate]
    # The ledger shows it where its main case stands, and the main case counts it.
    assert (row(driver, duplicate)["main_number"], row(driver, duplicate)["status"]) == (number, "in_progress")
    assert row(driver, main)["duplicate_count"] == 1
    assert [r["case_id"] for r in driver.get("/ledger", main_number=number)["items"]] == [duplicate]
    # Not an open item of its own on the 13710 board.
    board = driver.get("/board", by="street")
    assert [c["case_id"] for c in board["cases"]] == [main] and board["totals"]["cases"] == 1

    # It is not worked on its own while linked.
    message = refused(send(client, duplicate, "classify", CLERK, handling_type="committed", tier="small"), 409,
                      "linked_as_duplicate")  # fmt: skip
    assert number in message and "取消并案" in message
    refused(send(client, duplicate, "supervise", Actor("SV001", "supervision"), responsible_unit="罗星街道",
                 new_due="2026-03-20", notice="请抓紧办理"), 409, "linked_as_duplicate")  # fmt: skip

    driver.act(main, "rectify", GRID_LEADER, summary="已修复屋面防水")
    assert row(driver, duplicate)["status"] == "rectified"  # follows
    driver.act(main, "verify", RESIDENT, passed=True)
    driver.act(main, "close", GRID_LEADER, summary="整改达标，居民检验通过")

    closed = case(client, duplicate)
    assert closed["status"] == "closed" and closed["closed_at"] == case(client, main)["closed_at"]
    assert row(driver, duplicate)["status"] == "closed" and row(driver, duplicate)["closed_date"] == "2026-03-02"
    history = client.get(f"/cases/{duplicate}/history").json()["events"]
    assert [(e["type"], e["label"]) for e in history][1:] == [
        ("LinkedAsDuplicate", "并案（作为重复件并入主件）"),
        ("ClosedWithMain", "随主件销号"),
    ]
    assert history[1]["payload"]["reason"] == "同一楼栋渗水，并案办理" and history[1]["actor"]["id"] == CLERK.id
    assert history[1]["holder"] == f"main:{number}"
    assert history[2]["payload"]["main_number"] == number and number in history[2]["payload"]["summary"]
    main_history = client.get(f"/cases/{main}/history").json()["events"]
    attached = [e for e in main_history if e["type"] == "DuplicateAttached"]
    assert attached[0]["label"] == "并入重复件" and attached[0]["payload"]["duplicate_case"] == duplicate

    # Each petitioner still gets feedback and rates their own case.
    driver.act(duplicate, "feedback", CLERK, method="hotline_callback", content="已随主件修复，回访告知")
    driver.act(duplicate, "rate", Actor("R13900001111", "resident"), satisfaction="basically_satisfied")
    assert row(driver, duplicate)["rating"] == "basically_satisfied"
    refused(send(client, duplicate, "rate", CLERK, satisfaction="satisfied"), 409, "already_rated")

    # The feed carries every new event, with its Chinese label.
    events = driver.get("/events", case=duplicate)["events"] + driver.get("/events", case=main)["events"]
    types = {e["type"].removeprefix("cn.minqing.case.") for e in events}
    assert {"LinkedAsDuplicate", "DuplicateAttached", "ClosedWithMain"} <= types


def test_a_wrong_link_is_undone_and_the_case_resumes_where_it_stood(client: TestClient, driver: Driver) -> None:
    main = driver.accepted()
    duplicate = driver.register(**NEIGHBOUR)
    driver.act(duplicate, "classify", CLERK, handling_type="committed", tier="small")
    link(driver, duplicate, main)
    assert row(driver, duplicate)["status"] == "in_progress"
    version = case(client, duplicate)["version"]

    refused(send(client, duplicate, "unlink-duplicate", CLERK), 422, "validation_failed")
    driver.act(duplicate, "unlink-duplicate", CLERK, reason="并案有误：不是同一楼栋")
    shown = case(client, duplicate)
    assert (shown["status"], shown["main_case"], shown["version"]) == ("classified", None, version + 1)
    assert case(client, main)["duplicates"] == []
    assert (row(driver, duplicate)["status"], row(driver, duplicate)["main_number"]) == ("classified", None)
    assert row(driver, main)["duplicate_count"] == 0
    assert {c["case_id"] for c in driver.get("/board")["cases"]} == {main, duplicate}
    history = client.get(f"/cases/{duplicate}/history").json()["events"]
    assert history[-1]["label"] == "取消并案" and history[-1]["payload"]["status"] == "classified"
    assert history[-1]["holder"] == "intake"
    main_history = client.get(f"/cases/{main}/history").json()["events"]
    assert main_history[-1]["type"] == "DuplicateDetached"
    assert main_history[-1]["payload"]["reason"] == "并案有误：不是同一楼栋"

    # It is worked on its own again, and closing the main case no longer closes it.
    driver.act(duplicate, "assign", CLERK, assignee=LEADER_OF_GRID)
    close(driver, main)
    assert case(client, duplicate)["status"] == "assigned"
    refused(send(client, duplicate, "unlink-duplicate", CLERK, reason="再取消一次"), 409, "not_a_duplicate")


def test_links_that_make_no_sense_are_refused_and_nothing_is_written(client: TestClient, driver: Driver) -> None:
    main = driver.accepted()
    duplicate = driver.register(**NEIGHBOUR)
    other = driver.register(**UPSTAIRS)
    elsewhere = driver.accepted(grid=OTHER_STREET_GRID)
    link(driver, other, main)
    before = {c: case(client, c)["version"] for c in (main, duplicate, other, elsewhere)}

    def link_refused(case_id: str, main_case: str, status: int, code: str, actor: Actor = CLERK) -> str:
        return refused(send(client, case_id, "link-duplicate", actor, main_case=main_case, reason="同一问题"),
                       status, code)  # fmt: skip

    assert "它自己" in link_refused(duplicate, duplicate, 409, "duplicate_of_itself")
    assert "直接并入主件" in link_refused(duplicate, other, 409, "main_case_is_duplicate")
    assert "请先取消" in link_refused(main, duplicate, 409, "case_has_duplicates")
    assert "已并入" in link_refused(other, elsewhere, 409, "already_linked")
    # The main case must be in the caller's area: a township links within its own street only.
    assert "管辖范围" in link_refused(duplicate, elsewhere, 409, "main_case_not_in_area", TOWNSHIP)
    link_refused(duplicate, main, 403, "out_of_scope", OTHER_TOWNSHIP)
    link_refused(duplicate, main, 403, "role_not_allowed", GRID_LEADER)
    # Bad input: an unknown main case is the field's fault (422), as is a malformed one.
    unknown = link_refused(duplicate, "350105001-20260302-ZZZZZ", 422, "invalid_reference")
    assert "350105001-20260302-ZZZZZ" in unknown
    link_refused(duplicate, "3fa85f64-5717-4562-b3fc-2c963f66afa6", 422, "invalid_reference")
    response = send(client, duplicate, "link-duplicate", CLERK, main_case="../etc/passwd", reason="同一问题")
    refused(response, 422, "validation_failed")
    assert response.json()["error"]["fields"][0]["field"] == "main_case"
    response = send(client, duplicate, "link-duplicate", CLERK, main_case=main, reason="  ")
    assert response.json()["error"]["fields"][0]["field"] == "reason"
    # A closed main case takes no more duplicates.
    driver.act(other, "unlink-duplicate", CLERK, reason="并案有误")
    before[main] += 1
    before[other] += 1
    close(driver, main)
    before[main] += 3
    assert "已销号" in link_refused(duplicate, main, 409, "main_case_closed")
    assert {c: case(client, c)["version"] for c in before} == before


def test_a_main_case_closes_all_its_duplicates_in_one_transaction(client: TestClient, driver: Driver) -> None:
    main = driver.accepted()
    duplicates = [driver.register(**NEIGHBOUR), driver.register(**UPSTAIRS)]
    for duplicate in duplicates:
        link(driver, duplicate, main, TOWNSHIP)
    close(driver, main)
    head = driver.position
    positions = []
    for duplicate in duplicates:
        events = client.get(f"/cases/{duplicate}/history").json()["events"]
        assert events[-1]["type"] == "ClosedWithMain" and events[-1]["actor"]["id"] == GRID_LEADER.id
        positions.append(events[-1]["position"])
    main_closed = client.get(f"/cases/{main}/history").json()["events"][-1]
    assert main_closed["type"] == "Closed"
    # Saved together: the main case's closing, then each duplicate's, next to each other in the log;
    # the answer's position covers them all (read-your-writes for the duplicates' rows too).
    assert sorted([main_closed["position"], *positions]) == list(range(main_closed["position"], head + 1))
    assert all(row(driver, d)["status"] == "closed" for d in duplicates)


def test_the_rates_count_the_problem_once_and_every_residents_rating(client: TestClient, driver: Driver) -> None:
    """Worked numbers (docs/read-models.md, "Duplicates in the figures"): problem A with two
    duplicates B and C, and problem D whose first fix failed.

    received 4 (every petition), problems 2, duplicates 2; dispatched 2, responded 2 (A, D);
    closed 2 problems; 解决率 = resolved main cases ÷ rated main cases = 1 (A) ÷ 2 (A, D) = 0.5;
    满意率 = satisfied + basically satisfied ÷ every rating = (A, C + D) 3 ÷ 4 (A, B, C, D) = 0.75;
    response 2 ÷ 2 = 1.0; composite = 100 × (0.30 × 1 + 0.35 × 0.5 + 0.35 × 0.75) = 73.75."""
    a = driver.accepted()
    b, c = driver.register(**NEIGHBOUR), driver.register(**UPSTAIRS)
    link(driver, b, a)
    link(driver, c, a)
    close(driver, a)
    driver.act(a, "rate", RESIDENT, satisfaction="satisfied")
    for duplicate, phone, satisfaction in ((b, "13900001111", "dissatisfied"), (c, "13900002222", "satisfied")):
        driver.act(duplicate, "feedback", CLERK, method="hotline_callback", content="回访")
        driver.act(duplicate, "rate", Actor(f"R{phone}", "resident"), satisfaction=satisfaction)
    d = driver.closed(satisfaction="basically_satisfied", fail_first=True)
    assert d

    (group,) = driver.get("/scores", by="street")["groups"]
    counts = group["counts"]
    assert {k: counts[k] for k in ("received", "problems", "duplicates", "dispatched", "responded", "closed")} == {
        "received": 4, "problems": 2, "duplicates": 2, "dispatched": 2, "responded": 2, "closed": 2,
    }  # fmt: skip
    assert (counts["callbacks"], counts["problem_callbacks"], counts["resolved"]) == (4, 2, 1)
    assert (counts["satisfied"], counts["basically_satisfied"], counts["dissatisfied"]) == (2, 1, 1)
    assert (group["response_rate"], group["resolution_rate"], group["satisfaction_rate"]) == (1.0, 0.5, 0.75)
    assert group["composite_score"] == 73.75

    report = driver.get("/reports/monthly", period="2026-03", unit="350105001")
    figures = report["figures"]
    assert (figures["received"], figures["problems"], figures["duplicates"], figures["closed"]) == (4, 2, 2, 2)
    assert figures["open_at_end"] == 0
    assert report["rates"]["resolution_rate"] == 0.5 and report["rates"]["satisfaction_rate"] == 0.75


def test_a_rebuild_from_the_log_gives_the_same_rows(client: TestClient, driver: Driver, settings: Settings,
                                                    clock: Clock) -> None:  # fmt: skip
    main = driver.accepted()
    kept, wrong = driver.register(**NEIGHBOUR), driver.register(**UPSTAIRS)
    link(driver, kept, main)
    link(driver, wrong, main)
    clock.advance(hours=2)
    driver.act(wrong, "unlink-duplicate", CLERK, reason="并案有误")
    driver.act(main, "rectify", GRID_LEADER, summary="已修复")
    still_open = driver.accepted()
    link(driver, driver.register(**UPSTAIRS), still_open, TOWNSHIP)
    driver.get("/ledger")  # caught up
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    before = views.query("SELECT * FROM ledger_cases ORDER BY case_id")
    states = views.query("SELECT * FROM board_states ORDER BY case_id, since_version")
    app = client.app.state  # type: ignore[attr-defined]
    outcome, _ = rebuild(app.cases, settings, views, "ledger")
    assert outcome.equal is True and outcome.swapped, outcome
    assert views.query("SELECT * FROM ledger_cases ORDER BY case_id") == before
    assert views.query("SELECT * FROM board_states ORDER BY case_id, since_version") == states
    # A linked duplicate never has an open board state; the unlinked one has one again.
    open_states = {r["case_id"] for r in states if r["span_to"] == 2**62}
    assert kept not in open_states and {wrong, main, still_open} <= open_states


def test_the_workbench_offers_linking_and_shows_the_main_case(client: TestClient, driver: Driver) -> None:
    main = driver.accepted()
    duplicate = driver.register(**NEIGHBOUR)
    number = case(client, main)["number"]
    client.cookies.set("minqing_session", auth(CLERK)["Authorization"].removeprefix("Bearer "))
    page = client.get(f"/workbench/cases/{duplicate}", headers={"Authorization": ""})
    assert page.status_code == 200 and "并案" in page.text and 'name="main_case"' in page.text
    link(driver, duplicate, number)
    page = client.get(f"/workbench/cases/{duplicate}", params={"wait_for": driver.position})
    assert "并案（作为重复件并入主件）" in page.text and 'id="main-case"' in page.text and number in page.text
    # While it follows its main case, only what it still takes is offered: no classify form.
    assert f'action="/workbench/cases/{duplicate}/unlink-duplicate"' in page.text
    assert f'action="/workbench/cases/{duplicate}/classify"' not in page.text
    assert 'id="duplicates"' in client.get(f"/workbench/cases/{main}").text
    # Sent anyway, the case refuses it with the clerk's sentence.
    form = client.post(f"/workbench/cases/{duplicate}/classify", data={"handling_type": "committed", "tier": "small",
                       "csrf": page.text.split('name="csrf" value="')[1].split('"')[0]})  # fmt: skip
    assert form.status_code == 409 and "取消并案" in form.text


def test_the_demo_district_has_merged_cases_and_a_recurring_problem(client: TestClient, clock: Clock) -> None:
    from datetime import UTC, datetime

    from demo.stories import load_demo

    now = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    cases = client.app.state.cases  # type: ignore[attr-defined]
    summary = load_demo(cases, count=200, now=now)
    cases.clock = clock
    clock.now = now
    head = cases.recorder.max_notification_id()
    assert summary["merged"] >= 6 and summary["closed_with_main"] >= 2 and summary["unlinked"] == 1

    rows = client.get("/ledger", params={"wait_for": head, "wait_timeout": 30, "limit": 200}).json()["items"]
    rows += client.get("/ledger", params={"limit": 200, "sort": "number"}).json()["items"]
    linked = {r["case_id"]: r for r in rows if r["main_number"]}
    assert len(linked) == summary["merged"]
    assert any(r["status"] == "closed" and r["rating"] for r in linked.values())  # closed with it, rated
    mains = {r["number"]: r for r in rows if r["duplicate_count"]}
    assert {r["main_number"] for r in linked.values()} == set(mains)
    assert sum(r["duplicate_count"] for r in mains.values()) == len(linked)
    board = client.get("/board", params={"limit": 1000}).json()
    assert board["cases"] and not {c["case_id"] for c in board["cases"]} & set(linked)
    streets = client.get("/scores", params={"by": "street"}).json()["groups"]
    assert sum(g["counts"]["duplicates"] for g in streets) == len(linked)

    # This month: the problem reported again these last days is the month's candidate, and its first
    # petitioner, who called again, is a repeat petitioner.
    body = client.get("/recurring", params={"month": "2026-11"}).json()
    assert body["candidate"]["petitions"] >= 3 and body["candidate"]["petitions"] > body["candidate"]["problems"]
    assert any(c["main_number"] for c in body["candidate"]["cases"])
    assert body["repeat_persons"] and body["repeat_places"]


def test_a_link_racing_the_main_cases_closing_never_leaves_a_duplicate_behind(
    client: TestClient, driver: Driver
) -> None:
    import threading

    for _ in range(3):
        main = driver.accepted()
        driver.act(main, "rectify", GRID_LEADER, summary="已修复")
        driver.act(main, "verify", RESIDENT, passed=True)
        duplicate = driver.register(**NEIGHBOUR)
        start = threading.Barrier(2)
        answers: dict[str, int] = {}

        def run(
            name: str, case_id: str, command: str, actor: Actor, body: dict[str, Any],
            start: threading.Barrier = start, answers: dict[str, int] = answers,
        ) -> None:  # fmt: skip
            start.wait()
            answers[name] = send(client, case_id, command, actor, **body).status_code

        threads = [
            threading.Thread(target=run, args=("close", main, "close", GRID_LEADER, {"summary": "销号"})),
            threading.Thread(
                target=run, args=("link", duplicate, "link-duplicate", CLERK, {"main_case": main, "reason": "同一问题"})
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers["close"] == 200 and answers["link"] in (200, 409), answers
        shown = case(client, duplicate)
        if answers["link"] == 200:  # linked before the closing: closed with it
            assert shown["main_case"] == main and shown["status"] == "closed"
            assert case(client, main)["duplicates"] == [duplicate]
        else:  # the main case was closed first: refused, nothing written
            assert shown["main_case"] is None and shown["status"] == "registered" and shown["version"] == 1
