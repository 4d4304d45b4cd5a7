"""Notices to residents (短信, docs/notices.md): queued with the events that send them,
sent by the worker through the log sender, recorded as events in the case's history
and the feed, and stopped for a person who opted out or was erased."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson
import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from cases.case import Case
from commands.cases import Cases
from commands.notices import TRIGGERS, NoticeQueued, notice_id, queued_notices
from config.settings import Settings
from service import build_notifier, create_app
from streams.notify import Notifier
from tests.api_steps import Driver
from tests.factories import ADMIN, CLERK, GRID_LEADER, RESIDENT, DefaultReader, auth, registration
from tests.receiver import receiving
from tests.serving import MINQING, environment
from tests.test_workbench import HTML, sign_in

PHONE = "13812341234"


def history(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/cases/{case_id}/history", headers=auth(CLERK))
    assert response.status_code == 200, response.text
    return response.json()["events"]


def notices_in(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    return [e for e in history(client, case_id) if e["type"].startswith("Notice") and e["type"] != "NoticesOptedOut"]


def queued(cases: Cases, case_id: str) -> list[NoticeQueued]:
    topic = "commands.notices:NoticeQueued"
    found = [cases.mapper.to_domain_event(n) for n in cases.recorder.select_notifications(1, 10_000, topics=[topic])]
    return [e for e in found if isinstance(e, NoticeQueued) and e.case_id == case_id]


@pytest.fixture
def notifier(client: TestClient, settings: Settings) -> Iterator[Notifier]:
    worker = build_notifier(client.app.state.cases, client.app.state.read_side.views, settings)  # type: ignore[attr-defined]
    yield worker
    worker.close()


def test_registration_queues_its_notice_with_no_personal_data(client: TestClient, driver: Driver) -> None:
    case_id = driver.register()
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    [notice] = queued(cases, case_id)
    assert (notice.kind, notice.case_version, notice.originator_id) == ("registered", 1, notice_id(case_id, 1))
    person = client.get(f"/cases/{case_id}", headers=auth(CLERK)).json()["petitioner"]["person"]
    assert notice.person == person
    stored = cases.recorder.select_events(notice.originator_id)[0].state.decode()
    assert PHONE not in stored and "张秀英" not in stored and "楼顶渗水" not in stored


def test_a_save_that_cannot_write_its_notice_writes_neither(client: TestClient, driver: Driver) -> None:
    case_id = driver.accepted()
    driver.act(case_id, "rectify", GRID_LEADER, summary="已修复")
    driver.act(case_id, "verify", RESIDENT, passed=True)
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    version = cases.get_case(UUID(case_id)).version
    # The stream the closing's notice would take is already there: the notice cannot be written.
    blocker = NoticeQueued(
        originator_id=notice_id(case_id, version + 1), originator_version=1, timestamp=cases.clock(),
        case_id=case_id, case_version=version + 1, number="X", units={}, kind="closed", person="P0",
    )  # fmt: skip
    cases.save(blocker)
    refused = client.post(f"/cases/{case_id}/close", json={"summary": "已办结"}, headers=auth(GRID_LEADER))
    assert refused.status_code == 409, refused.text
    case = cases.get_case(UUID(case_id))
    assert (case.version, str(case.status)) == (version, "verified")  # no Closed without its notice
    assert [n.kind for n in queued(cases, case_id)] == ["registered", "closed"]  # only the blocker


def test_the_trigger_table_is_keyed_by_event_name_so_a_new_event_applies_once_it_exists(
    cases: Cases, clock: Any
) -> None:
    case = cases.get_case(UUID(cases.register(CLERK, **registration()).case_id))

    class Reopened(Case.Event):  # stands in for Case.Reopened, added on another branch
        def apply(self, case: Case) -> None:
            pass

    case.trigger_event(Reopened, timestamp=clock(), actor=CLERK.as_dict(), number=case.number, units=case.units)
    [notice] = queued_notices(case)
    assert (TRIGGERS["Reopened"], notice.kind, notice.case_version) == ("reopened", "reopened", case.version)


def test_the_worker_sends_through_the_log_sender_and_the_history_and_feed_show_it(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    case_id = driver.register()
    number = client.get(f"/cases/{case_id}", headers=auth(CLERK)).json()["number"]
    with capture_logs() as logs:
        counts = notifier.run_once()
    assert counts == {"sent": 1}
    [line] = [entry for entry in logs if entry["event"] == "notice_sms"]
    assert line["to"] == "138****1234" and number in line["text"]
    assert PHONE not in repr(logs)  # the number reaches the sender, never the log
    [sent] = notices_in(client, case_id)
    assert (sent["type"], sent["label"], sent["payload"]["attempt"]) == ("NoticeSent", "已发送短信", 1)
    assert sent["payload"]["code"] == "logged" and sent["payload"]["sender"] == "log"
    text = sent["payload"]["text"]
    assert number in text and "12345" in text and "张秀英" not in text and "楼顶渗水" not in text
    feed = client.get("/events", params={"type": "NoticeSent"}).json()["events"]
    assert [(e["subject"], e["casenumber"], e["data"]["label"]) for e in feed] == [
        (f"cases/{case_id}", number, "已发送短信")
    ]
    assert "NoticeSent" in [
        e["type"].rsplit(".", 1)[1] for e in client.get("/events", params={"case": case_id}).json()["events"]
    ]
    assert notifier.run_once() == {}  # sent once: nothing more to do


def test_closing_sends_the_way_to_check_and_rate(client: TestClient, driver: Driver, notifier: Notifier) -> None:
    case_id = driver.closed()
    assert notifier.run_once() == {"sent": 2}
    registered, closed = notices_in(client, case_id)
    assert (registered["payload"]["kind"], closed["payload"]["kind"]) == ("registered", "closed")
    assert "已办结" in closed["payload"]["text"] and "评价" in closed["payload"]["text"]
    assert closed["status"] == "closed"


def test_a_petitioner_who_declines_at_registration_gets_nothing_on_any_case(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    declined = driver.register(notices=False)
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    assert queued(cases, declined) == []
    assert [e["type"] for e in history(client, declined)] == ["Registered", "NoticesOptedOut"]
    [published] = client.get("/events", params={"type": "NoticesOptedOut"}).json()["events"]
    assert not re.search(r"P[0-9a-f]{32}", orjson.dumps(published).decode())  # names nobody: no linking of cases
    later = driver.register(title="同一人的第二件诉求")  # the same phone: the same person
    with capture_logs() as logs:
        assert notifier.run_once() == {"stopped": 1}
    assert not [entry for entry in logs if entry["event"] == "notice_sms"]
    [stopped] = notices_in(client, later)
    assert (stopped["label"], stopped["payload"]["stop_reason"]) == ("短信未发送", "opted_out")
    assert stopped["payload"]["stop_reason_label"] == "诉求人已退订短信通知"


def test_the_resident_opts_out_later_and_gets_nothing_more(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    case_id = driver.register()
    opted = client.post(f"/cases/{case_id}/opt-out-notices", json={}, headers=auth(RESIDENT, case_id))
    assert opted.status_code == 200, opted.text
    again = client.post(f"/cases/{case_id}/opt-out-notices", json={}, headers=auth(CLERK))
    assert again.status_code == 200 and again.json()["changed"] is False
    assert notifier.run_once() == {"stopped": 1}  # queued before the opt-out: stopped, not sent
    refused = client.post(f"/cases/{case_id}/opt-out-notices", json={}, headers=auth(GRID_LEADER))
    assert refused.status_code == 403


def test_an_erased_person_gets_nothing_and_the_worker_carries_on(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    erased_case = driver.register()
    other = driver.register(petitioner_phone="13900001111", petitioner_name="李四")
    person = client.get(f"/cases/{erased_case}", headers=auth(ADMIN)).json()["petitioner_id"]
    assert client.post(f"/persons/{person}/erase", headers=auth(ADMIN)).status_code == 200
    with capture_logs() as logs:
        assert notifier.run_once() == {"stopped": 1, "sent": 1}
    [stopped] = notices_in(client, erased_case)
    assert (stopped["type"], stopped["payload"]["stop_reason"]) == ("NoticeStopped", "erased")
    assert [e["type"] for e in notices_in(client, other)] == ["NoticeSent"]
    assert [e["to"] for e in logs if e["event"] == "notice_sms"] == ["139****1111"]


def test_a_notice_another_worker_holds_is_not_sent_twice(
    client: TestClient, driver: Driver, settings: Settings, notifier: Notifier
) -> None:
    case_id = driver.register()
    state = client.app.state  # type: ignore[attr-defined]
    other = build_notifier(state.cases, state.read_side.views, settings)
    notifier.ingest()
    held = str(notice_id(case_id, 1))
    assert notifier._claim(held)  # the first worker is sending it
    assert other.run_once() == {}  # the second sees it leased
    notifier._release(held)
    assert other.run_once() == {"sent": 1}
    assert notifier.run_once() == {}


def test_two_workers_at_once_send_each_notice_once(client: TestClient, driver: Driver, settings: Settings) -> None:
    case_ids = [driver.register(petitioner_phone=f"1390000{i:04d}") for i in range(12)]
    state = client.app.state  # type: ignore[attr-defined]
    workers = [build_notifier(state.cases, state.read_side.views, settings) for _ in range(2)]
    start = threading.Barrier(2)
    totals: list[dict[str, int]] = []

    def work(worker: Notifier) -> None:
        start.wait()
        totals.append(dict(worker.run_once()))

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    with capture_logs() as logs:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(t.get("sent", 0) for t in totals) == 12, totals
    sent_to = [e["notice"] for e in logs if e["event"] == "notice_sms"]
    assert sorted(sent_to) == sorted(str(notice_id(c, 1)) for c in case_ids)  # each once
    for case_id in case_ids:
        assert [e["type"] for e in notices_in(client, case_id)] == ["NoticeSent"]


def test_minqing_notify_once_sends_what_is_due_and_a_bad_sender_is_refused(
    client: TestClient, settings: Settings
) -> None:
    case_id = Driver(client).register()
    env = environment(settings)
    refused = subprocess.run(
        [*MINQING, "notify", "--once"], env={**env, "MINQING_NOTICE_SENDER": "http"}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "MINQING_SMS_URL" in refused.stderr
    sent = subprocess.run([*MINQING, "notify", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    assert "sent 1" in sent.stdout and "138****1234" in sent.stdout + sent.stderr
    assert PHONE not in sent.stdout + sent.stderr
    assert [e["type"] for e in notices_in(client, case_id)] == ["NoticeSent"]


def test_the_embedded_setup_sends_notices_from_the_http_process(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, notices="in-process"), log_cache=False)
    with TestClient(app) as embedded:
        case_id = Driver(embedded).register()
        deadline = time.monotonic() + 30
        while not notices_in(embedded, case_id):
            assert time.monotonic() < deadline, "the embedded worker sent nothing"
            time.sleep(0.1)
        assert [e["type"] for e in notices_in(embedded, case_id)] == ["NoticeSent"]


def test_the_workbench_case_page_shows_the_sms_and_offers_the_opt_out(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    case_id = driver.register()
    notifier.run_once()
    sign_in(client, CLERK)
    page = client.get(f"/workbench/cases/{case_id}", headers=HTML)
    assert page.status_code == 200
    assert "已发送短信" in page.text and "受理回执" in page.text and "短信内容" in page.text
    assert "退订短信通知" in page.text  # the command's form, from the command table
    assert "opted_out" not in page.text


def test_a_webhook_subscribed_to_notice_events_receives_them(settings: Settings) -> None:
    local = dataclasses.replace(settings, webhook_allow_local=True, webhook_backoff=(0.05,))
    app = create_app(local, log_cache=False)
    with TestClient(app) as hooked, receiving() as receiver:
        hooked.auth = DefaultReader()
        created = hooked.post("/webhooks", json={"url": receiver.url, "types": ["NoticeSent"]})
        assert created.status_code == 201, created.text
        case_id = Driver(hooked).register()
        worker = build_notifier(app.state.cases, app.state.read_side.views, local)
        try:
            assert worker.run_once() == {"sent": 1}
        finally:
            worker.close()
        receiver.wait_for(1)
    [received] = receiver.accepted
    event = received.event
    assert (event["type"], event["subject"], event["caseversion"]) == (
        "cn.minqing.case.NoticeSent",
        f"cases/{case_id}",
        1,
    )
    assert event["data"]["label"] == "已发送短信" and PHONE not in received.body.decode()


def test_declining_notices_is_part_of_what_an_idempotency_key_stands_for(client: TestClient) -> None:
    headers = {"Idempotency-Key": "intake-notices-1", **auth(CLERK)}
    first = client.post("/cases", json=registration(), headers=headers)
    assert first.status_code == 201
    same = client.post("/cases", json=registration(notices=True), headers=headers)  # the default, said aloud
    assert same.status_code == 201 and same.json()["case_id"] == first.json()["case_id"]
    other = client.post("/cases", json=registration(notices=False), headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_duplicate_closed_with_its_main_case_tells_its_own_petitioner(
    client: TestClient, driver: Driver, notifier: Notifier
) -> None:
    main = driver.accepted()
    duplicate = driver.register(petitioner_name="李建国", petitioner_phone="13900001111")
    driver.act(duplicate, "link-duplicate", CLERK, main_case=main, reason="同一楼栋渗水，并案办理")
    driver.act(main, "rectify", GRID_LEADER, summary="已修复")
    driver.act(main, "verify", RESIDENT, passed=True)
    driver.act(main, "close", GRID_LEADER, summary="销号")
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    assert [n.kind for n in queued(cases, duplicate)] == ["registered", "closed"]
    notifier.run_once()
    closed = notices_in(client, duplicate)[-1]
    assert closed["payload"]["kind"] == "closed" and "评价" in closed["payload"]["text"]


def test_a_reopened_case_tells_its_petitioner_it_is_handled_again(client: TestClient, driver: Driver) -> None:
    case_id = driver.closed(satisfaction="dissatisfied")
    driver.act(case_id, "reopen", CLERK, reason="居民不满意：仍漏水")
    cases: Cases = client.app.state.cases  # type: ignore[attr-defined]
    assert [n.kind for n in queued(cases, case_id)] == ["registered", "closed", "reopened"]
