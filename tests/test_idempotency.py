"""Idempotency keys on submissions, over HTTP on every backend and transport: the same key and
request answer the first 202 again (`Idempotent-Replayed: true`) and store nothing; the key
with another request is a 422; keys belong to their caller; requests refused before anything
is stored (4xx, 503) leave the key unused; requests racing with one key, to one process or
to several, make one bulk; a key past its retention is new again, and deleted."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from bulkops.queue.db import DbTransport
from bulkops.services.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER
from bulkops.store.bulks import NewBulk, insert_bulk
from bulkops.store.database import Database
from bulkops.store.idempotency import KeyScope, insert_key
from bulkops.store.lifecycle import utc_now
from bulkops.store.tables import bulk, idempotency_key
from bulkops.worker.maintenance import Maintenance
from tests import storage
from tests.backends import Backend
from tests.integrations import bulkops_cli
from tests.proxy import proxied_database
from tests.servers import RunningServer, server_on, start_server
from tests.test_auth import create_integration
from tests.test_schema import HTTP_METHODS
from tests.test_submission import customer, wait_until_final
from tests.waiting import eventually, wait_for

BULK = "/rest/default/async/bulk/V1/customers"
SINGLE = "/rest/default/async/V1/customers"
RACERS = 8


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module's tests, which each use keys of their own: two API processes
    on one port (requests with one key meet in either), no worker (the answers and the rows
    stored are what is tested)."""
    directory = tmp_path_factory.mktemp("idempotency")
    with server_on(backend, directory, "--processes", "2", "--no-worker") as running:
        yield running


def send(
    client: httpx.Client,
    body: Any,
    key: str | None,
    path: str = BULK,
    headers: dict[str, str] | None = None,
    content: str | bytes | None = None,
) -> httpx.Response:
    """A submission with the key (none when None): `body` as JSON, or else `content`."""
    sent = ({} if key is None else {HEADER: key}) | (headers or {})
    if content is not None:
        return client.post(path, content=content, headers=sent)
    return client.post(path, json=body, headers=sent)


def bulks_of(server: RunningServer, bulk_uuid: str) -> int:
    return storage.count(
        server.database_url, f"SELECT COUNT(*) FROM bulkops_bulk WHERE uuid = '{bulk_uuid}'"
    )


def count(server: RunningServer, table: str) -> int:
    return storage.count(server.database_url, f"SELECT COUNT(*) FROM {table}")


def assert_first(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    assert REPLAYED_HEADER not in response.headers
    body: dict[str, Any] = response.json()
    return body


def assert_replayed(response: httpx.Response, first: dict[str, Any]) -> None:
    assert response.status_code == 202, response.text
    assert response.headers[REPLAYED_HEADER] == "true"
    assert response.json() == first


def test_the_same_request_is_answered_again_and_stores_nothing(server: RunningServer) -> None:
    items = [customer("replay-one@example.com"), {"customer": "no object"}]
    with server.admin_client() as client:
        first = assert_first(send(client, items, "replay-key"))
        assert first["errors"] is True  # the rejected item's status is answered again too
        bulks, operations = count(server, "bulkops_bulk"), count(server, "bulkops_operation")
        messages = count(server, "bulkops_queue_message")

        assert_replayed(send(client, items, "replay-key"), first)
        # The same items in other bytes (spacing, an escape) are the same request.
        spaced = b'[ {"customer": {"email": "replay\\u002done@example.com", "firstname": "Test",'
        spaced += b' "lastname": "Person"}, "password": "Password1"},\n {"customer": "no object"} ]'
        json_type = {"Content-Type": "application/json"}
        assert_replayed(send(client, None, "replay-key", content=spaced, headers=json_type), first)
        # The store code spelled out or implied, a trailing slash: the same route and store.
        assert_replayed(send(client, items, "replay-key", "/rest/async/bulk/V1/customers/"), first)
        # Each answer in the format asked for.
        as_xml = send(client, items, "replay-key", headers={"Accept": "application/xml"})
        assert as_xml.status_code == 202 and first["bulk_uuid"] in as_xml.text

    assert count(server, "bulkops_bulk") == bulks
    assert count(server, "bulkops_operation") == operations
    assert count(server, "bulkops_queue_message") == messages
    assert bulks_of(server, first["bulk_uuid"]) == 1


def test_xml_and_json_of_the_same_items_are_the_same_request(server: RunningServer) -> None:
    xml = (
        "<request><item><customer><email>xml-replay@example.com</email><firstname>Test"
        "</firstname><lastname>Person</lastname></customer><password>Password1</password>"
        "</item></request>"
    )
    with server.admin_client() as client:
        first = assert_first(
            send(client, None, "xml-key", content=xml, headers={"Content-Type": "text/xml"})
        )
        assert_replayed(send(client, [customer("xml-replay@example.com")], "xml-key"), first)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (BULK, [customer("other-two@example.com")]),  # other items
        (BULK, [customer("other-one@example.com")] * 2),  # one more
        ("/rest/all/async/bulk/V1/customers", [customer("other-one@example.com")]),  # store
        (SINGLE, customer("other-one@example.com")),  # the single form of the route
    ],
)
def test_the_key_with_another_request_is_a_422(
    server: RunningServer, path: str, body: object
) -> None:
    key = f"other-{path}-{len(str(body))}"
    with server.admin_client() as client:
        first = assert_first(send(client, [customer("other-one@example.com")], key))
        bulks = count(server, "bulkops_bulk")
        refused = send(client, body, key, path)
        assert refused.status_code == 422, refused.text
        assert refused.json() == {
            "message": 'The idempotency key "%key" was already used for a different request. '
            "Send a new key with a new request.",
            "parameters": {"key": key},
        }
        assert REPLAYED_HEADER not in refused.headers
        # The first request is still answered as the first time.
        assert_replayed(send(client, [customer("other-one@example.com")], key), first)
    assert count(server, "bulkops_bulk") == bulks


