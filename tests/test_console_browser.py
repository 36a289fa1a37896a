"""The operator console in a real browser (headless Chromium, on SQLite): signing in with the
keyboard, a bulk's failures shown as text (markup never runs), an error group expanded in place,
retry followed live until the bulk finishes, the search form, and signing out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from bulkops.status import UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.backends import sync_url
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


LIVE = "22222222-0000-4000-8000-000000000001"


def _live_bulk() -> NewBulk:
    """Two open operations with no message queued: no worker runs them; the test finishes
    them behind the server's back."""
    operations = [NewOperation(key, "async.V1.products.POST", "{}") for key in range(2)]
    return NewBulk(LIVE, "Live", 1, int(UserType.ADMIN), datetime(2024, 1, 1), operations)


def complete(database_url: str, operation_key: int) -> None:
    engine = sqlalchemy.create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE bulkops_operation SET status = 1"
                f" WHERE bulk_uuid = '{LIVE}' AND operation_key = {operation_key}"
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("console-browser")
    running = start_server(
        workdir / "server",
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        HANDLER_MODULES='["tests.handler_fixtures.until_ready"]',
    )
    insert_bulks(running.database_url, [_grouped_bulk(), _live_bulk()])
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


def test_an_open_bulk_shows_its_progress_live(server: RunningServer, page: Page) -> None:
    page.goto(f"{server.base_url}/admin/bulks/{LIVE}")
    status = page.locator("[data-status]")
    assert status.inner_text() == "Not started"
    complete(server.database_url, 0)
    page.locator("[data-status]", has_text="In progress").wait_for()
    assert page.locator("[data-progress-text]").inner_text() == "1 / 2"
    assert page.locator('[data-count="1"]').inner_text() == "1"
    complete(server.database_url, 1)
    # Finished: loaded again, without the polling.
    page.locator("[data-progress-url]").wait_for(state="detached")
    assert page.locator("[data-status]").inner_text() == "Finished successfully"


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
    page.get_by_role("img").first.wait_for()
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


SERIOUS = ("serious", "critical")
WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth)
    .slice(-5).map(e => e.outerHTML.slice(0, 120))"""
PHONE = {"width": 375, "height": 740}


def _focus(page: Page, selector: str, presses: int = 30) -> None:
    """Tab until `selector` has the focus (if it has not already), as a keyboard user gets
    to it."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reached with the Tab key")


def _check(page: Page, name: str) -> None:
    """No serious or critical axe-core violation; at phone width the page does not scroll
    sideways."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    serious = [
        (violation["id"], [node["target"] for node in violation["nodes"]])
        for violation in found
        if violation["impact"] in SERIOUS
    ]
    assert serious == [], name
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (name, overflow, page.evaluate(WIDER_THAN_THE_WINDOW))


def test_every_page_is_accessible_by_keyboard_and_fits_a_phone(
    server: RunningServer, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{server.base_url}/admin/")
        _check(page, "sign-in")
        # Keyboard only: Tab to each field, Enter to send.
        _focus(page, "#username")
        page.keyboard.type(server.admin_username)
        _focus(page, "#password", presses=2)
        page.keyboard.type(server.admin_password)
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Bulk Actions").wait_for()
        _check(page, "log")
        _focus(page, 'header a[href$="/dashboard"]')
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Dashboard", exact=True).wait_for()
        _check(page, "dashboard")
        _focus(page, 'header a[href$="/search"]')
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Operation search").wait_for()
        _check(page, "search")
        for path, name in [(f"bulks/{GROUPED}", "details"), ("access", "access")]:
            page.goto(f"{server.base_url}/admin/{path}")
            _check(page, name)
    finally:
        context.close()
