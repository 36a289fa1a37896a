"""The operator console in a real browser (headless Chromium, on SQLite): signing in with the
keyboard, a bulk's failures shown as text (markup never runs), an error group expanded in place,
retry followed live until the bulk finishes, the search form, and signing out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import require
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks
from tests.test_console import GROUPED, READY_TOPIC_PATH, SCRIPT, _grouped_bulk
from tests.test_submission import wait_until_final

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("BULKOPS_SCREENSHOTS")
"""A directory to save the pages' screenshots in (`make screenshots`)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("console-browser")
    running = start_server(
        workdir / "server",
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        HANDLER_MODULES='["tests.handler_fixtures.until_ready"]',
    )
    insert_bulks(running.database_url, [_grouped_bulk()])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright import sync_api as playwright_api

    require(
        None if Path(CHROMIUM).exists() else f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(server: RunningServer, browser: Browser) -> Iterator[Page]:
    """A new browser session, signed in with the keyboard; any dialog fails the test (a
    `<script>` from an operation would open one)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.goto(f"{server.base_url}/admin/")
    assert opened.url.startswith(f"{server.base_url}/admin/sign-in")
    opened.get_by_label("Username").fill(server.admin_username)
    opened.get_by_label("Password").fill(server.admin_password)
    opened.get_by_label("Password").press("Enter")
    opened.get_by_role("heading", name="Bulk Actions").wait_for()
    yield opened
    context.close()
    assert dialogs == []


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def test_failures_show_as_text_and_a_group_opens_in_place(page: Page) -> None:
    screenshot(page, "log")
    page.locator(f'tr[data-bulk="{GROUPED}"] a').click()
    messages = page.locator(".group-message")
    assert messages.all_inner_texts() == ["Out of stock", SCRIPT, "(no message)"]
    group = page.locator("details", has_text=SCRIPT)
    group.locator("summary").click()
    rows = group.locator("[data-operation]")
    rows.first.wait_for()
    assert rows.count() == 2
    assert "hunter2" not in group.inner_text()
    assert page.url.endswith(f"/admin/bulks/{GROUPED}")  # loaded in place
    screenshot(page, "bulk")


def test_retry_is_followed_live_until_the_bulk_finishes(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    items = [{"ready_file": str(ready), "message": "Not ready", "code": 4}] * 2
    with server.admin_client() as admin:
        submitted = admin.post(READY_TOPIC_PATH, json=items)
        uuid = submitted.json()["bulk_uuid"]
        wait_until_final(admin, uuid)
    page.reload()
    page.locator(f'tr[data-bulk="{uuid}"] a').click()
    assert page.locator("[data-status]").inner_text() == "Finished with failure"
    ready.touch()
    page.get_by_role("button", name="Retry all failed").click()
    page.get_by_role("status").filter(has_text="2 operation(s) queued again").wait_for()
    # Polled while open, then the page is loaded again once the bulk finishes.
    page.locator("[data-status]", has_text="Finished successfully").wait_for(timeout=60_000)
    assert page.get_by_text("No failed operation.").is_visible()


def test_search_form_shows_the_api_url(server: RunningServer, page: Page) -> None:
    page.get_by_role("link", name="Operation search").click()
    page.locator("#g0f0-field").select_option("error_code")
    page.locator("#g0f0-value").fill("1")
    page.locator("#sort-field").select_option("operation_key")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.results tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3
    api_url = page.locator(".api-url").inner_text().removeprefix("GET ")
    with server.admin_client() as admin:
        answer = admin.get(api_url.removeprefix(server.base_url)).json()
    shown = [int(row.get_attribute("data-id") or "") for row in rows.all()]
    assert shown == [item["id"] for item in answer["items"]]
    screenshot(page, "search")
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("img").wait_for()
    screenshot(page, "dashboard")


def test_dismiss_a_notification(page: Page) -> None:
    notification = page.locator(f'[data-notification="{GROUPED}"]')
    assert notification.locator("[data-status]").inner_text() == "Finished with failure"
    notification.get_by_role("button", name="Dismiss").click()
    page.get_by_role("heading", name="Bulk Actions").wait_for()
    assert page.locator(f'[data-notification="{GROUPED}"]').count() == 0
    assert page.locator(f'tr[data-bulk="{GROUPED}"]').count() == 1  # still in the log


def test_sign_out(server: RunningServer, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    page.goto(f"{server.base_url}/admin/")
    assert page.url.startswith(f"{server.base_url}/admin/sign-in")
