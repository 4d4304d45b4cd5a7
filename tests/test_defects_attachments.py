"""Content-addressed attachments shared by several cases: erasing one person's file keeps the same
bytes attached elsewhere, and an upload whose save fails leaves no file behind. On the directory
store and on moto's S3 server, each on both event stores."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from commands.evidence import check
from config.settings import Settings
from service import create_app
from storage.blobs import EMPTY_SHA256, DirectoryStore, S3Store, sign_v4
from tests.api_steps import Driver
from tests.evidence_files import PDF, jpeg
from tests.factories import ADMIN, CLERK, DefaultReader, auth
from tests.test_attachment_store import KEYS, s3_server  # noqa: F401 (the fixture)

SECOND_PETITIONER = {"petitioner_name": "李建国", "petitioner_phone": "13900007777"}


@pytest.fixture(params=["directory", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "directory":
        return dataclasses.replace(settings, attachments_path=tmp_path / "files")
    server = request.getfixturevalue("s3_server")
    bucket = _bucket(server)  # each test its own: the same bytes recur from test to test
    return dataclasses.replace(
        settings, s3_url=server, s3_bucket=bucket, s3_access_key=KEYS.access_key, s3_secret_key=KEYS.secret_key
    )


def _bucket(server: str) -> str:
    name = f"defects-{uuid4().hex[:12]}"
    url = f"{server}/{name}"
    created = httpx.put(url, headers=sign_v4("PUT", url, {}, EMPTY_SHA256, KEYS, datetime.now(UTC)))
    assert created.status_code == 200, created.text
    return name


@pytest.fixture
def web(store_settings: Settings, clock) -> Iterator[TestClient]:
    app = create_app(store_settings, log_cache=False)
    with TestClient(app) as client:
        app.state.cases.clock = clock
        client.auth = DefaultReader()
        yield client


def _upload(web: TestClient, case_id: str, data: bytes, **headers: str) -> dict:
    response = web.post(
        f"/cases/{case_id}/attachments",
        params={"stage": "registration", "name": "来信.jpg"},
        content=data,
        headers={**auth(CLERK), "Content-Type": "image/jpeg", **headers},
    )
    return {"status": response.status_code, **response.json()}


def _stored(web: TestClient, sha256: str) -> bytes | None:
    return web.app.state.blobs.get(sha256)  # type: ignore[attr-defined]


def test_erasing_one_person_keeps_the_same_file_on_another_case(web: TestClient) -> None:
    drive = Driver(web)
    data = jpeg(colour=(9, 90, 200))
    first, second = drive.register(), drive.register(**SECOND_PETITIONER)
    mine = _upload(web, first, data)["attachment"]
    theirs = _upload(web, second, data)["attachment"]
    assert mine["sha256"] == theirs["sha256"]
    people = [web.get(f"/cases/{c}", headers=auth(ADMIN)).json()["petitioner_id"] for c in (first, second)]
    assert people[0] != people[1]
    web.get("/ledger", params={"wait_for": drive.position}, headers=auth(CLERK))

    erased = web.post(f"/persons/{people[0]}/erase", headers=auth(ADMIN)).json()
    assert erased["attachments_erased"] == [mine["sha256"]]
    assert web.get(mine["href"], headers=auth(CLERK)).status_code == 410
    kept = web.get(theirs["href"], headers=auth(CLERK))
    assert kept.status_code == 200 and kept.content == _stored(web, theirs["sha256"]) is not None
    listed = web.get(f"/cases/{second}/attachments").json()["attachments"]
    assert listed[0]["erased"] is False

    web.post(f"/persons/{people[1]}/erase", headers=auth(ADMIN))  # the last holder: the bytes go
    assert _stored(web, theirs["sha256"]) is None
    assert web.get(theirs["href"], headers=auth(CLERK)).status_code == 410


def test_an_upload_whose_save_fails_leaves_no_file(web: TestClient) -> None:
    drive = Driver(web)
    case_id = drive.register()
    data = jpeg(colour=(31, 41, 59))
    stale = _upload(web, case_id, data, **{"If-Match": '"7"'})
    assert stale["status"] in (409, 412), stale
    assert _stored(web, check(data, keep_location=False, max_bytes=1 << 30).sha256) is None

    # The same bytes held by another case stay when this case's save fails.
    other = drive.register(**SECOND_PETITIONER)
    held = _upload(web, other, data)["attachment"]
    assert _upload(web, case_id, data, **{"If-Match": '"7"'})["status"] in (409, 412)
    assert _stored(web, held["sha256"]) is not None
    assert web.get(held["href"], headers=auth(CLERK)).status_code == 200


def _stores(tmp_path: Path, server: str) -> Iterator[DirectoryStore | S3Store]:
    yield DirectoryStore(tmp_path / "files")
    yield S3Store(server, _bucket(server), KEYS)


def test_the_bytes_go_with_their_last_holder(tmp_path: Path, s3_server: str) -> None:  # noqa: F811
    sha = hashlib.sha256(PDF).hexdigest()
    for store in _stores(tmp_path, s3_server):
        store.put(sha, PDF, "application/pdf", "case-a.registration")
        store.put(sha, PDF, "application/pdf", "case-b.progress")
        assert store.holders(sha) == ["case-a.registration", "case-b.progress"]
        assert store.release(sha, "case-a.registration") is False
        assert store.get(sha) == PDF and not store.erased(sha)
        assert store.release(sha, "case-b.progress") is True
        assert store.get(sha) is None and store.erased(sha)

        store.put(sha, PDF, "application/pdf", "case-c.registration")  # brought again: alive again
        assert store.get(sha) == PDF and not store.erased(sha)
        store.discard(sha, "case-c.registration")  # its save failed: gone, but not "erased" anew
        assert store.get(sha) is None and store.holders(sha) == []
        with pytest.raises(ValueError):
            store.put(sha, PDF, "application/pdf", "../escape")
        store.close()
