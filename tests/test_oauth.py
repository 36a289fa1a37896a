"""OAuth 1.0a signed requests of integrations, made by requests-oauthlib unchanged, against a
real server. Messages and statuses are Magento 2.4's (`Framework/Oauth/Oauth.php`,
`Integration/Model/Oauth/Token/Provider.php`, `Integration/Model/Oauth/Nonce/Generator.php`):
an `OauthInputException` is a 400, any other OAuth error a 401."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header
from requests_oauthlib import OAuth1
from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.engine import Engine

from bulkops.auth.context import STORES
from bulkops.store.tables import access_token, integration, oauth_consumer, oauth_nonce
from tests.backends import sync_url
from tests.conftest import require
from tests.integrations import Credentials, bulkops_cli, create_integration, parse_credentials
from tests.servers import RunningServer, start_server

pytestmark = pytest.mark.slow

SEARCH = "/rest/default/V1/bulk/"
CUSTOMERS = "/rest/default/async/bulk/V1/customers"
WINDOW = 600
INVALID_SIGNATURE = {"message": "The signature is invalid. Verify and try again."}
INVALID_TIMESTAMP = {"message": "Incorrect timestamp value in the oauth_timestamp parameter"}
NOT_AUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Logging::system_magento_logging_bulk_operations"},
}


def signer(credentials: Credentials, method: str = "HMAC-SHA256", **overrides: Any) -> OAuth1:
    values = {
        "client_key": credentials.consumer_key,
        "client_secret": credentials.consumer_secret,
        "resource_owner_key": credentials.access_token,
        "resource_owner_secret": credentials.access_token_secret,
        "signature_method": method,
    } | overrides
    return OAuth1(**values)


def search_params(**filters: object) -> dict[str, str]:
    """searchCriteria with one filter group per field (AND), as requests sends it: every
    bracket percent-encoded in the URL, and so in the signature base string."""
    params = {}
    for group, (field, value) in enumerate(filters.items()):
        prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
        params |= {
            f"{prefix}[field]": field,
            f"{prefix}[value]": str(value),
            f"{prefix}[condition_type]": "eq",
        }
    return params


ANY_STATUS = search_params(status=3)


def send(
    server: RunningServer, method: str, path: str, auth: OAuth1, **kwargs: Any
) -> requests.Response:
    return requests.request(method, server.base_url + path, auth=auth, timeout=30, **kwargs)


@pytest.fixture
def engine(server: RunningServer) -> Iterator[Engine]:
    engine = create_engine(sync_url(server.database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def erp(server: RunningServer) -> Credentials:
    return create_integration(server.database_url, "erp")


def consumer_id(engine: Engine, credentials: Credentials) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(oauth_consumer.c.id).where(
                oauth_consumer.c.consumer_key == credentials.consumer_key
            )
        ).scalar_one()


@pytest.mark.parametrize("method", ["HMAC-SHA256", "HMAC-SHA1"])
def test_a_signed_submission_is_the_integrations_and_every_route_takes_signatures(
    server: RunningServer, erp: Credentials, engine: Engine, method: str
) -> None:
    customers = [{"customer": {"email": "signed@example.com", "firstname": "S", "lastname": "T"}}]
    submitted = send(server, "POST", CUSTOMERS, signer(erp, method), json=customers)
    assert submitted.status_code == 202, submitted.text
    bulk_uuid = submitted.json()["bulk_uuid"]
    with engine.connect() as connection:
        integration_id = connection.execute(
            select(integration.c.id).where(integration.c.name == "erp")
        ).scalar_one()

    status = send(server, "GET", f"/rest/V1/bulk/{bulk_uuid}/status", signer(erp, method))
    assert status.status_code == 200, status.text
    assert (status.json()["user_type"], status.json()["user_id"]) == (1, integration_id)

    # The search's bracketed query parameters are part of what is signed.
    params = search_params(bulk_uuid=bulk_uuid, user_type=1, user_id=integration_id)
    found = send(server, "GET", SEARCH, signer(erp, method), params=params)
    assert found.status_code == 200, found.text
    assert found.json()["total_count"] == 1
    other = send(server, "GET", SEARCH, signer(erp, method), params=search_params(user_type=2))
    assert (other.status_code, other.json()["total_count"]) == (200, 0)

    retried = send(server, "POST", f"/rest/V1/bulk/{bulk_uuid}/retry", signer(erp, method))
    assert (retried.status_code, retried.json()) == (200, 0)


def test_the_access_token_also_works_as_a_bearer_token(
    server: RunningServer, erp: Credentials
) -> None:
    headers = {"Authorization": f"Bearer {erp.access_token}"}
    with server.client(headers=headers) as client:
        assert client.get(SEARCH, params=search_params(status=4)).status_code == 200


def test_a_replayed_request_is_refused(
    server: RunningServer, erp: Credentials, engine: Engine
) -> None:
    url = server.base_url + SEARCH
    signed = requests.Request("GET", url, params=search_params(status=3), auth=signer(erp))
    prepared = signed.prepare()
    with requests.Session() as session:
        first = session.send(prepared, timeout=30)
        replayed = session.send(prepared, timeout=30)
    assert first.status_code == 200, first.text
    assert replayed.status_code == 401
    assert replayed.json() == {
        "message": "The nonce is already being used by the consumer with ID %1",
        "parameters": [str(consumer_id(engine, erp))],
    }
    # The same timestamp with another nonce is another request.
    sent = dict(parse_authorization_header(prepared.headers["Authorization"].decode()))
    again = signer(erp, timestamp=sent["oauth_timestamp"])
    assert send(server, "GET", SEARCH, again, params=search_params(status=3)).status_code == 200


def test_timestamps_outside_the_window_are_refused(server: RunningServer, erp: Credentials) -> None:
    now = int(time.time())
    for timestamp in (now - 2 * WINDOW, now + 2 * WINDOW, 0, "soon", "9" * 5000):
        response = send(server, "GET", SEARCH, signer(erp, timestamp=str(timestamp)))
        assert (response.status_code, response.json()) == (400, INVALID_TIMESTAMP), timestamp
    # A client clock a little off is fine.
    skewed = signer(erp, timestamp=str(now - 60))
    assert send(server, "GET", SEARCH, skewed, params=ANY_STATUS).status_code == 200


def test_wrong_secrets_and_altered_requests_are_refused(
    server: RunningServer, erp: Credentials
) -> None:
    for wrong in (
        signer(erp, client_secret="x" * 32),
        signer(erp, resource_owner_secret="x" * 32),
        signer(erp, method="HMAC-SHA1", client_secret=erp.access_token_secret),
    ):
        response = send(server, "GET", SEARCH, wrong, params=search_params(status=3))
        assert (response.status_code, response.json()) == (401, INVALID_SIGNATURE)

    # Signed for one search, sent for another.
    prepared = requests.Request(
        "GET", server.base_url + SEARCH, params=search_params(status=3), auth=signer(erp)
    ).prepare()
    prepared.url = prepared.url.replace("=3", "=2")
    with requests.Session() as session:
        altered = session.send(prepared, timeout=30)
    assert (altered.status_code, altered.json()) == (401, INVALID_SIGNATURE)


def test_unknown_and_revoked_credentials_are_refused(
    server: RunningServer, erp: Credentials, engine: Engine
) -> None:
    pim = create_integration(server.database_url, "pim")
    cases = [
        (signer(erp, client_key="k" * 32), "A consumer having the specified key does not exist"),
        (signer(erp, client_key="short"), "Consumer key is not the correct length"),
        (signer(erp, resource_owner_key="t" * 32), "Specified token does not exist"),
        (
            signer(erp, resource_owner_key=pim.access_token),
            "Token is not associated with the specified consumer",
        ),
    ]
    for auth, message in cases:
        response = send(server, "GET", SEARCH, auth)
        assert (response.status_code, response.json()) == (401, {"message": message})

    with engine.begin() as connection:
        connection.execute(update(access_token).values(revoked=True))
    revoked = send(server, "GET", SEARCH, signer(erp))
    assert (revoked.status_code, revoked.json()) == (
        401,
        {"message": "Access token has been revoked"},
    )


def test_missing_or_unsupported_protocol_parameters_are_refused(
    server: RunningServer, erp: Credentials
) -> None:
    header = f'OAuth oauth_consumer_key="{erp.consumer_key}", oauth_token="{erp.access_token}"'
    with server.client(headers={"Authorization": header}) as client:
        missing = client.get(SEARCH)
    required = '"%fieldName" is required. Enter and try again.'
    assert (missing.status_code, missing.json()) == (
        400,
        {
            "message": "One or more input exceptions have occurred.",
            "errors": [
                {"message": required, "parameters": {"fieldName": name}}
                for name in (
                    "oauth_signature",
                    "oauth_signature_method",
                    "oauth_nonce",
                    "oauth_timestamp",
                )
            ],
        },
    )
    with server.client(headers={"Authorization": f'{header}, oauth_version="2.0"'}) as client:
        version = client.get(SEARCH)
    assert (version.status_code, version.json()) == (
        400,
        {"message": 'The "%1" Oauth version isn\'t supported.', "parameters": ["2.0"]},
    )
    plaintext = send(server, "GET", SEARCH, signer(erp, method="PLAINTEXT"))
    assert (plaintext.status_code, plaintext.json()) == (
        400,
        {"message": "Signature method %1 is not supported", "parameters": ["PLAINTEXT"]},
    )
    short_token = send(server, "GET", SEARCH, signer(erp, resource_owner_key="t"))
    assert (short_token.status_code, short_token.json()) == (
        400,
        {"message": "The token length is invalid. Check the length and try again."},
    )


def test_a_signature_grants_only_the_integrations_resources(
    server: RunningServer, engine: Engine
) -> None:
    store_reader = create_integration(server.database_url, "store-reader", STORES)
    assert send(server, "GET", "/rest/V1/store/websites", signer(store_reader)).status_code == 200
    refused = send(server, "GET", SEARCH, signer(store_reader))
    assert (refused.status_code, refused.json()) == (401, NOT_AUTHORIZED)

    everything = create_integration(server.database_url, "deactivated")
    with engine.begin() as connection:
        connection.execute(
            update(integration).where(integration.c.name == "deactivated").values(is_active=False)
        )
    inactive = send(server, "GET", SEARCH, signer(everything))
    assert (inactive.status_code, inactive.json()) == (401, NOT_AUTHORIZED)


def test_nonces_older_than_the_window_are_deleted(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "server", DATABASE_URL=database_url, OAUTH_NONCE_CLEANUP_PROBABILITY="1"
    )
    engine = create_engine(sync_url(database_url))
    try:
        erp = create_integration(database_url, "erp")
        consumer = consumer_id(engine, erp)
        now = int(time.time())
        with engine.begin() as connection:
            connection.execute(
                insert(oauth_nonce),
                [
                    {"consumer_id": consumer, "nonce": "expired", "timestamp": now - 3 * WINDOW},
                    {"consumer_id": consumer, "nonce": "recent", "timestamp": now - WINDOW},
                ],
            )
        fresh = signer(erp, nonce="fresh")
        assert send(server, "GET", SEARCH, fresh, params=ANY_STATUS).status_code == 200
        with engine.connect() as connection:
            kept = set(connection.execute(select(oauth_nonce.c.nonce)).scalars())
        assert kept == {"recent", "fresh"}
    finally:
        server.stop()
        engine.dispose()


def test_integrations_may_be_required_to_sign(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "server", DATABASE_URL=database_url, INTEGRATION_AS_BEARER="false"
    )
    try:
        erp = create_integration(database_url, "erp")
        with server.client(headers={"Authorization": f"Bearer {erp.access_token}"}) as client:
            bearer = client.get(SEARCH)
        assert (bearer.status_code, bearer.json()) == (401, NOT_AUTHORIZED)
        assert send(server, "GET", SEARCH, signer(erp), params=ANY_STATUS).status_code == 200
        with server.admin_client() as admin:
            assert admin.get(SEARCH, params=ANY_STATUS).status_code == 200
    finally:
        server.stop()


def test_secrets_are_encrypted_at_rest_with_a_key(database_url: str, tmp_path: Path) -> None:
    key = {"OAUTH_SECRETS_KEY": "a long random string from the operator's secret store"}
    server = start_server(tmp_path / "server", DATABASE_URL=database_url, **key)
    engine = create_engine(sync_url(database_url))
    try:
        erp = create_integration(database_url, "erp", settings=key)
        with engine.connect() as connection:
            stored = connection.execute(select(oauth_consumer)).mappings().one()
        for secret in (erp.consumer_secret, erp.access_token, erp.access_token_secret):
            assert not any(secret in str(value) for value in stored.values())
        assert send(server, "GET", SEARCH, signer(erp), params=ANY_STATUS).status_code == 200

        shown = bulkops_cli(database_url, "integration", "show", "erp", settings=key)
        assert parse_credentials(shown.stdout) == erp
        keyless = bulkops_cli(database_url, "integration", "show", "erp")
        assert keyless.returncode == 1
        assert "set BULKOPS_OAUTH_SECRETS_KEY" in keyless.stderr
    finally:
        server.stop()
        engine.dispose()


JS_CLIENTS = Path(__file__).parent / "js"


def node_clients() -> Path:
    """tests/js with its locked packages installed (once), or a skip (a failure in CI)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    require(f"{' and '.join(missing)} not installed" if missing else None)
    if not (JS_CLIENTS / "node_modules" / "magento2-api-wrapper").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_CLIENTS, check=True, timeout=300
        )
    return JS_CLIENTS