def test_single_item_requests_are_replayed(server: RunningServer) -> None:
    with server.admin_client() as client:
        first = assert_first(send(client, customer("single@example.com"), "single", SINGLE))
        assert_replayed(send(client, customer("single@example.com"), "single", SINGLE), first)


def test_keys_belong_to_their_caller(server: RunningServer) -> None:
    """An admin user and an integration with the same id, the same key and request: each gets
    a bulk of its own."""
    items = [customer("scoped@example.com")]
    token = create_integration(server, "idempotency-scope")
    with server.admin_client() as admin, server.client() as integration:
        integration.headers["Authorization"] = f"Bearer {token}"
        by_admin = assert_first(send(admin, items, "shared-key"))
        by_integration = assert_first(send(integration, items, "shared-key"))
        assert by_integration["bulk_uuid"] != by_admin["bulk_uuid"]
        assert_replayed(send(integration, items, "shared-key"), by_integration)
        assert_replayed(send(admin, items, "shared-key"), by_admin)
        # Another request with the other's key is the caller's own business: a new key to it.
        assert_first(send(integration, [customer("other@example.com")], "admin-only"))
        assert_first(send(admin, [customer("else@example.com")], "admin-only"))


BAD_KEY = {
    "message": 'The "%header" header must be sent once, with 1 to %max printable ASCII characters.',
    "parameters": {"header": HEADER, "max": MAX_KEY_LENGTH},
}


@pytest.mark.parametrize(
    "headers",
    [
        [(HEADER, "k" * (MAX_KEY_LENGTH + 1))],
        [(HEADER, "")],
        [(HEADER, "tab\tinside")],
        [(HEADER.encode(), "caf\u00e9".encode("latin-1"))],
        [(HEADER, "one"), (HEADER, "two")],
    ],
    ids=["too-long", "empty", "control", "not-ascii", "twice"],
)
def test_a_bad_key_is_a_400_and_stores_nothing(
    server: RunningServer, headers: list[tuple[Any, Any]]
) -> None:
    bulks = count(server, "bulkops_bulk")
    with server.admin_client() as client:
        response = client.post(BULK, json=[customer("bad@example.com")], headers=headers)
    assert (response.status_code, response.json()) == (400, BAD_KEY)
    assert count(server, "bulkops_bulk") == bulks


def test_the_longest_key_is_accepted(server: RunningServer) -> None:
    key = "~ !" + "k" * (MAX_KEY_LENGTH - 3)
    with server.admin_client() as client:
        first = assert_first(send(client, [customer("long@example.com")], key))
        assert_replayed(send(client, [customer("long@example.com")], key), first)


