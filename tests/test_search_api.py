"""GET /V1/bulk on a real server: paths, paging, streaming, errors, no 500 whatever is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulkops.status import OperationStatus, UserType
from bulkops.store import search
from bulkops.store.bulks import NewBulk, NewOperation
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks

TOPIC = "async.V1.products.POST"
BULK_A = "aaaaaaaa-0000-4000-8000-000000000001"
BULK_B = "bbbbbbbb-0000-4000-8000-000000000002"


def _bulk(uuid: str, start: datetime, statuses: list[OperationStatus]) -> NewBulk:
    return NewBulk(
        uuid=uuid,
        description=f"Topic {TOPIC}",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=start,
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=TOPIC,
                serialized_data=f'{{"sku":"sku-{key}"}}',
                status=status,
                result_message=None if status == OperationStatus.OPEN else f"message {key}",
                error_code=None
                if status in (OperationStatus.OPEN, OperationStatus.COMPLETE)
                else 0,
            )
            for key, status in enumerate(statuses)
        ],
    )


def _known_bulks() -> list[NewBulk]:
    start = datetime(2024, 3, 1, 10, 15, 2)
    return [
        _bulk(
            BULK_A,
            start,
            [OperationStatus.COMPLETE] * 20 + [OperationStatus.NOT_RETRIABLY_FAILED] * 5,
        ),
        _bulk(
            BULK_B,
            start + timedelta(days=1),
            [OperationStatus.OPEN] * 3 + [OperationStatus.REJECTED] * 2,
        ),
    ]


@pytest.fixture
def searchable(server: RunningServer) -> Iterator[httpx.Client]:
    """The test's server with two known bulks (25 and 5 operations), and an admin client."""
    insert_bulks(server.database_url, _known_bulks())
    with server.admin_client() as client:
        yield client


def eq_filter(field: str, value: str, group: int = 0, index: int = 0) -> str:
    prefix = f"searchCriteria[filter_groups][{group}][filters][{index}]"
    return f"{prefix}[field]={field}&{prefix}[value]={value}&{prefix}[condition_type]=eq"


def bulk_a(client: httpx.Client, extra: str = "") -> httpx.Response:
    return client.get(f"/rest/V1/bulk?{eq_filter('bulk_uuid', BULK_A)}{extra}")


def test_paging_past_the_end_is_empty_and_echoes_what_was_sent(searchable: httpx.Client) -> None:
    def page(number: str, size: str = "10") -> dict[str, Any]:
        extra = f"&searchCriteria[pageSize]={size}&searchCriteria[currentPage]={number}"
        response = bulk_a(searchable, extra)
        assert response.status_code == 200, response.text
        return response.json()

    first = page("1")
    assert first["total_count"] == 25
    assert len(first["items"]) == 10
    assert first["search_criteria"]["page_size"] == 10
    assert first["search_criteria"]["current_page"] == 1
    last = page("3")
    assert len(last["items"]) == 5
    # Past the end: no items, the true count, the page asked for in the echo (Magento 2.4).
    for past_end in ("4", "99", "9223372036854775807"):
        body = page(past_end)
        assert body["items"] == []
        assert body["total_count"] == 25
        assert body["search_criteria"]["current_page"] == int(past_end)
    # Below 1 is page 1.
    assert page("-4")["items"] == page("0")["items"] == first["items"]


def test_deep_pages_and_past_them(server: RunningServer) -> None:
    """Pages that skip `DEFERRED_OFFSET` rows or more read their ids first; the last one is
    partial and the next one empty."""
    assert search.DEFERRED_OFFSET == 1000
    big = "cccccccc-0000-4000-8000-000000000003"
    insert_bulks(
        server.database_url,
        [_bulk(big, datetime(2024, 3, 3), [OperationStatus.COMPLETE] * 1010)],
    )
    with server.admin_client() as client:

        def page(number: int) -> dict[str, Any]:
            paging = f"&searchCriteria[pageSize]=500&searchCriteria[currentPage]={number}"
            return client.get(f"/rest/V1/bulk?{eq_filter('bulk_uuid', big)}{paging}").json()

        every = [item["id"] for item in client.get("/rest/V1/bulk?searchCriteria=").json()["items"]]
        third = page(3)
        assert third["total_count"] == 1010
        assert [item["id"] for item in third["items"]] == every[1000:]
        assert page(4) == {
            "items": [],
            "search_criteria": third["search_criteria"] | {"current_page": 4},
            "total_count": 1010,
        }


