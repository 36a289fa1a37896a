"""Admin tokens, bearer tokens and the first admin user, against a real server."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import Engine

from bulkops.auth.context import BULK_OPERATIONS, STORES
from bulkops.store.tables import access_token, admin_user
from tests import integrations
from tests.backends import Backend, sync_url
from tests.integrations import bulkops_cli
from tests.servers import RunningServer, server_on, start_server
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

TOKEN_PATH = "/rest/V1/integration/admin/token"
# Guarded by Magento_Backend::store (module-store/etc/webapi.xml).
GUARDED_PATH = "/rest/V1/store/websites"
TOKEN_SHAPE = re.compile(r"[a-z0-9]{32}")
SIGN_IN_FAILED = {
    "message": "The account sign-in was incorrect or your account is disabled temporarily. "
    "Please wait and try again later."
}
NOT_AUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Backend::store"},
}
REQUIRED_MESSAGE = '"%fieldName" is required. Enter and try again.'
BOTH_REQUIRED = {
    "message": "One or more input exceptions have occurred.",
    "errors": [
        {"message": REQUIRED_MESSAGE, "parameters": {"fieldName": "username"}},
        {"message": REQUIRED_MESSAGE, "parameters": {"fieldName": "password"}},
    ],
}
GENERATED_PASSWORD = re.compile(r'created admin user "admin" with password (\S+)')


def create_integration(server: RunningServer, name: str, *resources: str) -> str:
    """A new integration's access token."""
    return integrations.create_integration(server.database_url, name, *resources).access_token


def create_admin(server: RunningServer, username: str, password: str) -> None:
    result = bulkops_cli(server.database_url, "admin", "create", username, "--password", password)
    assert result.returncode == 0, result.stderr


def sign_in(server: RunningServer, username: str, password: str) -> tuple[int, object]:
    with server.client() as client:
        response = client.post(TOKEN_PATH, json={"username": username, "password": password})
    return response.status_code, response.json()


def guarded_status(server: RunningServer, token: str) -> int:
    with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
        return client.get(GUARDED_PATH).status_code


@pytest.fixture(scope="module")
def shared_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server for the tests that change nothing another test reads (a few failed
    sign-ins of `admin`, fewer than a lockout takes, are forgotten at its next success)."""
    with server_on(backend, tmp_path_factory.mktemp("auth")) as running:
        yield running


@pytest.fixture
def engine(server: RunningServer) -> Iterator[Engine]:
    """A direct connection to the test server's database."""
    engine = create_engine(sync_url(server.database_url))
    yield engine
    engine.dispose()


# The admin token


