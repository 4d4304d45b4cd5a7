"""The workbench's attachments in a real headless Chromium against a real `minqing serve`: the
grid leader uploads a photo with the case page's own form (multipart, no JavaScript needed), and
the page shows it as a thumbnail the browser really decodes, fetched through the access-checked
route with the sign-in cookie."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from tests.evidence_files import PDF, jpeg
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID, SECURITY, auth, migrated, registration
from tests.serving import serve
from tests.test_workbench_browser import ARGS, CHROMIUM, sign_in

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    where = tmp_path_factory.mktemp("attachments-browser")
    settings = migrated(Settings(sqlite_path=where / "minqing.sqlite3", **SECURITY))
    yield from serve(settings, MINQING_ATTACHMENTS_PATH=str(where / "files"))


def test_a_photo_uploaded_on_the_case_page_shows_as_a_thumbnail(server: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=server) as api:
        case_id = api.post("/cases", json=registration(), headers=auth(CLERK)).json()["case_id"]
        for command, body in (
            ("classify", {"handling_type": "committed", "tier": "small"}),
            ("assign", {"assignee": LEADER_OF_GRID}),
        ):
            assert api.post(f"/cases/{case_id}/{command}", json=body, headers=auth(CLERK)).status_code == 200
        assert api.post(f"/cases/{case_id}/accept", json={}, headers=auth(GRID_LEADER)).status_code == 200
        sent = api.post(
            f"/cases/{case_id}/attachments",
            params={"stage": "progress", "name": "整改清单.pdf"},
            content=PDF,
            headers={**auth(GRID_LEADER), "Content-Type": "application/pdf"},
        )
        assert sent.status_code == 201, sent.text
    photo = tmp_path / "整改前.jpg"
    photo.write_bytes(jpeg(size=(320, 240)))

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page: Any = sign_in(browser.new_context(locale="zh-CN").new_page(), server, GRID_LEADER)
            page.goto(f"{server}/workbench/cases/{case_id}")
            assert page.locator("#attachments a", has_text="整改清单.pdf").count() == 1
            page.locator("summary", has_text="添加附件").click()
            page.select_option("#attachments-stage", "before")
            page.set_input_files("#attachments-file", str(photo))
            page.get_by_role("button", name="提交添加附件").click()
            page.wait_for_url("**done=**")
            assert "已添加附件" in page.locator("p.notice").inner_text()
            image = page.locator('#attachments li[data-stage="before"] img')
            image.wait_for()
            width = image.evaluate("img => img.decode().then(() => img.naturalWidth)")
            assert width == 320  # the browser fetched and decoded the very photo, through the checked route
        finally:
            browser.close()
