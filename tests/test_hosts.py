"""Behind a proxy: only configured Host values are answered and believed, and forwarded
headers only from configured proxies, against real `bulkops serve` processes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.servers import RunningServer, start_server

STORE_CONFIGS = "/rest/V1/store/storeConfigs"
WEBSITES = "/rest/V1/store/websites"


def base_url(server: RunningServer, **headers: str) -> str:
    """storeConfigs' base URL, for a request with these headers (`x_forwarded_proto=`)."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    with server.admin_client() as admin:
        response = admin.get(STORE_CONFIGS, headers=sent)
    assert response.status_code == 200, response.text
    return response.json()[0]["base_url"]


def test_any_host_accepted_is_never_reflected(database_url: str, tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", DATABASE_URL=database_url)
    try:
        assert base_url(server, host="evil.example") == server.base_url + "/"
        with server.client() as client:
            schema = client.get("/rest/schema", headers={"host": "evil.example"}).json()
        assert schema["host"] == server.base_url.removeprefix("http://")
    finally:
        server.stop()


def test_only_trusted_hosts_are_answered_and_reported(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        TRUSTED_HOSTS=json.dumps(["shop.example.com", "*.api.example.com", "127.0.0.1"]),
    )
    try:
        with server.client() as client:
            refused = client.get(WEBSITES, headers={"host": "evil.example"})
            assert refused.status_code == 400
            assert refused.json() == {"message": "Invalid host header."}
            # Load balancers check health by address.
            health = client.get("/health", headers={"host": "10.1.2.3:8080"})
            assert health.status_code == 200
        assert base_url(server, host="shop.example.com") == "http://shop.example.com/"
        assert base_url(server, host="eu.api.example.com:8443") == "http://eu.api.example.com:8443/"
        # The test connects from 127.0.0.1, a trusted proxy by default.
        forwarded = base_url(server, host="shop.example.com", x_forwarded_proto="https")
        assert forwarded == "https://shop.example.com/"
    finally:
        server.stop()


def test_forwarded_headers_count_only_from_trusted_proxies(
    database_url: str, tmp_path: Path
) -> None:
    settings = {
        "DATABASE_URL": database_url,
        "TRUSTED_HOSTS": json.dumps(["shop.example.com", "127.0.0.1"]),
        "RATE_LIMIT_PER_ADDRESS": "3/day",
    }
    untrusting = start_server(tmp_path / "direct", **settings, FORWARDED_ALLOW_IPS="10.9.9.9")
    try:
        trusting = start_server(tmp_path / "proxied", **settings)
    except RuntimeError:
        untrusting.stop()
        raise
    try:
        assert (
            base_url(untrusting, host="shop.example.com", x_forwarded_proto="https")
            == "http://shop.example.com/"
        )
        # A client cannot get a new budget by naming a new address (its login spent one).
        assert statuses(untrusting, 3) == [401, 401, 429]
        # Behind a trusted proxy, each client's address has its own.
        assert statuses(trusting, 3) == [401, 401, 401]
    finally:
        untrusting.stop()
        trusting.stop()


def statuses(server: RunningServer, count: int) -> list[int]:
    """The answers to anonymous calls, each claiming another client address, after the admin
    token's login (the test's own address)."""
    server.admin_token()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return [
            client.get(WEBSITES, headers={"x-forwarded-for": f"203.0.113.{n}"}).status_code
            for n in range(1, count + 1)
        ]
