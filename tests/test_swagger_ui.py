"""The Swagger UI page at `/swagger`: served with its assets by the server itself, and working
in a real browser (headless Chromium) against the running server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.servers import RunningServer, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "server", DATABASE_URL=database_url)
    yield running
    running.stop()


def test_page_and_its_assets_are_served_here(server: RunningServer) -> None:
    with server.client() as client:
        page = client.get("/swagger")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        # Nothing from elsewhere: every asset is a path on this server.
        assert assets
        assert all(asset.startswith("/swagger/assets/") for asset in assets)
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert CONTENT_TYPES[Path(asset).suffix] in response.headers["content-type"]
            assert response.content
        schemas = re.findall(r'"url": "([^"]+)"', page.text)
        assert schemas == [
            "/rest/default/schema?services=all",
            "/rest/default/async/schema?services=all",
            "/rest/default/async/bulk/schema?services=all",
        ]
        for schema in schemas:
            assert client.get(schema).json()["swagger"] == "2.0"
        assert client.get("/swagger/assets/no-such-file.js").status_code == 404


def test_page_works_in_a_browser(server: RunningServer) -> None:
    """Anonymous, the page lists the anonymous routes; once a token is authorized, the schema
    is loaded with it and an operation runs with `Authorization: Bearer <token>`."""
    from playwright import sync_api as playwright_api

    require(
        None if Path(CHROMIUM).exists() else f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{server.base_url}/swagger")
            paths = page.locator(".opblock-summary-path")
            paths.filter(has_text="/V1/integration/admin/token").wait_for()
            assert paths.filter(has_text="/V1/bulk").count() == 0

            page.locator(".btn.authorize").first.click()
            page.locator(".auth-container input").fill(server.admin_token())
            page.locator(".auth-btn-wrapper .authorize").click()
            page.locator(".btn-done").click()
            page.reload()
            websites = page.locator(".opblock", has_text="/V1/store/websites")
            websites.locator(".opblock-summary").click()
            websites.locator(".try-out__btn").click()
            websites.locator(".execute").click()
            status = websites.locator(
                ".live-responses-table tr.response .response-col_status"
            ).first
            status.wait_for()
            assert status.inner_text().strip().startswith("200")
            assert '"code": "admin"' in websites.locator(".live-responses-table").inner_text()
        finally:
            browser.close()