def test_callers_without_a_token_cannot_use_keys(server: RunningServer) -> None:
    with server.client() as client:
        refused = send(client, customer("guest@example.com"), "guest-key", SINGLE)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {
            "message": "Idempotency keys need an authenticated caller: send a token, or no "
            '"%header" header.',
            "parameters": {"header": HEADER},
        }
        assert_first(send(client, customer("guest@example.com"), None, SINGLE))


def test_refused_requests_leave_the_key_unused(server: RunningServer) -> None:
    """A request refused before anything is stored (an invalid single item, a body that does
    not decode, one too large) does not take the key: the next request with it is new."""
    with server.admin_client() as client:
        invalid = send(client, {"customer": "no object"}, "refused-key", SINGLE)
        assert invalid.status_code == 400, invalid.text
        undecodable = send(
            client,
            None,
            "refused-key",
            content=b"[{",
            headers={"Content-Type": "application/json"},
        )
        assert undecodable.status_code == 400, undecodable.text
        first = assert_first(send(client, customer("valid@example.com"), "refused-key", SINGLE))
        # Refusals still come first for a key in use: the request is refused as without a key.
        assert send(client, {"customer": "no object"}, "refused-key", SINGLE).status_code == 400
        assert_replayed(send(client, customer("valid@example.com"), "refused-key", SINGLE), first)


def race(server: RunningServer, key: str, items: list[Any]) -> list[httpx.Response]:
    """`RACERS` requests with the key at once, each on a connection opened beforehand."""
    clients = [server.admin_client() for _ in range(RACERS)]
    start = threading.Barrier(RACERS)

    def post(client: httpx.Client) -> httpx.Response:
        client.get("/rest/V1/store/websites").raise_for_status()  # connected
        start.wait()
        return send(client, items, key)

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            return list(pool.map(post, clients))
    finally:
        for client in clients:
            client.close()


def assert_one_bulk_answered(responses: list[httpx.Response]) -> dict[str, Any]:
    """Every response is the 202 of one bulk, all but one of them replayed; answers it."""
    assert all(response.status_code == 202 for response in responses), [
        response.text for response in responses
    ]
    firsts = [response for response in responses if REPLAYED_HEADER not in response.headers]
    assert len(firsts) == 1, [dict(response.headers) for response in responses]
    body: dict[str, Any] = firsts[0].json()
    for response in responses:
        assert response.json() == body
    return body


def test_racing_requests_with_one_key_make_one_bulk(server: RunningServer) -> None:
    items = [customer(f"race-{n}@example.com") for n in range(200)]
    bulks = count(server, "bulkops_bulk")
    body = assert_one_bulk_answered(race(server, "race-key", items))
    assert count(server, "bulkops_bulk") == bulks + 1
    assert bulks_of(server, body["bulk_uuid"]) == 1


@pytest.fixture
def processing_server(
    backend: Backend, queue_settings: dict[str, str], tmp_path: Path
) -> Iterator[RunningServer]:
    """A server with its worker, on the transport of the test."""
    with server_on(backend, tmp_path, **queue_settings) as running:
        yield running


def test_one_bulk_is_published_and_processed_once_on_each_transport(
    processing_server: RunningServer,
) -> None:
    """Racing requests with one key, and a repeat: the one bulk is published and processed,
    once (a customer created twice would fail the second time, its email taken)."""
    server = processing_server
    items = [customer(f"processed-{n}@example.com") for n in range(50)]
    body = assert_one_bulk_answered(race(server, "processed-key", items))
    with server.admin_client() as client:
        operations = wait_until_final(client, body["bulk_uuid"], timeout=120)
        assert {operation["status"] for operation in operations} == {1}
        assert_replayed(send(client, items, "processed-key"), body)
    assert count(server, "bulkops_bulk") == 1
    assert count(server, "bulkops_idempotency_key") == 1
    assert count(server, "bulkops_operation") == len(items)
    assert count(server, "bulkops_demo_customer") == len(items)


def test_a_key_past_its_retention_is_new_again(server: RunningServer) -> None:
    """Even before the maintenance deleted it: the new request takes the key over."""
    first_items = [customer("retained@example.com")]
    with server.admin_client() as client:
        first = assert_first(send(client, first_items, "retained-key"))
        storage.execute(
            server.database_url,
            "UPDATE bulkops_idempotency_key SET created_at = '2020-01-01 00:00:00' "
            "WHERE idempotency_key = 'retained-key'",
        )
        other_items = [customer("retained-again@example.com")]
        again = assert_first(send(client, other_items, "retained-key"))
        assert again["bulk_uuid"] != first["bulk_uuid"]
        assert_replayed(send(client, other_items, "retained-key"), again)
        assert send(client, first_items, "retained-key").status_code == 422
    assert bulks_of(server, first["bulk_uuid"]) == 1  # the first bulk stays


