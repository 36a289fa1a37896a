"""`GET /V1/bulk/facets`: the operations a search matches, counted by status, topic, error
code and user type, crossed; the same matches as the search's, scoped to the caller's bulks
the same way, whatever the sorting and paging."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from bulkops.auth.context import BULK_OPERATIONS
from bulkops.services.submission import serialized_data
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.integrations import create_integration
from tests.servers import RunningServer
from tests.storage import insert_bulks, query

FACETS = "/rest/V1/bulk/facets"
CUSTOMERS = "async.magento.customer.api.accountmanagementinterface.createaccount.post"
ECHO = "async.vendor.echo.api.echointerface.echo.post"
OWN_BULK = "f0000000-0000-4000-8000-000000000001"
OTHER_BULK = "f0000000-0000-4000-8000-000000000002"
ADMIN_BULK = "f0000000-0000-4000-8000-000000000003"
S = OperationStatus
# (topic, status, error code) of each operation, by bulk.
OPERATIONS: dict[str, list[tuple[str, OperationStatus, int | None]]] = {
    OWN_BULK: [
        (CUSTOMERS, S.COMPLETE, None),
        (CUSTOMERS, S.RETRIABLY_FAILED, 0),
        (CUSTOMERS, S.NOT_RETRIABLY_FAILED, 12),
        (CUSTOMERS, S.NOT_RETRIABLY_FAILED, 12),
        (CUSTOMERS, S.OPEN, None),
        (CUSTOMERS, S.REJECTED, None),
        (ECHO, S.RETRIABLY_FAILED, 0),
    ],
    OTHER_BULK: [
        (CUSTOMERS, S.RETRIABLY_FAILED, 0),
        (CUSTOMERS, S.RETRIABLY_FAILED, 0),
        (CUSTOMERS, S.COMPLETE, None),
    ],
    ADMIN_BULK: [(ECHO, S.NOT_RETRIABLY_FAILED, 7)],
}


def _bulk(uuid: str, user_type: UserType, user_id: int, description: str) -> NewBulk:
    return NewBulk(
        uuid=uuid,
        description=description,
        user_id=user_id,
        user_type=int(user_type),
        start_time=datetime(2030, 1, 1),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=topic,
                serialized_data=None if status == S.COMPLETE else serialized_data({"n": key}),
                status=status,
                result_message=None if error_code is None else f"failed {error_code}",
                error_code=error_code,
            )
            for key, (topic, status, error_code) in enumerate(OPERATIONS[uuid])
        ],
    )


@pytest.fixture
def callers(server: RunningServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """An admin and an integration limited to its own bulks (OWN_BULK), with the bulks."""
    token = create_integration(server.database_url, "own", BULK_OPERATIONS).access_token
    [(own_id,)] = query(server.database_url, "SELECT id FROM bulkops_integration")
    insert_bulks(
        server.database_url,
        [
            _bulk(OWN_BULK, UserType.INTEGRATION, own_id, "own import"),
            _bulk(OTHER_BULK, UserType.INTEGRATION, own_id + 1, "other import"),
            _bulk(ADMIN_BULK, UserType.ADMIN, 1, "admin import"),
        ],
    )
    with (
        server.admin_client() as admin,
        server.client(headers={"Authorization": f"Bearer {token}"}) as own,
    ):
        yield admin, own


def criteria(*filter_groups: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """searchCriteria parameters: groups ANDed, each a list of (field, value, condition) ORed."""
    params = [("searchCriteria", "")] if not filter_groups else []
    for g, group in enumerate(filter_groups):
        for f, (field, value, condition) in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params += [
                (f"{prefix}[field]", field),
                (f"{prefix}[value]", value),
                (f"{prefix}[condition_type]", condition),
            ]
    return params


def facets(*names: str) -> list[tuple[str, str]]:
    return [("facets[]", name) for name in names]


def searched(client: httpx.Client, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get("/rest/V1/bulk", params=params)
    assert response.status_code == 200, response.text
    return response.json()


CRITERIA = [
    criteria(),
    criteria([("status", "2,3", "in")]),
    criteria([("error_code", "", "notnull")], [("topic_name", "ASYNC.MAGENTO.%", "like")]),
    criteria([("bulk_uuid", OWN_BULK, "eq"), ("description", "admin%", "like")]),
    criteria([("status", "5", "neq")], [("user_type", "1", "eq")]),
    criteria([("status", "9", "eq")]),
]


@pytest.mark.parametrize("facet_names", [("status",), ("status", "topic_name", "error_code")])
def test_facets_count_what_the_search_matches(
    callers: tuple[httpx.Client, httpx.Client], facet_names: tuple[str, ...]
) -> None:
    for client in callers:
        for params in CRITERIA:
            response = client.get(FACETS, params=params + facets(*facet_names))
            assert response.status_code == 200, response.text
            answer = response.json()
            search = searched(client, params)
            items = search["items"]
            expected = Counter(tuple(item[name] for name in facet_names) for item in items)
            got = {tuple(c[name] for name in facet_names): c["count"] for c in answer["counts"]}
            assert got == expected, params
            assert answer["total_count"] == len(items)
            assert answer["facets"] == list(facet_names)
            assert list(answer) == ["facets", "counts", "total_count", "search_criteria"]
            assert answer["search_criteria"] == search["search_criteria"]
            # Ordered by the values, null first.
            keys = [tuple((v is not None, v) for v in key) for key in got]
            assert keys == sorted(keys)


def test_user_type_crossed_with_status_and_scoped_to_the_callers_bulks(
    callers: tuple[httpx.Client, httpx.Client],
) -> None:
    admin, own = callers
    everything = criteria() + facets("user_type", "status")
    expected: Counter[tuple[int, int]] = Counter()
    for uuid, operations in OPERATIONS.items():
        user_type = UserType.ADMIN if uuid == ADMIN_BULK else UserType.INTEGRATION
        expected.update((int(user_type), int(status)) for _, status, _ in operations)
    answer = admin.get(FACETS, params=everything).json()
    assert {(c["user_type"], c["status"]): c["count"] for c in answer["counts"]} == expected
    assert answer["total_count"] == sum(map(len, OPERATIONS.values()))

    # The integration counts its own bulk only, as if the others did not exist.
    answer = own.get(FACETS, params=criteria() + facets("status")).json()
    assert answer["counts"] == [
        {"status": 1, "count": 1},
        {"status": 2, "count": 2},
        {"status": 3, "count": 2},
        {"status": 4, "count": 1},
        {"status": 5, "count": 1},
    ]
    other = criteria([("bulk_uuid", OTHER_BULK, "eq")]) + facets("status")
    assert own.get(FACETS, params=other).json()["counts"] == []
    assert own.get(FACETS, params=other).json()["total_count"] == 0


def test_sorting_and_paging_change_nothing_and_answers_come_in_xml_too(
    callers: tuple[httpx.Client, httpx.Client],
) -> None:
    admin, _ = callers
    plain = criteria([("status", "1", "neq")]) + facets("topic_name")
    paged = [
        *plain,
        ("searchCriteria[pageSize]", "1"),
        ("searchCriteria[currentPage]", "3"),
        ("searchCriteria[sortOrders][0][field]", "topic_name"),
        ("searchCriteria[sortOrders][0][direction]", "DESC"),
    ]
    first, second = (admin.get(FACETS, params=p).json() for p in (plain, paged))
    assert (
        first["counts"]
        == second["counts"]
        == [
            {"topic_name": CUSTOMERS, "count": 7},
            {"topic_name": ECHO, "count": 2},
        ]
    )
    assert second["search_criteria"]["page_size"] == 1  # echoed as sent
    # One name without brackets, and a name repeated, count once.
    single = admin.get(FACETS, params=[*criteria(), ("facets", "user_type")]).json()
    repeated = admin.get(FACETS, params=criteria() + facets("user_type", "user_type")).json()
    assert single == repeated and single["facets"] == ["user_type"]

    response = admin.get(FACETS, params=plain, headers={"Accept": "application/xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)
    assert root.findtext("total_count") == "9"
    assert [e.text for e in root.iter("topic_name")] == [CUSTOMERS, ECHO]


def test_bad_requests_are_400s_and_anonymous_callers_401(server: RunningServer) -> None:
    allowed = "status, topic_name, error_code, user_type"
    with server.admin_client() as admin:
        for params, message in [
            (criteria() + facets("status", "result_message"), "result_message"),
            ([*criteria(), ("facets[a][b]", "status")], "array"),
        ]:
            response = admin.get(FACETS, params=params)
            assert response.status_code == 400
            assert response.json() == {
                "message": 'Facet "%facet" is not supported. Use one of: %supported.',
                "parameters": {"facet": message, "supported": allowed},
            }
        for params in (criteria(), [*criteria(), ("facets", "")]):
            response = admin.get(FACETS, params=params)
            assert response.status_code == 400
            assert response.json()["parameters"] == {"fieldName": "facets"}
        response = admin.get(FACETS, params=facets("status"))
        assert response.status_code == 400
        assert response.json()["parameters"] == {"fieldName": "searchCriteria"}
        unknown_field = criteria([("nope", "1", "eq")]) + facets("status")
        assert admin.get(FACETS, params=unknown_field).status_code == 400
    with server.client() as anonymous:
        assert anonymous.get(FACETS, params=criteria() + facets("status")).status_code == 401
