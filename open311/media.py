"""An Open311 request's `media_url`: kept on the case, and fetched into the attachment store only
from the hosts the deployment allows (MINQING_MEDIA_FETCH_HOSTS; none by default), with the
attachment size cap and a timeout; what is fetched is checked like any upload (type from the
content, location stripped). Self-contained: the mapping (georeport.py) only calls it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import httpx
import structlog

from cases.actor import Actor
from cases.case import Case
from cases.evidence import Stage
from commands.errors import InvalidInputError
from commands.evidence import Evidence

log = structlog.get_logger()
MAX_URL = 2000


def checked_url(form: dict[str, str]) -> str | None:
    """The form's media_url, if any: an http(s) URL; ValueError (the route's 400) before anything
    is registered."""
    url = (form.get("media_url") or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"media_url: 须为 http(s) 网址，且不超过 {MAX_URL} 个字符")
    return url


def allowed(url: str, hosts: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host in {h.lower().rstrip(".") for h in hosts}


def fetch(url: str, *, max_bytes: int, timeout: float, client: httpx.Client | None = None) -> bytes | None:
    """The bytes at `url`, or None if it fails, answers other than 200, or is larger than `max_bytes`
    (counted as it arrives, whatever Content-Length says). Redirects are not followed: a redirect
    could lead off the allowed host."""
    own = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        with http.stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                log.warning("media_fetch_refused", url=url, status=response.status_code)
                return None
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    log.warning("media_fetch_too_large", url=url, max_bytes=max_bytes)
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as e:
        log.warning("media_fetch_failed", url=url, error=repr(e))
        return None
    finally:
        if own:
            http.close()


def attach_media(
    evidence: Evidence, case_id: UUID, actor: Actor, url: str, *, hosts: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    """Fetched and stored if the host is allowed and the file passes the checks; otherwise the
    link alone is kept on the case (never fetched). Never fails the request: it is registered."""
    data = fetch(url, max_bytes=evidence.max_bytes, timeout=timeout) if allowed(url, hosts) else None
    if data is not None:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        try:
            evidence.attach(case_id, actor, stage=Stage.REGISTRATION, name=name, data=data, url=url)
            return {"fetched": True}
        except InvalidInputError as e:
            log.warning("media_refused", url=url, reason=e.reason)
    evidence.link(case_id, actor, stage=Stage.REGISTRATION, url=url)
    return {"fetched": False}


def media_of(case: Case) -> str | None:
    """What a service request's media_url shows: the stored file (a path under this service), or
    the link that was kept; the first of those added at registration."""
    for a in case.evidence():
        if a["stage"] == Stage.REGISTRATION:
            return f"/cases/{case.id}/attachments/{a['sha256']}" if a["sha256"] else a["url"]
    return None


def absolute(requests: list[dict[str, Any]], base: str) -> list[dict[str, Any]]:
    """Paths of stored files made into URLs of this service (they are read with a bearer token)."""
    for request in requests:
        media = request.get("media_url")
        if isinstance(media, str) and media.startswith("/"):
            request["media_url"] = base.rstrip("/") + media
    return requests
