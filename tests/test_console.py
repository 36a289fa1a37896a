"""The operator console at /admin/, through HTTP on a real server (every backend): sign-in,
lockout and sign-out, CSRF refusals, the Bulk Actions log's filters and paging, a bulk's
failures grouped by error (escaped, payloads redacted), retry through a real handler, and the
operation search's results equal to the API's."""

from __future__ import annotations

import asyncio
import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bulkops.api.app import create_app
from bulkops.auth.service import AuthService
from bulkops.services.redaction import MASK
from bulkops.settings import Settings
from bulkops.status import OperationStatus, UserType
from bulkops.store import bulk_log
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from bulkops.store.lifecycle import cleanup_bulks
from bulkops.store.tables import acknowledged_bulk
from tests.backends import Backend
from tests.servers import RunningServer, server_on, start_server
from tests.storage import insert_bulks, insert_bulks_async
from tests.test_submission import wait_until_final
from tests.waiting import wait_for

START = datetime(2024, 3, 1, 10, 0, 0)
LOG_BULKS = 23
GROUPED = "99999999-0000-4000-8000-000000000001"
SCRIPT = "<script>alert(1)</script>"
SECRET = "hunter2-secret"
OTHER_ADMIN = "operator"
OTHER_PASSWORD = "Operator123-test"
READY_TOPIC_PATH = "/rest/async/bulk/V1/tests/until-ready"
HANDLERS = '["tests.handler_fixtures.until_ready"]'

COMPLETE, OPEN = OperationStatus.COMPLETE, OperationStatus.OPEN
FAILED = OperationStatus.NOT_RETRIABLY_FAILED
# By i % 4: not started, in progress, finished successfully, finished with failure.
LOG_STATUSES = [[OPEN, OPEN], [COMPLETE, OPEN], [COMPLETE, COMPLETE], [COMPLETE, FAILED]]


def log_uuid(number: int) -> str:
    return f"11111111-0000-4000-8000-{number:012d}"


def _log_bulk(number: int) -> NewBulk:
    integration = number % 5 == 0
    return NewBulk(
        uuid=log_uuid(number),
        description=f"Log bulk {number:02d}",
        user_id=7 if integration else 1,
        user_type=int(UserType.INTEGRATION if integration else UserType.ADMIN),
        start_time=START + timedelta(minutes=number),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name="async.V1.products.POST",
                serialized_data='{"sku":"x"}',
                status=status,
                result_message="Broken" if status == FAILED else None,
                error_code=9 if status == FAILED else None,
            )
            for key, status in enumerate(LOG_STATUSES[number % 4])
        ],
    )


def _failed(key: int, code: int | None, message: str | None) -> NewOperation:
    return NewOperation(
        operation_key=key,
        topic_name="async.V1.products.POST",
        serialized_data=f'{{"sku":"s{key}","password":"{SECRET}"}}',
        status=FAILED,
        result_message=message,
        error_code=code,
    )


def _grouped_bulk() -> NewBulk:
    """Failures in three groups: 3 out of stock (code 1), 2 with markup (code 2), 1 with
    neither code nor message; and one completed operation."""
    operations = [
        *(_failed(key, 1, "Out of stock") for key in range(3)),
        *(_failed(key, 2, SCRIPT) for key in range(3, 5)),
        _failed(5, None, None),
        NewOperation(6, "async.V1.products.POST", '{"sku":"ok"}', status=COMPLETE),
    ]
    return NewBulk(
        uuid=GROUPED,
        description=f"Grouped {SCRIPT}",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=START - timedelta(days=1),
        operations=operations,
    )


def test_console_path_is_checked_and_the_console_can_be_off() -> None:
    for wrong in ["admin", "/admin/", "/", "/rest/admin", "/swagger/x", "/a b"]:
        with pytest.raises(ValueError, match="a path such as /admin"):
            Settings(console_path=wrong)
    paths = {getattr(route, "path", None) for route in create_app(Settings()).routes}
    assert "/admin" in paths
    off = create_app(Settings(console_enabled=False)).routes
    assert "/admin" not in {getattr(route, "path", None) for route in off}


