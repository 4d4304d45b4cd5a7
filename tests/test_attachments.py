"""Attachments as evidence, through HTTP on both stores: each stage with its roles and statuses,
types read from the content, the size cap, GPS stripped, the case's access rules, erasure, and
the attachment in the history, the feed and the ledger."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import Settings
from service import create_app
from tests.api_steps import OTHER_STREET_LEADER, Driver
from tests.evidence_files import PDF, has_gps, jpeg, jpeg_with_xmp_location, png, webp
from tests.factories import ADMIN, AUDITOR, CLERK, GRID_LEADER, RESIDENT, TOWNSHIP, DefaultReader, auth

MAX = 200 * 1024


@pytest.fixture
def files_settings(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, attachments_path=tmp_path / "files", attachment_max_bytes=MAX)


@pytest.fixture
def web(files_settings: Settings, clock) -> Iterator[TestClient]:
    app = create_app(files_settings, log_cache=False)
    with TestClient(app) as client:
        app.state.cases.clock = clock
        client.auth = DefaultReader()  # requests without their own token read as an auditor
        yield client


@pytest.fixture
def drive(web: TestClient) -> Driver:
    return Driver(web)


def upload(client: TestClient, case_id: str, actor: Actor, data: bytes, stage: str, name: str = "photo.jpg",
           content_type: str = "image/jpeg", expect: int = 201) -> dict:  # fmt: skip
    response = client.post(
        f"/cases/{case_id}/attachments",
        params={"stage": stage, "name": name},
        content=data,
        headers={**auth(actor, case_id), "Content-Type": content_type},
    )
    assert response.status_code == expect, response.text
    return response.json()


def test_each_stage_takes_its_files_from_its_roles(drive: Driver, web: TestClient) -> None:
    case_id = drive.register()
    reg = upload(web, case_id, CLERK, jpeg(), "registration", "现场照片.jpg")
    assert reg["attachment"]["stage"] == "registration" and reg["changed"]
    drive.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    drive.act(case_id, "assign", CLERK, assignee=GRID_LEADER.id)
    drive.act(case_id, "accept", GRID_LEADER)
    upload(web, case_id, GRID_LEADER, png(), "progress", "进展.png", "image/png")
    upload(web, case_id, GRID_LEADER, jpeg(colour=(1, 2, 3)), "before", "整改前.jpg")
    upload(web, case_id, TOWNSHIP, PDF, "progress", "会议纪要.pdf", "application/pdf")
    drive.act(case_id, "rectify", GRID_LEADER, summary="已修复屋面防水")
    upload(web, case_id, GRID_LEADER, webp(), "after", "整改后.webp", "image/webp")
    upload(web, case_id, RESIDENT, jpeg(colour=(9, 9, 9)), "verification", "检验.jpg")

    listed = web.get(f"/cases/{case_id}/attachments", headers=auth(CLERK)).json()["attachments"]
    assert [a["stage"] for a in listed] == ["registration", "progress", "before", "progress", "after", "verification"]
    assert [a["content_type"] for a in listed] == [
        "image/jpeg", "image/png", "image/jpeg", "application/pdf", "image/webp", "image/jpeg",
    ]  # fmt: skip
    # A petitioner's file loses its name (it could name them, and the log cannot forget); the site's keeps it.
    assert listed[0]["name"] == "登记材料.jpg" and listed[0]["added_by"]["role"] == "intake_clerk"
    assert listed[1]["name"] == "进展.png" and listed[5]["name"] == "居民检验.jpg"
    assert listed[3]["added_by"] == {"id": TOWNSHIP.id, "role": "township", "unit": TOWNSHIP.unit}

    pdf = web.get(listed[3]["href"], headers=auth(CLERK))
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    image = web.get(listed[1]["href"], headers=auth(CLERK))
    assert image.headers["content-type"] == "image/png" and image.headers["content-disposition"].startswith("inline")
    assert hashlib.sha256(image.content).hexdigest() == listed[1]["sha256"]


def test_a_stage_refuses_the_wrong_role_and_the_wrong_status(drive: Driver, web: TestClient) -> None:
    case_id = drive.register()
    refused = upload(web, case_id, CLERK, jpeg(), "after", expect=409)
    assert refused["error"]["code"] == "illegal_transition" and "整改后" in refused["error"]["message"]
    drive.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    drive.act(case_id, "assign", CLERK, assignee=GRID_LEADER.id)
    drive.act(case_id, "accept", GRID_LEADER)
    resident = upload(web, case_id, RESIDENT, jpeg(), "before", expect=403)
    assert resident["error"]["code"] == "actor_not_allowed"
    # The door: a grid leader of another street may not even send it (the case is not theirs).
    other = upload(web, case_id, Actor(OTHER_STREET_LEADER, Role.GRID_LEADER), jpeg(), "progress", expect=403)
    assert other["error"]["code"] == "out_of_scope"
    unknown = upload(web, case_id, GRID_LEADER, jpeg(), "sideways", expect=422)
    assert unknown["error"]["fields"][0]["field"] == "stage"
    assert web.get(f"/cases/{case_id}/attachments", headers=auth(CLERK)).json()["attachments"] == []


def test_the_type_is_read_from_the_content_not_the_name(drive: Driver, web: TestClient, files_settings) -> None:
    case_id = drive.register()
    text = upload(web, case_id, CLERK, b"just some text, not a photo at all", "registration", "photo.jpg", expect=422)
    assert text["error"]["fields"][0]["field"] == "file"
    assert "JPEG" in text["error"]["fields"][0]["reason"] and "扩展名" in text["error"]["fields"][0]["reason"]
    html = upload(web, case_id, CLERK, b"<html><script>alert(1)</script></html>", "registration", "x.png",
                  "image/png", expect=422)  # fmt: skip
    assert html["error"]["fields"][0]["field"] == "file"
    broken = upload(web, case_id, CLERK, jpeg()[:40], "registration", expect=422)
    assert "损坏" in broken["error"]["fields"][0]["reason"]
    # A PDF named .jpg is a PDF: stored and served as one, its name given the right extension.
    pdf = upload(web, case_id, CLERK, PDF, "registration", "scan.jpg", "image/jpeg")
    assert pdf["attachment"]["content_type"] == "application/pdf" and pdf["attachment"]["name"] == "登记材料.pdf"
    assert [a["sha256"] for a in web.get(f"/cases/{case_id}/attachments").json()["attachments"]] == [
        hashlib.sha256(PDF).hexdigest()
    ]
    assert not any(p.is_file() and ".part" in p.name for p in (files_settings.attachment_root).rglob("*"))


def test_an_oversized_file_is_refused(drive: Driver, web: TestClient) -> None:
    case_id = drive.register()
    big = jpeg(size=(900, 900)) + b"\0" * MAX  # a real JPEG, padded past the cap
    refused = upload(web, case_id, CLERK, big, "registration", expect=413)
    assert refused["error"]["code"] in ("attachment_too_large", "body_too_large")
    far_too_big = b"\xff\xd8\xff" + b"\0" * (MAX + 128 * 1024)
    assert upload(web, case_id, CLERK, far_too_big, "registration", expect=413)["error"]["code"] == "body_too_large"
    empty = upload(web, case_id, CLERK, b"", "registration", expect=422)
    assert empty["error"]["fields"][0]["field"] == "file"
    assert web.get(f"/cases/{case_id}/attachments").json()["attachments"] == []


def test_gps_is_stripped_unless_the_role_may_keep_it(drive: Driver, web: TestClient, files_settings) -> None:
    case_id = drive.register()
    original = jpeg(gps=True)
    assert has_gps(original)
    stored = upload(web, case_id, CLERK, original, "registration")["attachment"]
    assert stored["location_removed"] is True
    assert stored["sha256"] != hashlib.sha256(original).hexdigest()
    back = web.get(stored["href"], headers=auth(CLERK)).content
    assert not has_gps(back) and hashlib.sha256(back).hexdigest() == stored["sha256"]
    on_disk = next(p for p in files_settings.attachment_root.rglob(stored["sha256"]))
    assert not has_gps(on_disk.read_bytes())
    xmp = jpeg_with_xmp_location()
    assert b"GPSLatitude" in xmp
    only_xmp = upload(web, case_id, CLERK, xmp, "registration", "xmp.jpg")["attachment"]
    assert only_xmp["location_removed"] is True
    assert b"GPSLatitude" not in web.get(only_xmp["href"], headers=auth(CLERK)).content
    # The grid leader's own photo of the site keeps where it was taken: that is the evidence.
    drive.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    drive.act(case_id, "assign", CLERK, assignee=GRID_LEADER.id)
    drive.act(case_id, "accept", GRID_LEADER)
    kept = upload(web, case_id, GRID_LEADER, jpeg(gps=True, colour=(5, 5, 5)), "before")["attachment"]
    assert kept["location_removed"] is False
    assert has_gps(web.get(kept["href"], headers=auth(GRID_LEADER)).content)
    drive.act(case_id, "rectify", GRID_LEADER, summary="已修复")
    resident = upload(web, case_id, RESIDENT, jpeg(gps=True, colour=(7, 7, 7)), "verification")["attachment"]
    assert resident["location_removed"] is True
    assert not has_gps(web.get(resident["href"], headers=auth(RESIDENT, case_id)).content)


def test_reading_follows_the_cases_access_rules(drive: Driver, web: TestClient) -> None:
    case_id = drive.accepted()
    photo = upload(web, case_id, GRID_LEADER, jpeg(), "progress")["attachment"]
    other_leader = auth(Actor(OTHER_STREET_LEADER, Role.GRID_LEADER))
    refused = web.get(photo["href"], headers=other_leader)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "out_of_scope"
    assert web.get(f"/cases/{case_id}/attachments", headers=other_leader).status_code == 403
    assert web.get(photo["href"], headers=auth(GRID_LEADER)).status_code == 200
    assert web.get(photo["href"], headers=auth(RESIDENT, case_id)).status_code == 200
    another = drive.register()
    assert web.get(photo["href"].replace(case_id, another), headers=auth(CLERK)).status_code == 404
    not_theirs = web.get(f"/cases/{case_id}/attachments/{photo['sha256']}", headers=auth(RESIDENT, another))
    assert not_theirs.status_code == 403
    # The petitioner's own files need personal data in clear: an auditor lists them but cannot open them.
    mine = upload(web, another, CLERK, jpeg(colour=(0, 0, 255)), "registration")["attachment"]
    listed = web.get(f"/cases/{another}/attachments", headers=auth(AUDITOR)).json()["attachments"]
    assert listed[0]["readable"] is False
    assert web.get(mine["href"], headers=auth(AUDITOR)).json()["error"]["code"] == "personal_data"
    assert web.get(mine["href"], headers=auth(AUDITOR, grants=("pii",))).status_code == 200
    assert web.get(photo["href"], headers=auth(AUDITOR)).status_code == 200  # the site, not the person


def test_erasing_the_petitioner_removes_the_files_that_carry_their_data(
    drive: Driver, web: TestClient, files_settings: Settings
) -> None:
    case_id = drive.register()
    registered = upload(web, case_id, CLERK, jpeg(colour=(1, 1, 1)), "registration")["attachment"]
    drive.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    drive.act(case_id, "assign", CLERK, assignee=GRID_LEADER.id)
    drive.act(case_id, "accept", GRID_LEADER)
    site = upload(web, case_id, GRID_LEADER, jpeg(colour=(2, 2, 2)), "before")["attachment"]
    drive.act(case_id, "rectify", GRID_LEADER, summary="已修复")
    checked = upload(web, case_id, RESIDENT, jpeg(colour=(3, 3, 3)), "verification")["attachment"]
    person = web.get(f"/cases/{case_id}", headers=auth(ADMIN)).json()["petitioner_id"]
    web.get("/ledger", params={"wait_for": drive.position}, headers=auth(CLERK))

    erased = web.post(f"/persons/{person}/erase", headers=auth(ADMIN))
    assert erased.status_code == 200, erased.text
    assert sorted(erased.json()["attachments_erased"]) == sorted([registered["sha256"], checked["sha256"]])
    root = files_settings.attachment_root
    assert not list(root.rglob(registered["sha256"])) and not list(root.rglob(checked["sha256"]))
    for gone in (registered, checked):
        response = web.get(gone["href"], headers=auth(CLERK))
        assert response.status_code == 410 and response.json()["error"]["code"] == "attachment_erased"
    assert web.get(site["href"], headers=auth(CLERK)).status_code == 200  # the site photo stays
    listed = {a["sha256"]: a for a in web.get(f"/cases/{case_id}/attachments").json()["attachments"]}
    assert listed[registered["sha256"]]["erased"] is True and listed[site["sha256"]]["erased"] is False
    # The events keep only the hash, so the history still says a file was added, and which.
    history = web.get(f"/cases/{case_id}/history", headers=auth(CLERK)).json()["events"]
    added = [e["payload"]["sha256"] for e in history if e["type"] == "AttachmentAdded"]
    assert added == [registered["sha256"], site["sha256"], checked["sha256"]]


def test_the_attachment_shows_in_history_feed_and_ledger(drive: Driver, web: TestClient) -> None:
    case_id = drive.accepted()
    first = upload(web, case_id, GRID_LEADER, jpeg(), "progress", "第一张.jpg")
    again = upload(web, case_id, GRID_LEADER, jpeg(), "progress", "第一张.jpg", expect=200)
    assert again["changed"] is False  # the same file at the same stage is there already
    listed = upload(web, case_id, GRID_LEADER, PDF, "before", "../../清单.jpg", "application/pdf")
    assert listed["attachment"]["name"] == "清单.jpg.pdf"  # the last part, and what it is
    bidi = upload(web, case_id, GRID_LEADER, PDF, "before", "清单\u202egpj.pdf", "application/pdf", expect=422)
    assert bidi["error"]["fields"] == [{"field": "name", "reason": "含有不允许的控制字符 U+202E，请删除后重试"}]
    event = web.get(f"/cases/{case_id}/history", headers=auth(CLERK)).json()["events"][-2]
    assert event["type"] == "AttachmentAdded" and event["label"] == "添加附件"
    assert event["actor"]["id"] == GRID_LEADER.id
    assert event["payload"] | {} == event["payload"] and event["payload"]["sha256"] == first["attachment"]["sha256"]
    assert {"stage", "sha256", "content_type", "size", "name"} <= set(event["payload"])
    feed = web.get("/events", params={"type": "AttachmentAdded", "case": case_id}).json()["events"]
    assert len(feed) == 2 and all(e["type"].endswith("AttachmentAdded") for e in feed)
    assert feed[0]["data"]["sha256"] == first["attachment"]["sha256"], feed[0]
    page = web.get("/ledger", params={"wait_for": web.get("/healthz").json()["position"]}, headers=auth(CLERK))
    row = next(r for r in page.json()["items"] if r["case_id"] == case_id)
    assert row["attachment_count"] == 2


def test_a_multipart_upload_and_an_idempotent_retry(drive: Driver, web: TestClient) -> None:
    case_id = drive.register()
    headers = {**auth(CLERK), "Idempotency-Key": "upload-1"}
    files = {"file": ("来信扫描.pdf", PDF, "application/pdf")}
    first = web.post(f"/cases/{case_id}/attachments", data={"stage": "registration"}, files=files, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["attachment"]["name"] == "登记材料.pdf"
    retried = web.post(f"/cases/{case_id}/attachments", data={"stage": "registration"}, files=files, headers=headers)
    assert retried.json()["replayed"] is True and retried.json()["version"] == first.json()["version"]
    moved = Driver(web)
    moved.act(case_id, "classify", CLERK, handling_type="committed", tier="small")
    moved.act(case_id, "assign", CLERK, assignee=GRID_LEADER.id)
    moved.act(case_id, "accept", GRID_LEADER)  # in progress: no registration files any more
    drive_on = web.post(f"/cases/{case_id}/attachments", data={"stage": "registration"}, files=files, headers=headers)
    assert drive_on.json()["replayed"] is True  # still the first answer, though the case has moved on
    missing = web.post(f"/cases/{case_id}/attachments", data={"stage": "registration"},
                       files={"other": ("a.pdf", PDF)}, headers=auth(CLERK))  # fmt: skip
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "file"


def test_the_workbench_case_page_shows_and_takes_attachments(drive: Driver, web: TestClient) -> None:
    from tests.factories import token

    case_id = drive.accepted()
    photo = upload(web, case_id, GRID_LEADER, jpeg(), "progress", "现场.jpg")["attachment"]
    upload(web, case_id, GRID_LEADER, PDF, "before", "整改清单.pdf", "application/pdf")
    browser = TestClient(web.app)
    browser.cookies.set("minqing_session", token(GRID_LEADER))
    shown = browser.get(f"/workbench/cases/{case_id}")
    assert shown.status_code == 200, shown.text
    assert f'<img src="/workbench/cases/{case_id}/attachments/{photo["sha256"]}"' in shown.text
    assert "整改清单.pdf</a>" in shown.text and 'enctype="multipart/form-data"' in shown.text
    thumbnail = browser.get(f"/workbench/cases/{case_id}/attachments/{photo['sha256']}")
    assert thumbnail.status_code == 200 and thumbnail.headers["x-content-type-options"] == "nosniff"
    csrf = shown.text.split('name="csrf" value="')[1].split('"')[0]
    sent = browser.post(
        f"/workbench/cases/{case_id}/attachments",
        data={"csrf": csrf, "stage": "before"},
        files={"file": ("整改前.png", png(), "image/png")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert len(web.get(f"/cases/{case_id}/attachments").json()["attachments"]) == 3
    forged = browser.post(
        f"/workbench/cases/{case_id}/attachments",
        data={"csrf": "forged", "stage": "before"},
        files={"file": ("x.png", png((1, 1, 1)), "image/png")},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    wrong = browser.post(
        f"/workbench/cases/{case_id}/attachments",
        data={"csrf": csrf, "stage": "before"},
        files={"file": ("x.jpg", b"not a photo", "image/jpeg")},
    )
    assert wrong.status_code == 422 and "扩展名" in wrong.text
    other = TestClient(web.app)
    other.cookies.set("minqing_session", token(Actor(OTHER_STREET_LEADER, Role.GRID_LEADER)))
    assert other.get(f"/workbench/cases/{case_id}/attachments/{photo['sha256']}").status_code == 403


# --- Open311 media_url (open311/media.py) ---------------------------------------------------------

OPEN311_KEY = "evidence-open311-key"
OPEN311_FORM = {
    "api_key": OPEN311_KEY,
    "service_code": "parking",
    "description": "小区门口车辆乱停，堵塞消防通道。",
    "address_string": "马限社区南门",
    "attribute[grid]": "35010500100101",
    "last_name": "王",
    "first_name": "芳",
    "phone": "13900001111",
}


class MediaServer:
    """A real HTTP server on loopback serving a few files, counting the requests it gets."""

    def __init__(self, files: dict[str, bytes]) -> None:
        import http.server
        import threading

        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    server = MediaServer({"/photos/%E7%8E%B0%E5%9C%BA.jpg": jpeg(gps=True), "/notes.txt": b"plain text, not a photo"})
    yield server
    server.close()


def open311_client(files_settings: Settings, clock, hosts: tuple[str, ...]) -> TestClient:
    configured = dataclasses.replace(
        files_settings, open311_keys={OPEN311_KEY: "hotline_12345:read"}, media_fetch_hosts=hosts
    )
    client = TestClient(create_app(configured, log_cache=False))
    client.auth = DefaultReader()
    return client


def test_open311_media_url_is_fetched_from_an_allowed_host(files_settings: Settings, clock, media) -> None:
    with open311_client(files_settings, clock, ("127.0.0.1",)) as web:
        web.app.state.cases.clock = clock  # type: ignore[attr-defined]
        url = f"{media.base}/photos/%E7%8E%B0%E5%9C%BA.jpg"
        sent = web.post("/open311/v2/requests.json", data={**OPEN311_FORM, "media_url": url})
        assert sent.status_code == 200, sent.text
        number = sent.json()[0]["service_request_id"]
        assert media.requests == ["/photos/%E7%8E%B0%E5%9C%BA.jpg"]
        one = web.get(f"/open311/v2/requests/{number}.json", params={"api_key": OPEN311_KEY}).json()[0]
        case_id = web.get(f"/cases/{number}", headers=auth(CLERK)).json()["id"]
        listed = web.get(f"/cases/{case_id}/attachments", headers=auth(CLERK)).json()["attachments"]
        assert len(listed) == 1 and listed[0]["url"] == url and listed[0]["name"] == "登记材料.jpg"
        assert listed[0]["location_removed"] is True and listed[0]["added_by"]["id"] == "OPEN311"
        assert one["media_url"] == f"http://testserver{listed[0]['href']}"
        photo = web.get(listed[0]["href"], headers=auth(CLERK))
        assert photo.status_code == 200 and not has_gps(photo.content)
        web.get("/ledger", params={"wait_for": web.get("/healthz").json()["position"]}, headers=auth(CLERK))
        many = web.get("/open311/v2/requests.json", params={"api_key": OPEN311_KEY, "service_request_id": number})
        assert many.json()[0]["media_url"] == one["media_url"]
        public = web.get(f"/open311/v2/requests/{number}.json").json()[0]
        assert public["media_url"] is None  # a photo is not part of the public notice

        # Not a photo, though the host is allowed: the link is kept, nothing is stored.
        text = web.post("/open311/v2/requests.json", data={**OPEN311_FORM, "media_url": f"{media.base}/notes.txt"})
        number = text.json()[0]["service_request_id"]
        case_id = web.get(f"/cases/{number}", headers=auth(CLERK)).json()["id"]
        kept = web.get(f"/cases/{case_id}/attachments", headers=auth(CLERK)).json()["attachments"]
        assert [(a["sha256"], a["url"]) for a in kept] == [(None, f"{media.base}/notes.txt")]


def test_open311_media_url_from_another_host_is_kept_but_not_fetched(files_settings: Settings, clock, media) -> None:
    with open311_client(files_settings, clock, ("media.example.gov.cn",)) as web:
        web.app.state.cases.clock = clock  # type: ignore[attr-defined]
        url = f"{media.base}/photos/%E7%8E%B0%E5%9C%BA.jpg"
        sent = web.post("/open311/v2/requests.json", data={**OPEN311_FORM, "media_url": url})
        assert sent.status_code == 200, sent.text
        assert media.requests == []  # never asked for
        number = sent.json()[0]["service_request_id"]
        one = web.get(f"/open311/v2/requests/{number}.json", params={"api_key": OPEN311_KEY}).json()[0]
        assert one["media_url"] == url
        case_id = web.get(f"/cases/{number}", headers=auth(CLERK)).json()["id"]
        listed = web.get(f"/cases/{case_id}/attachments", headers=auth(CLERK)).json()["attachments"]
        assert [(a["sha256"], a["url"], a["href"]) for a in listed] == [(None, url, None)]
        assert not list(files_settings.attachment_root.rglob("*")) if files_settings.attachment_root.exists() else True
        bad = web.post("/open311/v2/requests.json", data={**OPEN311_FORM, "media_url": "file:///etc/passwd"})
        assert bad.status_code == 400 and "media_url" in bad.json()[0]["description"]


def test_the_demo_district_carries_photos(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from commands.evidence import Evidence
    from demo.evidence import add_photos
    from demo.stories import load_demo
    from service import build_cases
    from storage.blobs import DirectoryStore
    from tests.factories import migrated

    cases = build_cases(migrated(Settings(sqlite_path=tmp_path / "demo.sqlite3")))
    try:
        # Enough cases that some are still waiting to be signed for (the demo's newest).
        load_demo(cases, count=200, now=datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
        store = DirectoryStore(tmp_path / "files")
        counts = add_photos(Evidence(cases, store, max_bytes=MAX), per_stage=2)
        assert counts["registration"] >= 1 and counts["before"] >= 1 and counts["progress"] >= 1, counts
        files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
        assert len(files) >= sum(counts.values()) - 1  # the rectification list PDF is one file for all
        photos = [p.read_bytes() for p in files if p.read_bytes().startswith(b"\xff\xd8")]
        assert any(has_gps(p) for p in photos) and any(not has_gps(p) for p in photos)  # site kept, resident's not
    finally:
        cases.close()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_lose_their_gps_too(fmt: str) -> None:
    from io import BytesIO

    from PIL import Image

    from commands.evidence import check

    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (26.0, 5.0, 30.0)})
    out = BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(out, fmt, exif=exif.tobytes())
    assert has_gps(out.getvalue())
    checked = check(out.getvalue(), keep_location=False, max_bytes=MAX)
    assert checked.location_removed and not has_gps(checked.data)
    assert checked.kind.content_type == f"image/{fmt.lower()}"


def test_the_rules_without_io() -> None:
    from cases.evidence import Stage, carries_personal_data, keeps_location
    from commands.evidence import JPEG, safe_name, sniff
    from commands.evidence import PDF as PDF_KIND

    assert keeps_location(Stage.BEFORE, Role.GRID_LEADER) and keeps_location(Stage.AFTER, Role.DEPARTMENT)
    assert not keeps_location(Stage.REGISTRATION, Role.GRID_LEADER)  # the resident's photo, whoever registers it
    assert not keeps_location(Stage.PROGRESS, Role.INTAKE_CLERK) and not keeps_location(
        Stage.VERIFICATION, Role.RESIDENT
    )
    assert carries_personal_data("registration", "grid_leader") and carries_personal_data("progress", "resident")
    assert not carries_personal_data("after", "township")
    assert sniff(jpeg()) is JPEG and sniff(PDF) is PDF_KIND and sniff(b"GIF89a....") is None
    assert sniff(webp()) is not None and sniff(png()) is not None
    assert safe_name("C:\\Users\\张\\现场 (1).JPG", JPEG, "before") == "现场 (1).JPG"
    assert safe_name("", JPEG, "before") == "before.jpg" and safe_name("a<b>.pdf", PDF_KIND, "x") == "a_b_.pdf"