def node_search(clients: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "search.js", json.dumps(config)],
        cwd=clients,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_magento2_api_wrapper_searches_with_its_integration_credentials(
    server: RunningServer, erp: Credentials
) -> None:
    clients = node_clients()
    customers = [
        {"customer": {"email": f"{name}@example.com", "firstname": name, "lastname": "Node"}}
        for name in ("ada", "bob")
    ]
    submitted = send(server, "POST", CUSTOMERS, signer(erp), json=customers)
    bulk_uuid = submitted.json()["bulk_uuid"]
    config = {
        "url": server.base_url,
        "consumerKey": erp.consumer_key,
        "consumerSecret": erp.consumer_secret,
        "accessToken": erp.access_token,
        "tokenSecret": erp.access_token_secret,
        # Sent with literal brackets and `%20` for the spaces, signed with HMAC-SHA256.
        "searchCriteria": {
            "filter_groups": [
                {"filters": [{"field": "bulk_uuid", "value": bulk_uuid, "condition_type": "eq"}]},
                {"filters": [{"field": "status", "value": "1, 2, 3, 4", "condition_type": "in"}]},
            ],
            "sortOrders": [{"field": "id", "direction": "DESC"}],
            "pageSize": 5,
            "currentPage": 1,
        },
    }
    result = node_search(clients, config)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    assert found["total_count"] == 2
    assert [item["bulk_uuid"] for item in found["items"]] == [bulk_uuid, bulk_uuid]
    assert found["items"][0]["id"] > found["items"][1]["id"]

    config["consumerSecret"] = "x" * 32
    refused = node_search(clients, config)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["status"] == 401