def test_the_console_at_another_path(tmp_path: Path) -> None:
    running = start_server(tmp_path / "server", CONSOLE_PATH="/ops/console")
    try:
        with running.client() as client:
            assert (
                client.get("/ops/console/").headers["location"].startswith("/ops/console/sign-in")
            )
            form = client.get("/ops/console/sign-in")
            assert "path=/ops/console" in form.headers["set-cookie"].lower()
            assert 'action="/ops/console/sign-in"' in form.text
            assert client.get("/admin/").json()["message"]  # the API's 404
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_on(
        backend,
        tmp_path_factory.mktemp("console"),
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        HANDLER_MODULES=HANDLERS,
    ) as running:
        url = running.database_url
        insert_bulks(url, [*(_log_bulk(number) for number in range(LOG_BULKS)), _grouped_bulk()])
        asyncio.run(_create_admin(url, OTHER_ADMIN, OTHER_PASSWORD))
        yield running


async def _create_admin(url: str, username: str, password: str) -> None:
    database = Database(url)
    try:
        await AuthService(database, Settings(database_url=url)).create_admin(username, password)
    finally:
        await database.dispose()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Console:
    """A browser's view of the console: its cookies, and the CSRF token of its session."""

    client: httpx.Client
    csrf_token: str = ""

    def sign_in(self, username: str, password: str) -> httpx.Response:
        form = self.client.get("/admin/sign-in")
        token = CSRF.search(form.text)
        assert token is not None
        response = self.client.post(
            "/admin/sign-in",
            data={"csrf_token": token.group(1), "username": username, "password": password},
        )
        if response.status_code == 303:
            found = CSRF.search(self.client.get("/admin/").text)
            assert found is not None
            self.csrf_token = found.group(1)
        return response

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.client.post(path, data={"csrf_token": self.csrf_token} | data)


def new_console(server: RunningServer) -> Console:
    return Console(httpx.Client(base_url=server.base_url, timeout=30))


@pytest.fixture(scope="module")
def console(server: RunningServer) -> Iterator[Console]:
    signed_in = new_console(server)
    assert signed_in.sign_in(server.admin_username, server.admin_password).status_code == 303
    yield signed_in
    signed_in.client.close()