@contextmanager
def searchable_server(database_url: str, workdir: Path, **settings: str) -> Iterator[httpx.Client]:
    """A server with these settings on the two known bulks, and an admin client (no periodic
    maintenance, as the `server` fixture: the bulks are years old)."""
    running = start_server(
        workdir,
        DATABASE_URL=database_url,
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        **settings,
    )
    try:
        insert_bulks(database_url, _known_bulks())
        with running.admin_client() as client:
            yield client
    finally:
        running.stop()


def test_input_limits_page_only_when_no_page_size_is_sent(
    database_url: str, tmp_path: Path
) -> None:
    """Magento's limits give a page size only to a search that sends none
    (`Webapi/Validator/IOLimit/DefaultPageSizeSetter`): `pageSize=0` is still every match."""
    limits = {"INPUT_LIMIT_ENABLED": "true", "DEFAULT_PAGE_SIZE": "7", "MAXIMUM_PAGE_SIZE": "10"}
    with searchable_server(database_url, tmp_path, **limits) as client:
        default = bulk_a(client).json()
        assert len(default["items"]) == 7 and default["total_count"] == 25
        assert default["search_criteria"]["page_size"] == 7
        every = bulk_a(client, "&searchCriteria[pageSize]=0").json()
        assert len(every["items"]) == every["total_count"] == 25
        assert every["search_criteria"]["page_size"] == 0
        assert len(bulk_a(client, "&searchCriteria[pageSize]=10").json()["items"]) == 10
        too_big = bulk_a(client, "&searchCriteria[pageSize]=11")
        assert too_big.status_code == 400
        assert too_big.json() == {
            "message": "Maximum SearchCriteria pageSize is %max",
            "parameters": {"max": 10},
        }


def _sort(field: str, direction: str, index: int = 0) -> str:
    prefix = f"&searchCriteria[sortOrders][{index}]"
    return f"{prefix}[field]={field}{prefix}[direction]={direction}"


def test_ids_as_operation_keys_filter_and_sort_as_keys(database_url: str, tmp_path: Path) -> None:
    """With Magento 2.4's ids (`operation_key`), `id` in filters and sorts is that key too;
    the global id still breaks ties, so pages are stable."""

    def found(client: httpx.Client, query: str) -> list[tuple[int, str]]:
        response = client.get(f"/rest/V1/bulk?{query}")
        assert response.status_code == 200, response.text
        return [(item["id"], item["bulk_uuid"]) for item in response.json()["items"]]

    with searchable_server(database_url, tmp_path, OPERATION_ID="operation_key") as client:
        # Bulk A has keys 0 to 24, bulk B 0 to 4; with no sort, the order of creation.
        assert found(client, eq_filter("id", "3")) == [(3, BULK_A), (3, BULK_B)]
        paged = found(client, f"{eq_filter('id', '3')}&searchCriteria[pageSize]=1")
        assert paged == [(3, BULK_A)]
        keys = (
            "searchCriteria[filter_groups][0][filters][0][field]=id"
            "&searchCriteria[filter_groups][0][filters][0][value]=1, 4"
            "&searchCriteria[filter_groups][0][filters][0][condition_type]=in"
        )
        assert found(client, f"{keys}&{eq_filter('bulk_uuid', BULK_B, 1)}") == [
            (1, BULK_B),
            (4, BULK_B),
        ]
        response = client.get(f"/rest/V1/bulk?{keys}{_sort('id', 'DESC')}")
        assert response.json()["search_criteria"] == {
            "filter_groups": [
                {"filters": [{"field": "id", "value": "1, 4", "condition_type": "in"}]}
            ],
            "sort_orders": [{"field": "id", "direction": "DESC"}],
        }
        # Equal keys in the order of creation, on every page.
        expected = [(4, BULK_A), (4, BULK_B), (1, BULK_A), (1, BULK_B)]
        assert [(i["id"], i["bulk_uuid"]) for i in response.json()["items"]] == expected
        pages = [
            found(client, f"{keys}{_sort('id', 'DESC')}&searchCriteria[pageSize]=1"
                  f"&searchCriteria[currentPage]={number}")
            for number in (1, 2, 3, 4)
        ]  # fmt: skip
        assert [item for items in pages for item in items] == expected
        ascending = found(client, f"searchCriteria[pageSize]=3{_sort('id', 'ASC')}")
        assert ascending == [(0, BULK_A), (0, BULK_B), (1, BULK_A)]


