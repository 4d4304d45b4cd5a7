"""The attachment store: files kept outside the event log, addressed by the sha256 of their
bytes. A directory by default (MINQING_ATTACHMENTS_PATH); an S3-compatible bucket by
configuration (MINQING_S3_URL, _BUCKET, _ACCESS_KEY, _SECRET_KEY, _REGION), spoken to with a
small AWS Signature V4 client over httpx (no SDK).

Writing the same bytes twice is harmless; an erased file leaves a tombstone, so a reader can
be told it was erased (410) rather than that it never existed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from config.settings import Settings

SHA256 = re.compile(r"^[0-9a-f]{64}$")
TOMBSTONE = b"erased"


class BlobStoreError(RuntimeError):
    """The store did not answer as it should (network, permissions, a full disk): 503, details logged."""

    code = "attachment_store_unavailable"
    message = "附件存储暂时不可用，本次操作未生效，请稍后重试。"


class BlobStore(Protocol):
    def put(self, sha256: str, data: bytes, content_type: str) -> None: ...
    def get(self, sha256: str) -> bytes | None: ...
    def erase(self, sha256: str) -> bool: ...
    def erased(self, sha256: str) -> bool: ...


def _checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


class DirectoryStore:
    """`<root>/ab/cd/<sha256>`, written to a temporary file and renamed, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str, suffix: str = "") -> Path:
        name = _checked(sha256)
        return self.root / name[:2] / name[2:4] / (name + suffix)

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        path = self._path(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._path(sha256, ".erased").unlink(missing_ok=True)  # the same bytes brought again

    def get(self, sha256: str) -> bytes | None:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def erase(self, sha256: str) -> bool:
        path = self._path(sha256)
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path(sha256, ".erased").write_bytes(TOMBSTONE)
        path.unlink(missing_ok=True)
        return existed

    def erased(self, sha256: str) -> bool:
        return self._path(sha256, ".erased").exists()

    def close(self) -> None:
        return None


# --- S3 ------------------------------------------------------------------------------------------

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def sign_v4(
    method: str,
    url: str,
    headers: dict[str, str],
    payload_sha256: str,
    credentials: S3Credentials,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send (AWS Signature Version 4, header form): `headers` plus host,
    x-amz-date, x-amz-content-sha256 and Authorization."""
    parts = urlsplit(url)
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    host = parts.netloc
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed |= {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    names = sorted(signed)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in parts.query.split("&") if p)
    )
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{credentials.region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials.secret_key).encode()
    for part in (day, credentials.region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {**headers, "host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256,
            "authorization": authorization}  # fmt: skip


class S3Store:
    """Objects `<prefix><sha256>` in one bucket, path-style (`<endpoint>/<bucket>/<key>`), which
    every S3-compatible server (MinIO, Ceph, the cloud vendors' object stores) accepts.
    An erased object is replaced by a tombstone object `<key>.erased`."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        credentials: S3Credentials,
        *,
        prefix: str = "attachments/",
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base = f"{endpoint.rstrip('/')}/{bucket}/"
        self.credentials = credentials
        self.prefix = prefix
        self.client = client or httpx.Client(timeout=timeout)

    def _send(self, method: str, key: str, data: bytes = b"", headers: dict[str, str] | None = None) -> httpx.Response:
        url = self.base + quote(key, safe="/-_.~")
        digest = hashlib.sha256(data).hexdigest() if data else EMPTY_SHA256
        signed = sign_v4(method, url, headers or {}, digest, self.credentials, datetime.now(UTC))
        try:
            return self.client.request(method, url, content=data or None, headers=signed)
        except httpx.HTTPError as e:
            raise BlobStoreError(f"S3 {method} {key}: {e}") from e

    def _ok(self, response: httpx.Response, what: str, *allowed: int) -> httpx.Response:
        if response.status_code // 100 != 2 and response.status_code not in allowed:
            raise BlobStoreError(f"S3 {what}: {response.status_code} {response.text[:200]}")
        return response

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        key = self.prefix + _checked(sha256)
        self._ok(self._send("PUT", key, data, {"content-type": content_type}), f"PUT {key}")
        self._ok(self._send("DELETE", key + ".erased"), f"DELETE {key}.erased", 404)

    def get(self, sha256: str) -> bytes | None:
        key = self.prefix + _checked(sha256)
        response = self._ok(self._send("GET", key), f"GET {key}", 404)
        return None if response.status_code == 404 else response.content

    def erase(self, sha256: str) -> bool:
        key = self.prefix + _checked(sha256)
        existed = self._ok(self._send("HEAD", key), f"HEAD {key}", 404).status_code != 404
        self._ok(self._send("PUT", key + ".erased", TOMBSTONE, {"content-type": "text/plain"}), f"PUT {key}.erased")
        self._ok(self._send("DELETE", key), f"DELETE {key}", 404)
        return existed

    def erased(self, sha256: str) -> bool:
        key = self.prefix + _checked(sha256) + ".erased"
        return self._ok(self._send("HEAD", key), f"HEAD {key}", 404).status_code != 404

    def close(self) -> None:
        self.client.close()


def open_blobs(settings: Settings) -> DirectoryStore | S3Store:
    if not settings.s3_url:
        return DirectoryStore(settings.attachment_root)
    missing = [name for name in ("s3_bucket", "s3_access_key", "s3_secret_key") if not getattr(settings, name)]
    if missing:
        raise ValueError("MINQING_S3_URL needs " + ", ".join(f"MINQING_{m.upper()}" for m in missing))
    assert settings.s3_bucket and settings.s3_access_key and settings.s3_secret_key
    credentials = S3Credentials(settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
    return S3Store(settings.s3_url, settings.s3_bucket, credentials)