def test_admin_token_is_a_bare_json_string_that_authorizes(shared_server: RunningServer) -> None:
    with shared_server.client() as client:
        response = client.post(
            TOKEN_PATH,
            json={
                "username": shared_server.admin_username,
                "password": shared_server.admin_password,
            },
        )
        second = client.post(
            TOKEN_PATH,
            json={
                "username": shared_server.admin_username,
                "password": shared_server.admin_password,
            },
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    token = response.json()
    assert TOKEN_SHAPE.fullmatch(token)
    assert response.text == f'"{token}"'
    assert second.json() != token
    assert guarded_status(shared_server, token) == 200
    assert guarded_status(shared_server, second.json()) == 200


def test_authorization_header_on_the_token_request_is_ignored(shared_server: RunningServer) -> None:
    with shared_server.client(headers={"Authorization": "Bearer not-a-token"}) as client:
        response = client.post(
            TOKEN_PATH,
            json={
                "username": shared_server.admin_username,
                "password": shared_server.admin_password,
            },
        )
    assert response.status_code == 200
    assert TOKEN_SHAPE.fullmatch(response.json())


def test_extra_body_keys_are_ignored(shared_server: RunningServer) -> None:
    with shared_server.client() as client:
        response = client.post(
            TOKEN_PATH,
            json={
                "username": shared_server.admin_username,
                "password": shared_server.admin_password,
                "x": 1,
            },
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "Admin123-wrong"), ("admin", "admin123-test"), ("nobody", "Admin123-test")],
)
def test_wrong_credentials_get_magentos_401(
    shared_server: RunningServer, username: str, password: str
) -> None:
    status, body = sign_in(shared_server, username, password)
    assert (status, body) == (401, SIGN_IN_FAILED)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, BOTH_REQUIRED),
        ({"username": "", "password": ""}, BOTH_REQUIRED),
        ({"username": None, "password": None}, BOTH_REQUIRED),
        ({"Username": "admin", "Password": "Admin123-test"}, BOTH_REQUIRED),
        (
            {"username": "admin"},
            {"message": REQUIRED_MESSAGE, "parameters": {"fieldName": "password"}},
        ),
        (
            {"password": "Admin123-test", "username": ""},
            {"message": REQUIRED_MESSAGE, "parameters": {"fieldName": "username"}},
        ),
    ],
)
def test_missing_fields_get_magentos_400(
    shared_server: RunningServer, body: dict[str, object], expected: dict[str, object]
) -> None:
    with shared_server.client() as client:
        response = client.post(TOKEN_PATH, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == expected


def test_an_empty_body_is_missing_fields(shared_server: RunningServer) -> None:
    with shared_server.client() as client:
        response = client.post(TOKEN_PATH, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, BOTH_REQUIRED)


@pytest.mark.parametrize("content", [b'{"username": "admin", ', b"username=admin", b"\xff{}"])
def test_invalid_json_is_a_decoding_error(shared_server: RunningServer, content: bytes) -> None:
    with shared_server.client() as client:
        response = client.post(
            TOKEN_PATH, content=content, headers={"Content-Type": "application/json"}
        )
    assert (response.status_code, response.json()) == (400, {"message": "Decoding error."})


@pytest.mark.parametrize("content", [b'["admin", "Admin123-test"]', b'"admin"', b"42", b"null"])
def test_json_that_is_not_an_object_has_no_fields(
    shared_server: RunningServer, content: bytes
) -> None:
    """Magento casts the decoded body to an array: a list or a scalar has keys 0, 1..."""
    with shared_server.client() as client:
        response = client.post(
            TOKEN_PATH, content=content, headers={"Content-Type": "application/json"}
        )
    assert (response.status_code, response.json()) == (400, BOTH_REQUIRED)


def test_scalars_are_converted_as_magento_does(server: RunningServer) -> None:
    """TypeProcessor::processSimpleAndAnyType: a number given for a string is its text (a
    float as PHP writes it), true is "1"."""
    create_admin(server, "1234567", "1.0E+20")
    create_admin(server, "1", "Boolean123")
    with server.client() as client:
        numbers = client.post(TOKEN_PATH, json={"username": 1234567, "password": 1e20})
        boolean = client.post(TOKEN_PATH, json={"username": True, "password": "Boolean123"})
        wrong = client.post(TOKEN_PATH, json={"username": "1234567", "password": 123})
    assert numbers.status_code == 200 and TOKEN_SHAPE.fullmatch(numbers.json())
    assert boolean.status_code == 200 and TOKEN_SHAPE.fullmatch(boolean.json())
    # A password given as a number is checked as its text, not refused as input.
    assert (wrong.status_code, wrong.json()) == (401, SIGN_IN_FAILED)


def test_a_field_that_is_no_scalar_is_a_400(shared_server: RunningServer) -> None:
    """The first parameter that cannot be converted fails the request before any missing one
    is reported (ServiceInputProcessor::process), without the nested "Error occurred during"
    prefix, and Magento renders the message itself."""
    with shared_server.client() as client:
        response = client.post(TOKEN_PATH, json={"username": ["admin"]})
    assert response.status_code == 400
    assert response.json() == {
        "message": 'The "array" value\'s type is invalid. The "string" type was expected. '
        "Verify and try again."
    }


def test_a_huge_body_is_refused(shared_server: RunningServer) -> None:
    with shared_server.client() as client:
        response = client.post(
            TOKEN_PATH, json={"username": "admin", "password": "x" * 100_000 + "1"}
        )
    assert response.status_code == 413


# Lockout


def test_six_failures_lock_the_user_even_for_the_right_password(server: RunningServer) -> None:
    create_admin(server, "auth-locked-out", "Locked123")
    for _ in range(6):
        assert sign_in(server, "auth-locked-out", "Wrong1234") == (401, SIGN_IN_FAILED)
    assert sign_in(server, "auth-locked-out", "Locked123") == (401, SIGN_IN_FAILED)
    # Other users are not affected.
    assert sign_in(server, server.admin_username, server.admin_password)[0] == 200


def test_a_success_resets_the_failure_count(server: RunningServer) -> None:
    create_admin(server, "auth-forgetful", "Forgetful1")
    for _ in range(2):
        for _ in range(5):
            assert sign_in(server, "auth-forgetful", "Wrong1234")[0] == 401
        assert sign_in(server, "auth-forgetful", "Forgetful1")[0] == 200


# Expiry of tokens and locks (a server with short lifetimes)


@pytest.fixture
def short_server(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "short",
        DATABASE_URL=database_url,
        ADMIN_TOKEN_LIFETIME_HOURS="0.0003",  # 1.08 s
        LOGIN_MAX_FAILURES="2",
        LOGIN_LOCK_MINUTES="0.02",  # 1.2 s
    )
    yield running
    running.stop()


def test_admin_tokens_expire(short_server: RunningServer) -> None:
    status, token = sign_in(short_server, short_server.admin_username, short_server.admin_password)
    issued = time.monotonic()
    assert status == 200
    assert isinstance(token, str)
    assert guarded_status(short_server, token) == 200
    # Expiry is stored in whole seconds, rounded up: at most one more second.
    time.sleep(max(0.0, issued + 2.2 - time.monotonic()))
    assert guarded_status(short_server, token) == 401


def test_locks_expire(short_server: RunningServer) -> None:
    name, password = short_server.admin_username, short_server.admin_password
    for _ in range(2):
        assert sign_in(short_server, name, "Wrong1234")[0] == 401
    locked_at = time.monotonic()
    assert sign_in(short_server, name, password)[0] == 401
    time.sleep(max(0.0, locked_at + 2.3 - time.monotonic()))
    assert sign_in(short_server, name, password)[0] == 200


# Bearer tokens


def test_no_token_is_a_guest_and_gets_magentos_401(shared_server: RunningServer) -> None:
    with shared_server.client() as client:
        response = client.get(GUARDED_PATH)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == NOT_AUTHORIZED


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer " + "a" * 32, "Bearer", "Basic YWRtaW46QWRtaW4xMjMtdGVzdA=="],
)
def test_invalid_tokens_get_magentos_401(shared_server: RunningServer, authorization: str) -> None:
    with shared_server.client(headers={"Authorization": authorization}) as client:
        response = client.get(GUARDED_PATH)
    assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)