async def test_the_maintenance_deletes_keys_past_their_retention(database: Database) -> None:
    now = utc_now()
    retention = timedelta(hours=24)
    async with database.write() as connection:
        for number, used in enumerate([now - retention - timedelta(seconds=1), now]):
            new_bulk = NewBulk(f"e0000000-0000-4000-8000-{number:012d}", None, 1, 2, used, [])
            await insert_bulk(connection, new_bulk)
            scope = KeyScope(2, 1, f"key-{number}")
            await insert_key(
                connection, scope, used - retention, "0" * 64, new_bulk.uuid, "{}", used
            )
    maintenance = Maintenance(
        database,
        DbTransport(database, 30),
        0.05,
        timedelta(hours=12),
        None,
        key_retention=retention,
    )
    running = asyncio.create_task(maintenance.run_forever())
    try:
        await eventually(lambda: keys_left(database, ["key-1"]))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    async with database.read() as connection:
        assert (await connection.execute(select(func.count()).select_from(bulk))).scalar() == 2


async def keys_left(database: Database, expected: list[str]) -> bool:
    async with database.read() as connection:
        found = await connection.execute(select(idempotency_key.c.idempotency_key))
        return sorted(found.scalars()) == expected


def test_a_deleted_bulk_takes_its_key_along(server: RunningServer) -> None:
    items = [customer("cleaned@example.com")]
    with server.admin_client() as client:
        first = assert_first(send(client, items, "cleaned-key"))
        cleaned = bulkops_cli(server.database_url, "cleanup", "--all", "--yes")
        assert cleaned.returncode == 0, cleaned.stderr
        assert count(server, "bulkops_idempotency_key") == 0
        again = assert_first(send(client, items, "cleaned-key"))
        assert again["bulk_uuid"] != first["bulk_uuid"]


def test_a_request_refused_for_the_database_leaves_the_key_unused(
    backend: Backend, database_url: str, tmp_path: Path
) -> None:
    if backend.name == "sqlite":
        pytest.skip("SQLite is a file in the process: there is no server to lose")
    items = [customer("outage@example.com")]
    with proxied_database(database_url) as (proxy, proxied):
        server = start_server(tmp_path, "--no-worker", DATABASE_URL=proxied)
        try:
            with server.admin_client() as client:
                client.get("/rest/V1/store/websites").raise_for_status()  # the token is known
                proxy.cut()
                refused = send(client, items, "outage-key")
                assert refused.status_code == 503, refused.text
                proxy.restore()
                answers: list[httpx.Response] = []
                wait_for(
                    lambda: (
                        answers.append(send(client, items, "outage-key"))
                        or answers[-1].status_code != 503
                    ),
                    30,
                    "the database to answer again",
                )
                assert_first(answers[-1])
        finally:
            server.stop()
    assert storage.count(database_url, "SELECT COUNT(*) FROM bulkops_bulk") == 1
    assert storage.count(database_url, "SELECT COUNT(*) FROM bulkops_idempotency_key") == 1
    assert "internal error" not in server.log().lower()


def test_the_openapi_document_has_the_header_on_every_submission(server: RunningServer) -> None:
    with server.admin_client() as client:
        document = client.get("/rest/default/openapi.json").json()
    validate(document)
    submissions = 0
    for path, item in document["paths"].items():
        # A path item holds its operations by method, beside other fields (servers...).
        for operation in (item[method] for method in item.keys() & HTTP_METHODS):
            headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
            responses = operation["responses"]
            # Routes that make a bulk: submissions, and the resubmission of failed items.
            if not path.startswith("/async/") and not path.endswith("/resubmit"):
                assert headers == [] and "422" not in responses, path
                continue
            submissions += 1
            (key,) = [header for header in headers if header["name"] == HEADER]
            assert key["required"] is False, path
            assert key["schema"]["maxLength"] == MAX_KEY_LENGTH
            assert list(responses["202"]["headers"]) == [REPLAYED_HEADER]
            assert list(responses)[-2:] == ["422", "default"]
    assert submissions >= 3  # the demo route, single and bulk, and the resubmission