def test_default_order_is_id_ascending_and_sorts_apply(searchable: httpx.Client) -> None:
    items = bulk_a(searchable).json()["items"]
    ids = [item["id"] for item in items]
    assert ids == sorted(ids) and len(ids) == 25
    by_status = bulk_a(
        searchable,
        "&searchCriteria[sortOrders][0][field]=status&searchCriteria[sortOrders][0][direction]=desc",
    ).json()
    statuses = [item["status"] for item in by_status["items"]]
    assert statuses == [3] * 5 + [1] * 20
    assert by_status["search_criteria"]["sort_orders"] == [{"field": "status", "direction": "DESC"}]


def test_search_answer_has_exactly_three_keys_and_magento_item_shape(
    searchable: httpx.Client,
) -> None:
    response = bulk_a(searchable, "&searchCriteria[pageSize]=1")
    body = response.json()
    assert list(body) == ["items", "search_criteria", "total_count"]
    assert list(body["items"][0]) == [
        "extension_attributes", "id", "bulk_uuid", "topic_name", "serialized_data",
        "result_serialized_data", "status", "result_message", "error_code",
    ]  # fmt: skip
    assert body["items"][0]["extension_attributes"] == {"start_time": "2024-03-01 10:15:02"}
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_or_inside_a_group_and_across_groups(searchable: httpx.Client) -> None:
    either = (
        f"{eq_filter('status', '4', 0, 0)}&{eq_filter('status', '5', 0, 1)}"
        f"&{eq_filter('bulk_uuid', BULK_B, 1, 0)}"
    )
    body = searchable.get(f"/rest/V1/bulk?{either}").json()
    assert body["total_count"] == 5
    assert {item["status"] for item in body["items"]} == {4, 5}


def test_start_time_range_and_bulk_fields(searchable: httpx.Client) -> None:
    query = (
        "searchCriteria[filter_groups][0][filters][0][field]=start_time"
        "&searchCriteria[filter_groups][0][filters][0][value]=2024-03-02"
        "&searchCriteria[filter_groups][0][filters][0][condition_type]=gteq"
        f"&{eq_filter('user_type', '2', 1)}"
        f"&{eq_filter('bulk_uuid', BULK_B, 2)}"
    )
    body = searchable.get(f"/rest/V1/bulk?{query}").json()
    assert body["total_count"] == 5
    assert {item["extension_attributes"]["start_time"] for item in body["items"]} == {
        "2024-03-02 10:15:02"
    }


def test_no_page_size_streams_every_match(searchable: httpx.Client) -> None:
    body = bulk_a(searchable).json()
    assert body["total_count"] == len(body["items"]) == 25
    assert body["search_criteria"] == {
        "filter_groups": [
            {"filters": [{"field": "bulk_uuid", "value": BULK_A, "condition_type": "eq"}]}
        ]
    }