def test_the_admin_client_is_authorized(shared_server: RunningServer) -> None:
    with shared_server.admin_client() as client:
        assert client.get(GUARDED_PATH).status_code == 200


def test_integration_tokens_from_the_cli_authorize(server: RunningServer) -> None:
    token = create_integration(server, "auth-erp")
    assert TOKEN_SHAPE.fullmatch(token)
    assert guarded_status(server, token) == 200


def test_integration_tokens_carry_only_their_resources(server: RunningServer) -> None:
    bulk_only = create_integration(server, "auth-bulk-reader", BULK_OPERATIONS)
    stores_only = create_integration(server, "auth-store-reader", STORES)
    with server.client(headers={"Authorization": f"Bearer {bulk_only}"}) as client:
        response = client.get(GUARDED_PATH)
    assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)
    assert guarded_status(server, stores_only) == 200


def test_the_bulk_operations_resource_guards_the_operation_search(server: RunningServer) -> None:
    bulk_reader = create_integration(server, "auth-bulk-searcher", BULK_OPERATIONS)
    store_reader = create_integration(server, "auth-store-viewer", STORES)
    path = "/rest/V1/bulk?searchCriteria="
    with server.client() as client:
        guest = client.get(path)
    with server.client(headers={"Authorization": f"Bearer {store_reader}"}) as client:
        wrong_resource = client.get(path)
    for response in (guest, wrong_resource):
        assert response.status_code == 401
        assert response.json() == {
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": BULK_OPERATIONS},
        }
    with server.client(headers={"Authorization": f"Bearer {bulk_reader}"}) as client:
        assert client.get(path).status_code == 200
    with server.admin_client() as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("cache_seconds", [0.0, 3.0])