def bulks_listed(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return re.findall(r'data-bulk="([^"]+)"', page.text)


def log(console: Console, **filters: str) -> list[str]:
    return bulks_listed(console.get("/admin/?" + urlencode(filters)))


def test_pages_need_a_session(server: RunningServer) -> None:
    with server.client() as client:
        for path in ["/admin/", f"/admin/bulks/{GROUPED}", "/admin/search"]:
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/admin/sign-in?next=")
        assert client.get("/admin").headers["location"] == "/admin/"
        # The API is as it was: a JSON 404 outside the console.
        assert client.get("/administrator").json()["message"]


def test_sign_in_sets_a_protected_cookie_and_returns_to_the_page_asked(
    server: RunningServer,
) -> None:
    console = new_console(server)
    form = console.client.get(f"/admin/sign-in?next=/admin/bulks/{GROUPED}")
    token = CSRF.search(form.text)
    assert token is not None
    response = console.client.post(
        f"/admin/sign-in?next=/admin/bulks/{GROUPED}",
        data={
            "csrf_token": token.group(1),
            "username": server.admin_username,
            "password": server.admin_password,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/bulks/{GROUPED}"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/admin" in cookie
    assert "secure" not in cookie  # plain HTTP here
    # Sealed: the admin token in it cannot be read.
    sealed = console.client.cookies["bulkops_console"]
    assert b"token" not in base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    # Only pages of the console are gone to after signing in.
    for elsewhere in ["https://example.com/", "//example.com/admin/", "/rest/V1/bulk"]:
        other = new_console(server)
        form = other.client.get("/admin/sign-in")
        token = CSRF.search(form.text)
        assert token is not None
        answer = other.client.post(
            "/admin/sign-in?" + urlencode({"next": elsewhere}),
            data={
                "csrf_token": token.group(1),
                "username": server.admin_username,
                "password": server.admin_password,
            },
        )
        assert answer.headers["location"] == "/admin/"


def test_wrong_credentials_and_the_shared_lockout(server: RunningServer) -> None:
    console = new_console(server)
    refused = console.sign_in(OTHER_ADMIN, "wrong password")
    assert refused.status_code == 401
    assert "The account sign-in was incorrect" in refused.text
    # The same lockout as the token endpoint: six failures (the default) lock the user out,
    # here and there, even with the right password.
    for _ in range(5):
        assert console.sign_in(OTHER_ADMIN, "wrong password").status_code == 401
    assert console.sign_in(OTHER_ADMIN, OTHER_PASSWORD).status_code == 401
    with server.client() as client:
        token = client.post(
            "/rest/V1/integration/admin/token",
            json={"username": OTHER_ADMIN, "password": OTHER_PASSWORD},
        )
        assert token.status_code == 401


def test_access_unlocks_an_admin_user(server: RunningServer, console: Console) -> None:
    operator = new_console(server)
    for _ in range(6):
        operator.sign_in(OTHER_ADMIN, "wrong password")
    assert operator.sign_in(OTHER_ADMIN, OTHER_PASSWORD).status_code == 401
    row = re.search(
        rf'data-admin="{OTHER_ADMIN}">(.*?)</tr>', console.get("/admin/access").text, re.S
    )
    assert row is not None and re.search(r"data-locked>\d{4}-", row.group(1))
    unlocked = console.post("/admin/access/admins", {"username": OTHER_ADMIN, "action": "unlock"})
    assert unlocked.headers["location"] == "/admin/access?done=unlocked"
    assert operator.sign_in(OTHER_ADMIN, OTHER_PASSWORD).status_code == 303
    unknown = console.post("/admin/access/admins", {"username": "nobody", "action": "unlock"})
    assert unknown.status_code == 400
    assert "There is no admin user named" in unknown.text


def test_access_creates_and_revokes_an_integration(server: RunningServer, console: Console) -> None:
    name = f"Shop {SCRIPT}"
    created = console.post(
        "/admin/access/integrations",
        {"name": name, "resources": "Magento_Logging::system_magento_logging_bulk_operations"},
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    token = re.search(r'data-credential="access_token">(\w+)<', created.text)
    assert token is not None
    assert SCRIPT not in created.text and html.escape(SCRIPT) in created.text
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    search = "/rest/V1/bulk?searchCriteria[pageSize]=1"
    with server.client(headers=bearer) as integration:
        assert integration.get(search).status_code == 200
        # Shown once: the page lists it without its secrets.
        listed = console.get("/admin/access").text
        assert token.group(1) not in listed
        assert "data-status>active<" in listed
        revoked = console.post("/admin/access/integrations/revoke", {"name": name})
        assert revoked.headers["location"] == "/admin/access?done=integration-revoked"
        assert integration.get(search).status_code == 401
    again = console.post("/admin/access/integrations", {"name": name, "resources": "x::y"})
    assert again.status_code == 400
    unknown = console.post("/admin/access/integrations", {"name": "other", "resources": "a::b"})
    assert "is not an ACL resource of this service" in unknown.text


def test_forms_without_the_session_token_are_refused(
    server: RunningServer, console: Console
) -> None:
    retry = f"/admin/bulks/{GROUPED}/retry"
    assert console.client.post(retry, data={"scope": "all"}).status_code == 403
    wrong = console.client.post(retry, data={"scope": "all", "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert "expired" in wrong.text
    # Nothing was retried.
    assert len(groups_of(console.get(f"/admin/bulks/{GROUPED}").text)) == 3
    # The sign-in form needs its own token too.
    with server.client() as client:
        response = client.post(
            "/admin/sign-in",
            data={"username": server.admin_username, "password": server.admin_password},
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


def test_log_lists_newest_first_in_pages(console: Console) -> None:
    first = log(console, text="log bulk")
    second = log(console, text="log bulk", page="2")
    expected = [log_uuid(number) for number in reversed(range(LOG_BULKS))]
    assert first == expected[:20]
    assert second == expected[20:]
    page = console.get("/admin/?text=log+bulk").text
    assert 'rel="next"' in page and 'rel="prev"' not in page


def test_log_filters_by_status_time_user_and_text(console: Console) -> None:
    by_status = {
        status: set(log(console, text="log bulk", status=str(status))) for status in range(4)
    }
    for status, listed in by_status.items():
        assert listed == {log_uuid(n) for n in range(LOG_BULKS) if n % 4 == status}
    window = log(console, since="2024-03-01T10:10:00", until="2024-03-01T10:12:00")
    assert window == [log_uuid(12), log_uuid(11), log_uuid(10)]
    integrations = log(console, user_type=str(int(UserType.INTEGRATION)), user_id="7")
    assert integrations == [log_uuid(n) for n in (20, 15, 10, 5, 0)]
    assert log(console, text=log_uuid(4)) == [log_uuid(4)]
    assert log(console, text="LOG BULK 07") == [log_uuid(7)]
    # Wildcards typed are text.
    assert log(console, text="log_bulk") == []
    page = console.get(f"/admin/?text={log_uuid(3)}").text
    assert "Finished with failure" in page
    assert 'value="1"' in page and "Complete" in page


def test_log_sorts_by_start_time_or_description_either_way(
    server: RunningServer, console: Console
) -> None:
    names = ["sort b", "Sort A", "sort C"]  # started in this order
    uuids = [f"33333333-0000-4000-8000-{n:012d}" for n in range(3)]
    started = [START - timedelta(days=2) + timedelta(minutes=n) for n in range(3)]
    insert_bulks(
        server.database_url,
        [
            NewBulk(uuid, name, 1, int(UserType.ADMIN), start, [])
            for uuid, name, start in zip(uuids, names, started, strict=True)
        ],
    )
    b, a, c = uuids
    assert log(console, text="sort") == [c, a, b]  # newest first
    assert log(console, text="sort", sort="start_time", direction="asc") == [b, a, c]
    # Without regard to case, as Magento's collation compares.
    assert log(console, text="sort", sort="description", direction="asc") == [a, b, c]
    assert log(console, text="sort", sort="description", direction="desc") == [c, b, a]
    page = console.get("/admin/?text=sort&sort=description&direction=asc").text
    header = re.search(r'<th scope="col" aria-sort="(\w+)">\s*<a href="([^"]+)"', page)
    assert header is not None
    # The sorted column says so, and its link turns the order round, filters kept.
    assert header.group(1) == "ascending"
    assert html.unescape(header.group(2)) == "?text=sort&sort=description&direction=desc"
    for wrong, message in [("sort=status", "cannot be sorted"), ("direction=up", "direction")]:
        refused = console.get(f"/admin/?{wrong}")
        assert refused.status_code == 400 and message in refused.text


def test_log_refuses_bad_filters_with_a_message(console: Console) -> None:
    for query in ["status=9", "since=yesterday", "page=x", f"page={10**30}"]:
        response = console.get(f"/admin/?{query}")
        assert response.status_code == 400
        assert 'class="error"' in response.text


def groups_of(page: str) -> list[tuple[str, str, str]]:
    found = re.findall(
        r'class="group-count">(\d+)</span> &times;\s*'
        r'<span class="group-code">code ([^<]+)</span>:\s*'
        r'<span class="group-message">([^<]*)</span>',
        page,
    )
    return [(count, code, html.unescape(message)) for count, code, message in found]


def test_details_group_failures_by_error_and_escape_them(console: Console) -> None:
    page = console.get(f"/admin/bulks/{GROUPED}").text
    assert groups_of(page) == [
        ("3", "1", "Out of stock"),
        ("2", "2", SCRIPT),
        ("1", "none", "(no message)"),
    ]
    assert SCRIPT not in page
    assert html.escape(SCRIPT) in page
    assert "Finished with failure" in page
    # No live progress for a finished bulk.
    assert "data-progress-url" not in page


def test_a_group_shows_its_operations_with_payloads_redacted(console: Console) -> None:
    query = urlencode({"error_code": "2", "result_message": SCRIPT, "has_message": "1"})
    fragment = console.client.get(
        f"/admin/bulks/{GROUPED}/group?{query}", headers={"X-Fragment": "1"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    operations = re.findall(r'data-operation="(\d+)"', fragment.text)
    assert len(operations) == 2
    assert SECRET not in fragment.text
    assert MASK in fragment.text
    # Without a code or a message.
    none = console.get(f"/admin/bulks/{GROUPED}/group?error_code=&has_message=0")
    assert len(re.findall(r'data-operation="(\d+)"', none.text)) == 1
    assert "<html" in none.text  # a whole page, followed without script


def test_progress_and_unknown_bulks(console: Console) -> None:
    progress = console.get(f"/admin/bulks/{log_uuid(1)}/progress").json()
    assert progress == {
        "status": 1,
        "status_name": "In progress",
        "counts": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 0},
        "done": 1,
        "total": 2,
    }
    assert "data-progress-url" in console.get(f"/admin/bulks/{log_uuid(1)}").text
    missing = console.get("/admin/bulks/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert "not exist" in missing.text


def test_retry_turns_failed_operations_into_completed_ones(
    server: RunningServer, console: Console, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    items = [
        {"ready_file": str(ready), "message": "Not ready", "code": 4},
        {"ready_file": str(ready), "message": "Not ready", "code": 4},
        {"ready_file": str(ready), "message": "Later", "code": 5},
    ]
    with server.admin_client() as admin:
        submitted = admin.post(READY_TOPIC_PATH, json=items)
        assert submitted.status_code == 202, submitted.text
        uuid = submitted.json()["bulk_uuid"]
        wait_until_final(admin, uuid)
        assert uuid == log(console)[0]
        page = console.get(f"/admin/bulks/{uuid}").text
        assert groups_of(page) == [("2", "4", "Not ready"), ("1", "5", "Later")]
        ready.touch()
        group = {"scope": "group", "error_code": "4", "result_message": "Not ready"}
        retried = console.post(f"/admin/bulks/{uuid}/retry", group | {"has_message": "1"})
        assert retried.status_code == 303
        assert retried.headers["location"] == f"/admin/bulks/{uuid}?retried=2"
        statuses = [op["status"] for op in wait_until_final(admin, uuid)]
        assert statuses == [COMPLETE, COMPLETE, FAILED]
        # One operation, by its row's id as the group lists it.
        later = console.get(
            f"/admin/bulks/{uuid}/group?error_code=5&result_message=Later&has_message=1"
        )
        (operation_id,) = re.findall(r'data-operation="(\d+)"', later.text)
        one = console.post(
            f"/admin/bulks/{uuid}/retry", {"scope": "operation", "operation_id": operation_id}
        )
        assert one.headers["location"].endswith("retried=1")
        statuses = [op["status"] for op in wait_until_final(admin, uuid)]
        assert statuses == [COMPLETE] * 3
        page = console.get(f"/admin/bulks/{uuid}").text
        assert "Finished successfully" in page and "No failed operation." in page
        # Nothing left to retry.
        none = console.post(f"/admin/bulks/{uuid}/retry", {"scope": "all"})
        assert none.headers["location"].endswith("retried=0")
        assert console.post(f"/admin/bulks/{uuid}/retry", {"scope": "x"}).status_code == 400


def notified(console: Console) -> list[str]:
    """The log bulks among the notifications of the signed-in user's finished bulks."""
    found = re.findall(r'data-notification="([^"]+)"', console.get("/admin/").text)
    return [uuid for uuid in found if uuid.startswith("11111111-")]


def test_notifications_of_finished_bulks_until_dismissed(console: Console) -> None:
    # The admin's own (not the integration's) finished bulks, newest first, five at most.
    finished = [n for n in reversed(range(LOG_BULKS)) if n % 4 in (2, 3) and n % 5]
    assert notified(console) == [log_uuid(n) for n in finished][: len(notified(console))]
    newest = log_uuid(finished[0])
    dismiss = f"/admin/bulks/{newest}/dismiss"
    assert console.client.post(dismiss, data={"next": "/admin/"}).status_code == 403
    assert "Dismiss the notification" in console.get(f"/admin/bulks/{newest}").text
    response = console.post(dismiss, {"next": f"/admin/bulks/{newest}"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/bulks/{newest}"
    assert "Dismiss the notification" not in console.get(f"/admin/bulks/{newest}").text
    assert newest not in notified(console)
    assert log_uuid(finished[1]) in notified(console)
    # Again: nothing changes. An open bulk has nothing to dismiss.
    assert console.post(dismiss, {"next": "https://example.com/"}).headers["location"] == "/admin/"
    assert "Dismiss the notification" not in console.get(f"/admin/bulks/{log_uuid(1)}").text
    missing = console.post("/admin/bulks/00000000-0000-4000-8000-000000000000/dismiss", {})
    assert missing.status_code == 404


async def test_a_dismissal_goes_with_its_bulk(database: Database) -> None:
    await insert_bulks_async(database, [_log_bulk(2)])
    async with database.write() as connection:
        await bulk_log.acknowledge(connection, log_uuid(2), START)
        await bulk_log.acknowledge(connection, log_uuid(2), START)  # again: no change
        assert await bulk_log.acknowledged(connection, log_uuid(2))
    await cleanup_bulks(database, None)
    async with database.read() as connection:
        rows = await connection.execute(select(func.count()).select_from(acknowledged_bulk))
        assert rows.scalar_one() == 0


SEARCHES = [
    {"filters": [[("status", "3", "eq")]], "sort": ("id", "ASC"), "size": "5", "page": "2"},
    {
        "filters": [[("result_message", "%stock%", "like"), ("error_code", "2", "eq")]],
        "sort": ("operation_key", "DESC"),
        "size": "4",
        "page": "1",
    },
    {
        "filters": [[("description", "log bulk 1%", "like")], [("status", "1,3", "in")]],
        "sort": ("start_time", "DESC"),
        "size": "20",
        "page": "1",
    },
]


def search_query(search: dict) -> str:
    pairs = []
    for g, group in enumerate(search["filters"]):
        for f, (field, value, condition) in enumerate(group):
            prefix = f"searchCriteria[filterGroups][{g}][filters][{f}]"
            pairs += [(f"{prefix}[field]", field), (f"{prefix}[value]", value)]
            pairs.append((f"{prefix}[conditionType]", condition))
    field, direction = search["sort"]
    pairs += [
        ("searchCriteria[sortOrders][0][field]", field),
        ("searchCriteria[sortOrders][0][direction]", direction),
        ("searchCriteria[pageSize]", search["size"]),
        ("searchCriteria[currentPage]", search["page"]),
    ]
    return urlencode(pairs)


@pytest.mark.parametrize("search", SEARCHES)
def test_search_results_equal_the_apis(
    server: RunningServer, console: Console, search: dict
) -> None:
    page = console.get(f"/admin/search?{search_query(search)}")
    assert page.status_code == 200, page.text
    shown = [int(found) for found in re.findall(r'data-id="(\d+)"', page.text)]
    total = re.search(r"<caption>(\d+) operation\(s\) match", page.text)
    url = re.search(r'class="api-url">GET ([^<]+)</code>', page.text)
    assert total is not None and url is not None
    api_url = html.unescape(url.group(1))
    assert api_url.startswith(f"{server.base_url}/rest/V1/bulk?searchCriteria")
    with server.admin_client() as admin:
        answer = admin.get(api_url.removeprefix(server.base_url)).json()
    assert shown == [item["id"] for item in answer["items"]]
    assert int(total.group(1)) == answer["total_count"]
    assert shown  # each search finds something
    assert (
        f"curl -g -H &#34;Authorization: Bearer $TOKEN&#34; &#39;{url.group(1)}&#39;" in page.text
    )


def test_search_form_keeps_what_was_sent_and_explains_errors(console: Console) -> None:
    empty_rows = "searchCriteria[filterGroups][1][filters][1][field]=&searchCriteria[pageSize]=3"
    page = console.get(f"/admin/search?{empty_rows}")
    assert page.status_code == 200
    assert "searchCriteria[pageSize]=3" in page.text
    assert "filterGroups" not in page.text.split('class="api-url"')[1].split("</code>")[0]
    bad = console.get(
        "/admin/search?searchCriteria[filterGroups][0][filters][0][field]=status"
        "&searchCriteria[filterGroups][0][filters][0][value]=x"
    )
    assert bad.status_code == 400
    assert 'class="error"' in bad.text
    assert "<option selected>status</option>" in bad.text
    assert console.get("/admin/search?searchCriteria[pageSize]=0").status_code == 400


def api_count(server: RunningServer, *filters: tuple[str, str, str]) -> int:
    pairs = [("searchCriteria[pageSize]", "1")]
    for g, (field, value, condition) in enumerate(filters):
        prefix = f"searchCriteria[filterGroups][{g}][filters][0]"
        pairs += [(f"{prefix}[field]", field), (f"{prefix}[value]", value)]
        pairs.append((f"{prefix}[conditionType]", condition))
    with server.admin_client() as admin:
        return int(admin.get(f"/rest/V1/bulk?{urlencode(pairs)}").json()["total_count"])


def test_dashboard_counts_as_the_api_does(server: RunningServer, console: Console) -> None:
    page = console.get("/admin/dashboard")
    assert page.status_code == 200
    bars = re.findall(r'data-bar="(\d)">.*?data-count>(\d+)<', page.text, re.S)
    assert [status for status, _ in bars] == ["1", "2", "3", "4", "5"]
    for status, count in bars:
        assert int(count) == api_count(server, ("status", status, "eq")), status
    opened = re.search(r"<strong data-open>(\d+)</strong>", page.text)
    assert opened is not None
    assert int(opened.group(1)) == api_count(server, ("status", "4", "eq"))
    assert 'role="img"' in page.text  # the chart is described for screen readers


@dataclass(frozen=True)
class DashboardFigures:
    finished: int
    failed: int
    topics: dict[str, tuple[int, int, str]]
    """By topic: finished, failed, the failure rate as shown."""
    hours: list[tuple[int, int]]
    """The chart's table: finished and failed in each hour."""


def dashboard_figures(console: Console) -> DashboardFigures:
    page = console.get("/admin/dashboard").text
    finished = re.search(r"data-finished>(\d+)<", page)
    failed = re.search(r"data-failed>(\d+)<", page)
    assert finished is not None and failed is not None
    topics = re.findall(
        r'<tr data-topic="[^"]*"><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td>\s*'
        r"<td data-rate>([^<]+)</td>",
        page,
    )
    by_hour = page[page.index('class="by-hour"') :]
    hours = re.findall(r"<tr><td>\d\d:\d\d</td><td>(\d+)</td><td>(\d+)</td></tr>", by_hour)
    return DashboardFigures(
        int(finished.group(1)),
        int(failed.group(1)),
        {topic: (int(done), int(bad), rate) for topic, done, bad, rate in topics},
        [(int(done), int(bad)) for done, bad in hours],
    )


def test_dashboard_charts_what_finished_and_the_failure_rate_by_topic(
    console: Console, server: RunningServer, tmp_path: Path
) -> None:
    before = dashboard_figures(console)
    ready = tmp_path / "ready"
    ready.touch()
    items = [
        {"ready_file": str(ready), "message": "Done", "code": 1},
        {"ready_file": str(ready), "message": "Done", "code": 1},
        {"ready_file": str(tmp_path / "missing"), "message": "Not ready", "code": 4},
    ]
    with server.admin_client() as admin:
        submitted = admin.post(READY_TOPIC_PATH, json=items)
        assert submitted.status_code == 202, submitted.text
        topic = wait_until_final(admin, submitted.json()["bulk_uuid"])[0]["topic_name"]
    after = dashboard_figures(console)
    assert (after.finished - before.finished, after.failed - before.failed) == (3, 1)
    finished, failed, rate = after.topics[topic]
    was = before.topics.get(topic, (0, 0, ""))
    assert (finished - was[0], failed - was[1]) == (3, 1)
    assert rate == f"{100 * failed / finished:.1f} %"
    # The chart's text alternative, by hour, adds up to the same.
    assert sum(hour[0] for hour in after.hours) == after.finished
    assert sum(hour[1] for hour in after.hours) == after.failed
    assert len(after.hours) == 24


def queue_figures(console: Console) -> dict[str, int]:
    page = console.get("/admin/dashboard").text
    return {
        name: int(count)
        for name, count in re.findall(r"<strong data-queue-(\w+)>(\d+)</strong>", page)
    }


def test_dashboard_tells_what_waits_in_the_queue(
    tmp_path: Path, queue_settings: dict[str, str]
) -> None:
    """A bulk of three, in order, and no worker: its first operation is due (under `amqp`:
    published, its row held until it is final, and ready in RabbitMQ), the other two wait
    behind it."""
    running = start_server(
        tmp_path / "server", "--no-worker", HANDLER_MODULES=HANDLERS, **queue_settings
    )
    try:
        console = new_console(running)
        assert console.sign_in(running.admin_username, running.admin_password).status_code == 303
        assert queue_figures(console) == {"due": 0, "later": 0, "blocked": 0} | (
            {} if queue_settings["QUEUE_URL"] == "db" else {"ready": 0}
        )
        items = [{"ready_file": "x", "message": "m", "code": 1}] * 3
        with running.admin_client() as admin:
            assert admin.post(READY_TOPIC_PATH, json=items).status_code == 202
        if queue_settings["QUEUE_URL"] == "db":
            expected = {"due": 1, "later": 0, "blocked": 2}
        else:
            expected = {"due": 0, "later": 1, "blocked": 2, "ready": 1}
        wait_for(lambda: queue_figures(console) == expected, 30, "the queue as expected")
        page = console.get("/admin/dashboard").text
        assert ("the oldest since" in page) == (queue_settings["QUEUE_URL"] == "db")
    finally:
        running.stop()


def test_sign_out_ends_the_session_and_its_token(server: RunningServer) -> None:
    console = new_console(server)
    assert console.sign_in(server.admin_username, server.admin_password).status_code == 303
    cookie = console.client.cookies["bulkops_console"]
    response = console.post("/admin/sign-out", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/sign-in"
    assert console.get("/admin/").status_code == 303
    # The cookie kept by someone else is worthless: its token is revoked.
    with server.client(cookies={"bulkops_console": cookie}) as stolen:
        assert stolen.get("/admin/").status_code == 303
    with server.client(cookies={"bulkops_console": cookie + "x"}) as forged:
        assert forged.get("/admin/").status_code == 303
