"""The attachment store: files kept outside the event log, addressed by the sha256 of their
bytes. A directory by default (MINQING_ATTACHMENTS_PATH); an S3-compatible bucket by
configuration (MINQING_S3_URL, _BUCKET, _ACCESS_KEY, _SECRET_KEY, _REGION), spoken to with a
small AWS Signature V4 client over httpx (no SDK).

Writing the same bytes twice is harmless; an erased file leaves a tombstone, so a reader can
be told it was erased (410) rather than that it never existed.

The same bytes may be attached to several cases, so each attachment holds a reference (a marker
named after its holder, `<case id>.<stage>`) beside the file: erasing a person's file releases
their reference, and the bytes go only with the last one (files stored before references existed
have none, and go at the first release, as they always did).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from config.settings import Settings

SHA256 = re.compile(r"^[0-9a-f]{64}$")
HOLDER = re.compile(r"^[0-9A-Za-z_-][0-9A-Za-z._-]{0,127}$")
TOMBSTONE = b"erased"


class BlobStoreError(RuntimeError):
    """The store did not answer as it should (network, permissions, a full disk): 503, details logged."""

    code = "attachment_store_unavailable"
    message = "附件存储暂时不可用，本次操作未生效，请稍后重试。"


class BlobStore(Protocol):
    def put(self, sha256: str, data: bytes, content_type: str, holder: str | None = None) -> None: ...
    def get(self, sha256: str) -> bytes | None: ...
    def holders(self, sha256: str) -> list[str]: ...
    def release(self, sha256: str, holder: str) -> bool: ...
    def discard(self, sha256: str, holder: str) -> None: ...
    def erase(self, sha256: str) -> bool: ...
    def erased(self, sha256: str) -> bool: ...


def _checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


def _holder(holder: str) -> str:
    if not HOLDER.match(holder):
        raise ValueError(f"not a holder: {holder!r}")
    return holder


class DirectoryStore:
    """`<root>/ab/cd/<sha256>`, written to a temporary file and renamed, so a reader never sees half a file;
    its references are empty files in `<sha256>.refs/`. Adding and releasing a reference hold an
    exclusive lock on the `ab/cd` directory, so a release never removes bytes another process has just
    referenced (every worker of a host; not across hosts sharing the directory over NFS)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str, suffix: str = "") -> Path:
        name = _checked(sha256)
        return self.root / name[:2] / name[2:4] / (name + suffix)

    @contextmanager
    def _locked(self, sha256: str) -> Iterator[Path]:
        path = self._path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            os.close(fd)  # closing releases the lock

    def put(self, sha256: str, data: bytes, content_type: str, holder: str | None = None) -> None:
        with self._locked(sha256) as path:
            if holder is not None:
                refs = self._path(sha256, ".refs")
                refs.mkdir(exist_ok=True)
                (refs / _holder(holder)).touch()
            if not path.exists():
                self._write(path, data)

    def _write(self, path: Path, data: bytes) -> None:
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

    def get(self, sha256: str) -> bytes | None:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def holders(self, sha256: str) -> list[str]:
        refs = self._path(sha256, ".refs")
        return sorted(p.name for p in refs.iterdir()) if refs.is_dir() else []

    def release(self, sha256: str, holder: str) -> bool:
        """The holder no longer needs the bytes; they are erased (tombstone) when no other holder
        does. True when the bytes went now."""
        with self._locked(sha256):
            (self._path(sha256, ".refs") / _holder(holder)).unlink(missing_ok=True)
            return not self.holders(sha256) and self._erase(sha256)

    def discard(self, sha256: str, holder: str) -> None:
        """Undoes a `put` whose attachment was never saved: no tombstone, nothing was erased."""
        with self._locked(sha256) as path:
            (self._path(sha256, ".refs") / _holder(holder)).unlink(missing_ok=True)
            if not self.holders(sha256):
                path.unlink(missing_ok=True)

    def erase(self, sha256: str) -> bool:
        """Removes the bytes whoever holds them (an operator's tool; attachments use `release`)."""
        with self._locked(sha256):
            return self._erase(sha256)

    def _erase(self, sha256: str) -> bool:
        path = self._path(sha256)
        existed = path.exists()
        self._path(sha256, ".erased").write_bytes(TOMBSTONE)
        path.unlink(missing_ok=True)
        return existed

    def erased(self, sha256: str) -> bool:
        """Erased and not brought again since (a tombstone and no bytes)."""
        return self._path(sha256, ".erased").exists() and not self._path(sha256).exists()

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
    An erased object is replaced by a tombstone object `<key>.erased`; its references are empty
    objects `<key>.refs/<holder>`. S3 has no lock: a release that lists no other holder in the
    very moment another upload of the same bytes stores its reference can remove those bytes
    (the upload's case then reads 404), a window of one request's time."""

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

    def _send(
        self,
        method: str,
        key: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = self.base + quote(key, safe="/-_.~")
        digest = hashlib.sha256(data).hexdigest() if data else EMPTY_SHA256
        # Signed over the plain query (sign_v4 encodes it canonically); sent encoded the same way.
        plain = url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        signed = sign_v4(method, plain, headers or {}, digest, self.credentials, datetime.now(UTC))
        if query:
            url += "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        try:
            return self.client.request(method, url, content=data or None, headers=signed)
        except httpx.HTTPError as e:
            raise BlobStoreError(f"S3 {method} {key}: {e}") from e

    def _ok(self, response: httpx.Response, what: str, *allowed: int) -> httpx.Response:
        if response.status_code // 100 != 2 and response.status_code not in allowed:
            raise BlobStoreError(f"S3 {what}: {response.status_code} {response.text[:200]}")
        return response

    def put(self, sha256: str, data: bytes, content_type: str, holder: str | None = None) -> None:
        key = self.prefix + _checked(sha256)
        if holder is not None:  # the reference first: a release between the two then keeps the bytes
            ref = f"{key}.refs/{_holder(holder)}"
            self._ok(self._send("PUT", ref, b"", {"content-type": "text/plain"}), f"PUT {ref}")
        self._ok(self._send("PUT", key, data, {"content-type": content_type}), f"PUT {key}")

    def get(self, sha256: str) -> bytes | None:
        key = self.prefix + _checked(sha256)
        response = self._ok(self._send("GET", key), f"GET {key}", 404)
        return None if response.status_code == 404 else response.content

    def holders(self, sha256: str) -> list[str]:
        refs = f"{self.prefix}{_checked(sha256)}.refs/"
        listed = self._ok(self._send("GET", "", query={"list-type": "2", "prefix": refs}), f"LIST {refs}")
        return sorted(k[len(refs) :] for k in re.findall(r"<Key>([^<]+)</Key>", listed.text))

    def release(self, sha256: str, holder: str) -> bool:
        """The holder no longer needs the bytes; they are erased (tombstone) when no other holder
        does. True when the bytes went now."""
        self._drop(sha256, holder)
        return not self.holders(sha256) and self.erase(sha256)

    def discard(self, sha256: str, holder: str) -> None:
        """Undoes a `put` whose attachment was never saved: no tombstone, nothing was erased."""
        self._drop(sha256, holder)
        if not self.holders(sha256):
            key = self.prefix + sha256
            self._ok(self._send("DELETE", key), f"DELETE {key}", 404)

    def _drop(self, sha256: str, holder: str) -> None:
        ref = f"{self.prefix}{_checked(sha256)}.refs/{_holder(holder)}"
        self._ok(self._send("DELETE", ref), f"DELETE {ref}", 404)

    def erase(self, sha256: str) -> bool:
        key = self.prefix + _checked(sha256)
        existed = self._ok(self._send("HEAD", key), f"HEAD {key}", 404).status_code != 404
        self._ok(self._send("PUT", key + ".erased", TOMBSTONE, {"content-type": "text/plain"}), f"PUT {key}.erased")
        self._ok(self._send("DELETE", key), f"DELETE {key}", 404)
        return existed

    def erased(self, sha256: str) -> bool:
        """Erased and not brought again since (a tombstone and no bytes)."""
        key = self.prefix + _checked(sha256)
        tombstone = self._ok(self._send("HEAD", key + ".erased"), f"HEAD {key}.erased", 404).status_code != 404
        return tombstone and self._ok(self._send("HEAD", key), f"HEAD {key}", 404).status_code == 404

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
