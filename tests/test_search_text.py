"""GET /V1/bulk on a real server: `topic_name`, `result_message` and the bulk's `description`
compare, match and sort without regard to case, as Magento's `utf8_general_ci` columns do;
`bulk_uuid` and the serialized data compare exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation
from tests.backends import Backend
from tests.servers import RunningServer
from tests.storage import insert_bulks

UUID = "abcdef00-0000-4000-8000-00000000000a"
OTHER_UUID = "abcdef00-0000-4000-8000-00000000000b"
FAILED = OperationStatus.NOT_RETRIABLY_FAILED

# (topic, status, result message), operation keys in order.
OPERATIONS = [
    ("async.V1.products.POST", FAILED, "URL key for specified store already exists."),
    ("ASYNC.v1.PRODUCTS.post", FAILED, "url KEY for specified store already exists."),
    ("async.v1.products.post", OperationStatus.COMPLETE, None),
    ("async.V1.customers.POST", FAILED, "Café closed"),
    ("async.V1.customers.POST", OperationStatus.RETRIABLY_FAILED, "CAFÉ CLOSED"),
]


@pytest.fixture
def server_settings() -> dict[str, str]:
    # Payloads shown as stored: these searches match the serialized data itself.
    return {"REDACT_KEYS": "[]"}


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    operations = [
        NewOperation(
            key,
            topic,
            f'{{"sku":"Sku-{key}"}}',
            status,
            message,
            None if message is None else 0,
        )
        for key, (topic, status, message) in enumerate(OPERATIONS)
    ]
    insert_bulks(
        server.database_url,
        [
            NewBulk(UUID, "Products Import", 1, 2, datetime(2024, 5, 1), operations),
            NewBulk(OTHER_UUID, "Prices", 1, 2, datetime(2024, 5, 2), []),
        ],
    )
    with server.admin_client() as admin:
        yield admin


def keys(client: httpx.Client, *filters: tuple[str, str, str], sort: str = "") -> list[int]:
    """The operation keys found: one filter group per filter (AND)."""
    query = "&".join(
        f"searchCriteria[filter_groups][{g}][filters][0][field]={field}"
        f"&searchCriteria[filter_groups][{g}][filters][0][value]={value}"
        f"&searchCriteria[filter_groups][{g}][filters][0][condition_type]={condition}"
        for g, (field, condition, value) in enumerate(filters)
    )
    if sort:
        query += f"&searchCriteria[sortOrders][0][field]={sort}"
        query += "&searchCriteria[sortOrders][0][direction]=ASC"
    response = client.get("/rest/V1/bulk", params=httpx.QueryParams(query))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_count"] == len(body["items"])
    return [OPERATIONS.index(_row(item)) for item in body["items"]]


def _row(item: dict[str, object]) -> tuple[object, ...]:
    return item["topic_name"], item["status"], item["result_message"]


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("eq", "Async.V1.Products.Post", [0, 1, 2]),
        ("neq", "ASYNC.V1.PRODUCTS.POST", [3, 4]),
        ("in", "x, async.v1.CUSTOMERS.post", [3, 4]),
        ("nin", "async.v1.CUSTOMERS.post", [0, 1, 2]),
        ("like", "%PRODUCTS.P%", [0, 1, 2]),
        ("nlike", "async.v1.p%", [3, 4]),
        ("finset", "ASYNC.V1.CUSTOMERS.POST", [3, 4]),
        ("nfinset", "ASYNC.V1.CUSTOMERS.POST", [0, 1, 2]),
        ("gteq", "ASYNC.V1.P", [0, 1, 2]),
        ("lt", "ASYNC.V1.P", [3, 4]),
        ("regexp", "products[.]post$", [0, 1, 2]),
    ],
)
def test_topic_name_ignores_case(
    client: httpx.Client, condition: str, value: str, expected: list[int]
) -> None:
    assert keys(client, ("topic_name", condition, value)) == expected


def test_topic_and_status_together(client: httpx.Client) -> None:
    """The shape the (folded topic, status, id) index serves."""
    found = keys(client, ("topic_name", "eq", "ASYNC.V1.PRODUCTS.POST"), ("status", "in", "2,3"))
    assert found == [0, 1]


def test_result_message_and_description_ignore_case(client: httpx.Client) -> None:
    assert keys(client, ("result_message", "like", "%url key%")) == [0, 1]
    assert keys(
        client, ("result_message", "eq", "URL KEY FOR SPECIFIED STORE ALREADY EXISTS.")
    ) == [
        0,
        1,
    ]
    assert keys(client, ("result_message", "nlike", "%Url Key%")) == [3, 4]
    assert keys(client, ("description", "eq", "products import")) == [0, 1, 2, 3, 4]
    assert keys(client, ("description", "like", "PRODUCTS%")) == [0, 1, 2, 3, 4]
    assert keys(client, ("description", "neq", "PRODUCTS IMPORT")) == []


def test_uuids_and_serialized_data_compare_exactly(client: httpx.Client) -> None:
    assert keys(client, ("bulk_uuid", "eq", UUID.upper())) == []
    assert keys(client, ("bulk_uuid", "eq", UUID)) == [0, 1, 2, 3, 4]
    assert keys(client, ("serialized_data", "like", "%sku-1%")) == []
    assert keys(client, ("serialized_data", "like", "%Sku-1%")) == [1]


def test_sorting_ignores_case_and_ties_go_by_id(client: httpx.Client) -> None:
    assert keys(client, sort="topic_name") == [3, 4, 0, 1, 2]
    assert keys(client, ("status", "eq", "3"), sort="result_message") == [3, 0, 1]


def test_letters_beyond_ascii(client: httpx.Client, backend: Backend) -> None:
    """MariaDB's collation folds every letter, and accents too (as Magento's
    `utf8_general_ci`); SQLite's and PostgreSQL's lower() fold ASCII letters only."""
    folds_every_letter = backend.name == "mariadb"
    assert keys(client, ("result_message", "eq", "café closed")) == (
        [3, 4] if folds_every_letter else [3]
    )
    assert keys(client, ("result_message", "eq", "cafe closed")) == (
        [3, 4] if folds_every_letter else []
    )
    # The same through SQLite's trigram index.
    assert keys(client, ("result_message", "like", "_afé clo%")) == (
        [3, 4] if folds_every_letter else [3]
    )
    # Regular expressions: every letter on SQLite (Python's) and MariaDB, ASCII on PostgreSQL.
    assert keys(client, ("result_message", "regexp", "^café")) == (
        [3] if backend.name == "postgresql" else [3, 4]
    )