def test_empty_result_is_well_formed(searchable: httpx.Client) -> None:
    for extra in ("", "&searchCriteria[pageSize]=5"):
        body = searchable.get(f"/rest/V1/bulk?{eq_filter('bulk_uuid', 'nope')}{extra}").json()
        assert body["items"] == [] and body["total_count"] == 0


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, '"%fieldName" is required. Enter and try again.'),
        ("searchCriteria[pageSize]=abc", 400, 'Error occurred during "pageSize" processing.'),
        (eq_filter("nope", "1"), 400, 'Field "%field" is not a searchable field.'),
        (
            "searchCriteria[filter_groups][0][filters][0][field]=status"
            "&searchCriteria[filter_groups][0][filters][0][value]=1"
            "&searchCriteria[filter_groups][0][filters][0][condition_type]=bogus",
            400,
            'Condition type "%condition_type" is not supported.',
        ),
        (
            "searchCriteria[sortOrders][0][field]=id&searchCriteria[sortOrders][0][direction]=UP",
            400,
            "The sort order has to be specified as %1 for ascending order",
        ),
        ("searchCriteria[foo]=1", 400, '"%fieldName" is not supported.'),
        (eq_filter("status", "three"), 400, 'Error occurred during "status" processing.'),
    ],
)
def test_bad_criteria_are_magento_400s(
    searchable: httpx.Client, query: str, status: int, message: str
) -> None:
    response = searchable.get(f"/rest/V1/bulk?{query}")
    assert response.status_code == status, response.text
    assert response.json()["message"].startswith(message)
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_paths_without_redirects(server: RunningServer, searchable: httpx.Client) -> None:
    query = f"?{eq_filter('bulk_uuid', BULK_B)}"
    for path in ("/rest/V1/bulk", "/rest/V1/bulk/", "/rest/default/V1/bulk/", "/rest/all/V1/bulk"):
        response = searchable.get(path + query, follow_redirects=False)
        assert response.status_code == 200, path
        assert response.json()["total_count"] == 5
    for path in ("/rest/nostore/V1/bulk", "/rest/V1/nothing", "/V1/bulk", "/rest/V2/bulk"):
        response = searchable.get(path + query, follow_redirects=False)
        assert response.status_code == 404, path
        assert response.json() == {"message": "Request does not match any route."}
    post = searchable.post(f"/rest/V1/bulk{query}")
    assert post.status_code == 404


def test_search_needs_the_bulk_acl_resource(server: RunningServer) -> None:
    with server.client() as anonymous:
        response = anonymous.get("/rest/V1/bulk?searchCriteria=")
    assert response.status_code == 401
    assert response.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "Magento_Logging::system_magento_logging_bulk_operations"},
    }


def test_get_requests_with_a_json_content_type_and_no_body(searchable: httpx.Client) -> None:
    response = searchable.get(
        f"/rest/V1/bulk?{eq_filter('bulk_uuid', BULK_B)}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200


def test_bulk_status_endpoints(searchable: httpx.Client) -> None:
    short = searchable.get(f"/rest/V1/bulk/{BULK_B}/status")
    assert short.status_code == 200
    body = short.json()
    assert list(body) == [
        "operations_list", "user_type", "bulk_id", "description", "start_time", "user_id",
        "operation_count",
    ]  # fmt: skip
    # Its two rejected operations are listed, but not counted, as in Magento.
    assert body["bulk_id"] == BULK_B and body["operation_count"] == 3 and body["user_type"] == 2
    assert body["start_time"] == "2024-03-02 10:15:02"
    assert [list(item) for item in body["operations_list"]] == [
        ["id", "status", "result_message", "error_code"]
    ] * 5
    detailed = searchable.get(f"/rest/V1/bulk/{BULK_B}/detailed-status/").json()
    assert [item["status"] for item in detailed["operations_list"]] == [4, 4, 4, 5, 5]
    assert list(detailed["operations_list"][0]) == [
        "id", "bulk_uuid", "topic_name", "serialized_data", "result_serialized_data", "status",
        "result_message", "error_code",
    ]  # fmt: skip
    counts = {
        status: searchable.get(f"/rest/V1/bulk/{BULK_B}/operation-status/{status}").json()
        for status in range(1, 6)
    }
    assert counts == {1: 0, 2: 0, 3: 0, 4: 3, 5: 2}


def test_bulk_status_errors(searchable: httpx.Client) -> None:
    missing = searchable.get("/rest/V1/bulk/nope/status")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Bulk uuid %bulkUuid not exist",
        "parameters": {"bulkUuid": "nope"},
    }
    assert searchable.get("/rest/V1/bulk/nope/detailed-status").status_code == 404
    unknown = searchable.get("/rest/V1/bulk/nope/operation-status/4")
    assert unknown.status_code == 200 and unknown.json() == 0
    bad = searchable.get(f"/rest/V1/bulk/{BULK_B}/operation-status/abc")
    assert bad.status_code == 400
    assert 'The "int" type was expected' in bad.json()["message"]
