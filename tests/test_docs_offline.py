"""/docs on an intranet without internet: Swagger UI comes from the package,
and the page asks no other host for anything."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from tests.serving import serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
LOCAL = "127.0.0.1"


def test_the_docs_page_names_no_other_host_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200
    html = page.text
    assert "://" not in html and "//cdn" not in html, "every asset must come from this server"
    assert '"validatorUrl": null' in html, "Swagger UI would otherwise send the spec to validator.swagger.io"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//")
        answer = client.get(asset, headers={"Authorization": ""})
        assert answer.status_code == 200 and len(answer.content) > 500, asset
    assert client.get("/redoc", headers={"Authorization": ""}).status_code == 404  # ReDoc needs a CDN: off


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    yield from serve(settings)


@pytest.mark.e2e
def test_swagger_ui_renders_every_operation_in_a_browser_that_cannot_leave_the_machine(served: str) -> None:
    sync_playwright = _playwright()
    operations = sum(len(ops) for ops in httpx.get(f"{served}/openapi.json").json()["paths"].values())
    left: list[str] = []

    def only_local(route):  # type: ignore[no-untyped-def]
        url = route.request.url
        if urlsplit(url).hostname == LOCAL:
            route.continue_()
        else:
            left.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_local)
            page.goto(f"{served}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            shown = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert left == [], f"the page asked other hosts: {left}"
    assert shown == operations
    assert title.startswith("Minqing")


def _playwright():  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI (.ci/run installs it): {CHROMIUM} not found")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright
