"""Rate limits per caller and per client address, and the small body limit of callers without
a token, against real `bulkops serve` processes (and a real Redis for the shared budget)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import coredis
import httpx
import pytest

from tests.conftest import require
from tests.servers import RunningServer, start_server
from tests.test_submission import CUSTOMERS, customer

WEBSITES = "/rest/V1/store/websites"
TOKEN = "/rest/V1/integration/admin/token"
REDIS = ("127.0.0.1", 6379)


def assert_too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {
        "message": "Too many requests. Try again in %seconds seconds.",
        "parameters": {"seconds": int(response.headers["retry-after"])},
    }
    assert 1 <= int(response.headers["retry-after"]) <= 24 * 3600


@pytest.fixture
def limited(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        RATE_LIMIT_PER_ADDRESS="5/day",
        RATE_LIMIT_PER_CALLER="4/day",
    )
    yield server
    server.stop()


def test_a_burst_of_anonymous_calls_gets_429_with_retry_after(limited: RunningServer) -> None:
    with limited.client() as client:
        # The admin's login is one of the address's five.
        token = limited.admin_token()
        answers = [client.get(WEBSITES).status_code for _ in range(4)]
        assert answers == [401] * 4
        assert_too_many(client.get(WEBSITES))
        assert_too_many(client.post(TOKEN, json={"username": "admin", "password": "guess"}))
        assert_too_many(client.post(CUSTOMERS, json=[customer("late@example.com")]))
        # A caller with a token has a budget of its own.
        with limited.client(headers={"Authorization": f"Bearer {token}"}) as admin:
            assert admin.get(WEBSITES).status_code == 200


def test_a_caller_has_one_budget_whatever_its_token(limited: RunningServer) -> None:
    tokens = []
    with limited.client() as client:
        for _ in range(2):
            response = client.post(
                TOKEN, json={"username": "admin", "password": limited.admin_password}
            )
            tokens.append(response.json())
    answers = []
    for n in range(4):
        headers = {"Authorization": f"Bearer {tokens[n % 2]}"}
        with limited.client(headers=headers) as admin:
            answers.append(admin.get(WEBSITES).status_code)
    assert answers == [200] * 4
    for token in tokens:
        with limited.client(headers={"Authorization": f"Bearer {token}"}) as admin:
            assert_too_many(admin.get(WEBSITES))


def redis_unavailable() -> str | None:
    try:
        socket.create_connection(REDIS, timeout=5).close()
    except OSError as error:
        return f"Redis at {REDIS[0]}:{REDIS[1]} is unavailable: {error}"
    return None


def test_servers_sharing_redis_share_one_budget(database_url: str, tmp_path: Path) -> None:
    require(redis_unavailable())
    prefix = f"test-{uuid.uuid4().hex}"
    shared = {
        "DATABASE_URL": database_url,
        "RATE_LIMIT_PER_ADDRESS": "5/day",
        "RATE_LIMIT_STORAGE_URL": "redis://{}:{}".format(*REDIS),
        # The test's own counters: never another test's, nor another run's.
        "RATE_LIMIT_KEY_PREFIX": prefix,
    }
    first = start_server(tmp_path / "first", **shared)
    try:
        second = start_server(tmp_path / "second", **shared)
    except RuntimeError:
        first.stop()
        raise
    try:
        with first.client() as one, second.client() as two:
            answers = [client.get(WEBSITES).status_code for client in (one, two, one, two, one)]
            assert answers == [401] * 5
            assert_too_many(two.get(WEBSITES))
            assert_too_many(one.get(WEBSITES))
    finally:
        first.stop()
        second.stop()
        asyncio.run(forget(prefix))


async def forget(prefix: str) -> None:
    """Deletes the test's counters (only its own: the Redis server is shared)."""
    client = coredis.Redis(*REDIS)
    keys = [key async for key in client.scan_iter(match=f"*{prefix}*")]
    assert keys, "the servers counted nothing in Redis"
    await client.delete(keys)


def test_without_a_token_a_body_has_a_small_limit(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "server", DATABASE_URL=database_url, ANONYMOUS_MAX_REQUEST_BYTES="4096"
    )
    items = [customer(f"c{n}@example.com") for n in range(60)]
    try:
        with server.client() as anonymous:
            refused = anonymous.post(CUSTOMERS, json=items)
            assert refused.status_code == 413, refused.text
            assert refused.json() == {
                "message": "The request body is larger than %max bytes. "
                "Send fewer items per request.",
                "parameters": {"max": 4096},
            }
            assert anonymous.post(CUSTOMERS, json=items[:2]).status_code == 202
        with server.admin_client() as admin:
            assert admin.post(CUSTOMERS, json=items).status_code == 202
    finally:
        server.stop()


def test_an_endless_anonymous_body_is_refused_once_past_the_limit(
    database_url: str, tmp_path: Path
) -> None:
    """A chunked body without a length: the 413 comes while the client is still sending."""
    server = start_server(
        tmp_path / "server", DATABASE_URL=database_url, ANONYMOUS_MAX_REQUEST_BYTES="4096"
    )
    port = int(server.base_url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(
                f"POST {CUSTOMERS} HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            chunk = b"[" + b" " * 8190 + b"\r\n"
            sock.sendall(f"{len(chunk) - 2:x}\r\n".encode() + chunk)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
    finally:
        server.stop()


def test_an_unreachable_store_leaves_requests_uncounted(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"redis://127.0.0.1:{unused.getsockname()[1]}"
    server = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        RATE_LIMIT_PER_CALLER="1/day",
        RATE_LIMIT_STORAGE_URL=nobody,
    )
    try:
        with server.admin_client() as admin:
            assert [admin.get(WEBSITES).status_code for _ in range(3)] == [200] * 3
        assert server.log().count("rate limit store unavailable") == 1
    finally:
        server.stop()
