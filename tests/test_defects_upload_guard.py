"""The input guard decides on an upload's caller before it reads the body: an anonymous client, a
bad token or a role that may not attach gets its 401/403 while the file is still unread, so it
cannot make the server hold 10 MiB in memory. Called as ASGI, to see what the app asked for."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cases.actor import Actor
from config.settings import Settings
from service import create_app
from tests.api_steps import Driver
from tests.evidence_files import jpeg
from tests.factories import AUDITOR, CLERK, DefaultReader, auth

CAP = 10 * 1024 * 1024


@pytest.fixture
def web(settings: Settings, tmp_path: Path, clock) -> Iterator[TestClient]:
    configured = dataclasses.replace(settings, attachments_path=tmp_path / "files", attachment_max_bytes=CAP)
    app = create_app(configured, log_cache=False)
    with TestClient(app) as client:
        app.state.cases.clock = clock
        client.auth = DefaultReader()
        yield client


def _post(web: TestClient, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, dict[str, str], int]:
    """The status, the headers and how many of the body's chunks the app asked for."""
    asked = 0
    started: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": chunks[asked - 1], "more_body": asked < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"stage=registration&name=a.jpg",
        "root_path": "", "client": ("203.0.113.9", 5000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"content-type", b"image/jpeg"),
                    (b"content-length", str(sum(map(len, chunks))).encode())]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    assert web.portal is not None
    web.portal.call(web.app, scope, receive, send)
    return started["status"], {k.decode(): v.decode() for k, v in started["headers"]}, asked


def _bearer(actor: Actor, case_id: str) -> dict[str, str]:
    return {"Authorization": auth(actor, case_id)["Authorization"]}


def test_an_anonymous_upload_is_refused_before_its_body_is_read(web: TestClient) -> None:
    case_id = Driver(web).register()
    body = [jpeg(), *(bytes(1024 * 1024) for _ in range(9))]  # a 10 MiB file, as a client sends it
    status, headers, asked = _post(web, f"/cases/{case_id}/attachments", {}, body)
    assert (status, asked) == (401, 0)
    assert headers["www-authenticate"].startswith("Bearer")
    status, _, asked = _post(web, f"/cases/{case_id}/attachments", {"Authorization": "Bearer forged"}, body)
    assert (status, asked) == (401, 0)
    status, _, asked = _post(web, f"/cases/{case_id}/attachments", _bearer(AUDITOR, case_id), body)
    assert (status, asked) == (403, 0)  # an auditor may not attach: known from the token alone
    status, _, asked = _post(web, f"/workbench/cases/{case_id}/attachments", {}, body)
    assert asked == 0 and status in (303, 401)  # the workbench sends a browser to sign in


def test_an_allowed_caller_is_still_read_and_judged_by_the_route(web: TestClient) -> None:
    case_id = Driver(web).register()
    photo = jpeg()
    status, _, asked = _post(web, f"/cases/{case_id}/attachments", _bearer(CLERK, case_id), [photo[:100], photo[100:]])
    assert (status, asked) == (201, 2)  # read in full, then stored
    status, _, asked = _post(web, f"/cases/{case_id}/attachments", _bearer(AUDITOR, case_id), [photo])
    assert (status, asked) == (403, 0)
