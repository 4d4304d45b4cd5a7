"""The attachment stores: the content-addressed directory (the default) and the S3-compatible
client. The S3 client's signing is checked against AWS's own published Signature V4 examples;
the client itself runs against moto's S3 server (`moto[server]`, a test dependency, so CI runs
it too), including through HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from service import create_app
from storage.blobs import DirectoryStore, S3Credentials, S3Store, open_blobs, sign_v4
from tests.api_steps import Driver
from tests.evidence_files import PDF, has_gps, jpeg
from tests.factories import ADMIN, CLERK, DefaultReader, auth
from tests.serving import free_port

AWS_EXAMPLE = S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
EXAMPLE_DAY = datetime(2013, 5, 24, tzinfo=UTC)


def test_signing_matches_the_aws_example_of_a_ranged_get() -> None:
    # "Example: GET Object" of the S3 Signature V4 documentation (header-based authentication).
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    url = "https://examplebucket.s3.amazonaws.com/test.txt"
    signed = sign_v4("GET", url, {"Range": "bytes=0-9"}, empty, AWS_EXAMPLE, EXAMPLE_DAY)
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_signing_matches_the_aws_example_of_a_put_with_an_escaped_key() -> None:
    # "Example: PUT Object": the key has a $ that must be percent-encoded in the canonical URI.
    body = b"Welcome to Amazon S3."
    headers = {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"}
    url = "https://examplebucket.s3.amazonaws.com/test$file.text"
    signed = sign_v4("PUT", url, headers, hashlib.sha256(body).hexdigest(), AWS_EXAMPLE, EXAMPLE_DAY)
    assert signed["authorization"].endswith(
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


def test_the_directory_store_is_content_addressed_atomic_and_keeps_tombstones(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "files")
    data = jpeg()
    sha = hashlib.sha256(data).hexdigest()
    assert store.get(sha) is None and not store.erased(sha)
    store.put(sha, data, "image/jpeg")
    store.put(sha, data, "image/jpeg")  # the same bytes again: harmless
    assert store.get(sha) == data
    assert (tmp_path / "files" / sha[:2] / sha[2:4] / sha).read_bytes() == data
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [sha]  # no temporary left
    assert store.erase(sha) is True
    assert store.get(sha) is None and store.erased(sha)
    assert store.erase(sha) is False  # erasing twice: nothing left to remove, still erased
    store.put(sha, data, "image/jpeg")  # the same bytes brought again (another case) live again
    assert store.get(sha) == data and not store.erased(sha)
    for hostile in ("../../etc/passwd", "A" * 64, sha[:-1], sha + "/x"):
        with pytest.raises(ValueError):
            store.get(hostile)


def test_the_default_store_is_a_directory_beside_the_data(tmp_path: Path) -> None:
    settings = Settings(sqlite_path=tmp_path / "data" / "minqing.sqlite3")
    store = open_blobs(settings)
    assert isinstance(store, DirectoryStore) and store.root == tmp_path / "data" / "attachments"
    assert isinstance(open_blobs(dataclasses.replace(settings, attachments_path=tmp_path / "x")), DirectoryStore)
    with pytest.raises(ValueError, match="MINQING_S3_BUCKET"):
        open_blobs(dataclasses.replace(settings, s3_url="http://127.0.0.1:9"))
    unreachable = dataclasses.replace(
        settings, s3_url=f"http://127.0.0.1:{free_port()}", s3_bucket="b", s3_access_key="k", s3_secret_key="s"
    )
    s3 = open_blobs(unreachable)
    assert isinstance(s3, S3Store)
    from storage.blobs import BlobStoreError

    with pytest.raises(BlobStoreError):
        s3.get("0" * 64)
    s3.close()


# --- against an S3-compatible server --------------------------------------------------------------

BUCKET = "minqing-test"
KEYS = S3Credentials("testing", "testing-secret", "us-east-1")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    moto = shutil.which("moto_server") or str(Path(__file__).parents[1] / ".venv/bin/moto_server")
    if not Path(moto).exists():
        pytest.fail('moto_server is missing: install the test extras (pip install -e ".[test]")')
    port = free_port()
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        url = f"{base}/{BUCKET}"
        created = httpx.put(url, headers=sign_v4("PUT", url, {}, hashlib.sha256(b"").hexdigest(), KEYS,
                                                 datetime.now(UTC)))  # fmt: skip
        assert created.status_code == 200, created.text
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_s3_store_puts_gets_and_erases(s3_server: str) -> None:
    store = S3Store(s3_server, BUCKET, KEYS, prefix="unit/")
    sha = hashlib.sha256(PDF).hexdigest()
    assert store.get(sha) is None
    store.put(sha, PDF, "application/pdf")
    assert store.get(sha) == PDF and not store.erased(sha)
    listed = httpx.get(f"{s3_server}/{BUCKET}", params={"prefix": "unit/"}).text
    assert f"unit/{sha}" in listed
    assert store.erase(sha) is True
    assert store.get(sha) is None and store.erased(sha)
    store.put(sha, PDF, "application/pdf")
    assert not store.erased(sha)
    store.close()


def test_attachments_through_http_on_the_s3_store(s3_server: str, settings: Settings, clock) -> None:
    configured = dataclasses.replace(
        settings, s3_url=s3_server, s3_bucket=BUCKET, s3_access_key=KEYS.access_key, s3_secret_key=KEYS.secret_key
    )
    with TestClient(create_app(configured, log_cache=False)) as web:
        web.app.state.cases.clock = clock  # type: ignore[attr-defined]
        web.auth = DefaultReader()
        drive = Driver(web)
        case_id = drive.register()
        sent = web.post(
            f"/cases/{case_id}/attachments",
            params={"stage": "registration", "name": "现场.jpg"},
            content=jpeg(gps=True),
            headers={**auth(CLERK), "Content-Type": "image/jpeg"},
        )
        assert sent.status_code == 201, sent.text
        photo = sent.json()["attachment"]
        bucket = S3Store(s3_server, BUCKET, KEYS)  # read apart from the app: what the bucket really holds
        stored = bucket.get(photo["sha256"])
        assert stored is not None and not has_gps(stored)
        assert hashlib.sha256(stored).hexdigest() == photo["sha256"]
        assert web.get(photo["href"], headers=auth(CLERK)).content == stored
        person = web.get(f"/cases/{case_id}", headers=auth(ADMIN)).json()["petitioner_id"]
        web.get("/ledger", params={"wait_for": drive.position}, headers=auth(CLERK))
        assert web.post(f"/persons/{person}/erase", headers=auth(ADMIN)).json()["attachments_erased"] == [
            photo["sha256"]
        ]
        assert bucket.get(photo["sha256"]) is None and bucket.erased(photo["sha256"])
        assert web.get(photo["href"], headers=auth(CLERK)).status_code == 410