def test_deactivated_admins_lose_their_tokens_once_the_token_cache_forgets_them(
    tmp_path: Path, database_url: str, cache_seconds: float
) -> None:
    server = start_server(
        tmp_path / "cached", DATABASE_URL=database_url, TOKEN_CACHE_SECONDS=str(cache_seconds)
    )
    engine = create_engine(sync_url(database_url))
    try:
        create_admin(server, "auth-leaver", "Leaver123")
        # The token is resolved (and cached) no sooner than this.
        first_used = time.monotonic()
        _, token = sign_in(server, "auth-leaver", "Leaver123")
        assert isinstance(token, str)
        assert guarded_status(server, token) == 200
        with engine.begin() as connection:
            connection.execute(
                update(admin_user)
                .where(admin_user.c.username == "auth-leaver")
                .values(is_active=False)
            )
        if cache_seconds:
            # Resolved a moment ago: this process trusts the token a little longer (a busy
            # machine may have taken longer than that moment already).
            cached = guarded_status(server, token)
            if time.monotonic() - first_used < cache_seconds:
                assert cached == 200
            wait_for(
                lambda: guarded_status(server, token) == 401,
                timeout=cache_seconds + 30,
                what="the cached token to be refused",
            )
            # Never refused before the cache's time was up.
            assert cached == 401 or time.monotonic() - first_used >= cache_seconds
        assert guarded_status(server, token) == 401
        assert sign_in(server, "auth-leaver", "Leaver123") == (401, SIGN_IN_FAILED)
    finally:
        engine.dispose()
        server.stop()


def test_passwords_and_tokens_are_stored_hashed(server: RunningServer, engine: Engine) -> None:
    token = server.admin_token()
    with engine.connect() as connection:
        admin = connection.execute(
            select(admin_user).where(admin_user.c.username == server.admin_username)
        ).one()
        hashes = connection.execute(select(access_token.c.token_hash)).scalars().all()
    assert admin.password_hash.startswith("$argon2id$")
    assert not any(server.admin_password in str(value) for value in admin)
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert token not in hashes


# The first admin user


def test_without_configured_admin_one_is_created_once_with_a_printed_password(
    tmp_path: Path, database_url: str
) -> None:
    first = start_server(tmp_path, DATABASE_URL=database_url, ADMIN_USERNAME="", ADMIN_PASSWORD="")
    try:
        printed = GENERATED_PASSWORD.findall(first.log())
        assert len(printed) == 1
        assert sign_in(first, "admin", printed[0])[0] == 200
    finally:
        first.stop()
    second = start_server(tmp_path, DATABASE_URL=database_url, ADMIN_USERNAME="", ADMIN_PASSWORD="")
    try:
        assert "created admin user" not in second.log()
        assert sign_in(second, "admin", printed[0])[0] == 200
    finally:
        second.stop()


def test_servers_starting_together_create_one_admin(tmp_path: Path, database_url: str) -> None:
    servers: list[RunningServer] = []
    try:
        with ThreadPoolExecutor(3) as pool:
            starting = [
                pool.submit(
                    start_server,
                    tmp_path / f"server{index}",
                    DATABASE_URL=database_url,
                    ADMIN_USERNAME="",
                    ADMIN_PASSWORD="",
                )
                for index in range(3)
            ]
        servers = [future.result() for future in starting if future.exception() is None]
        assert len(servers) == 3, [str(future.exception()) for future in starting]
        printed = [password for s in servers for password in GENERATED_PASSWORD.findall(s.log())]
        assert len(printed) == 1
        assert all(sign_in(s, "admin", printed[0])[0] == 200 for s in servers)
    finally:
        for running in servers:
            running.stop()


def test_the_configured_admin_password_is_applied_at_start(
    tmp_path: Path, database_url: str
) -> None:
    first = start_server(tmp_path, DATABASE_URL=database_url, ADMIN_PASSWORD="Before123")
    first.stop()
    second = start_server(tmp_path, DATABASE_URL=database_url, ADMIN_PASSWORD="After1234")
    try:
        assert sign_in(second, "admin", "Before123")[0] == 401
        assert sign_in(second, "admin", "After1234")[0] == 200
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"ADMIN_PASSWORD": "letters-only"},
            "Your password must include both numeric and alphabetic characters.",
        ),
        ({"ADMIN_PASSWORD": "abc12"}, "Your password must be at least 7 characters."),
        ({"ADMIN_PASSWORD": ""}, "Set both BULKOPS_ADMIN_USERNAME and BULKOPS_ADMIN_PASSWORD"),
    ],
)
def test_a_bad_configured_admin_stops_the_start(
    tmp_path: Path, database_url: str, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(RuntimeError, match="exited early") as failure:
        start_server(tmp_path, DATABASE_URL=database_url, **settings)
    assert message in str(failure.value)
