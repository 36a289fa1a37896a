"""The search's opt-in keyset cursor, through HTTP on every backend: paging with it returns
exactly the rows, in exactly the order, of the same search read whole (any sort, caseless
text, NULLs, the bulk's fields), rows inserted between pages neither repeat nor skip the
others, and a cursor is only good for the search that made it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.servers import RunningServer
from tests.storage import insert_bulks

SEARCH = "/rest/V1/bulk/"
TOPICS = ["async.Alpha.post", "async.alpha.post", "async.beta.post", "async.ALPHA.put"]
MESSAGES = [None, "Failed", "failed", "Other", None, "b"]
STATUSES = [1, 2, 3, 4, 5]


def bulk(seed: int, operations: int, topics: list[str] = TOPICS) -> NewBulk:
    return NewBulk(
        uuid=str(uuid.uuid4()),
        description=["Import B", "import a", None][seed % 3],
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=datetime(2030, 1, 1) + timedelta(hours=seed % 2),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=topics[(seed + key) % len(topics)],
                serialized_data="{}",
                status=OperationStatus(STATUSES[(seed * 3 + key) % len(STATUSES)]),
                result_message=MESSAGES[(seed + key * 5) % len(MESSAGES)],
                error_code=None if key % 4 == 0 else key % 3,
            )
            for key in range(operations)
        ],
    )


def criteria(sorts: list[tuple[str, str]], **extra: str) -> dict[str, str]:
    params = {
        "searchCriteria[filterGroups][0][filters][0][field]": "status",
        "searchCriteria[filterGroups][0][filters][0][value]": "5",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "neq",
    }
    for index, (field, direction) in enumerate(sorts):
        params[f"searchCriteria[sortOrders][{index}][field]"] = field
        params[f"searchCriteria[sortOrders][{index}][direction]"] = direction
    return params | extra


def page(client: httpx.Client, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert response.headers.get("x-next-cursor") == answer["next_cursor"]
    return answer


def keyset_ids(
    client: httpx.Client, params: dict[str, str], between: list[NewBulk], url: str
) -> list[int]:
    """Every id, a page of 7 at a time; `between` inserted one bulk after each page."""
    ids: list[int] = []
    cursor = ""
    while True:
        answer = page(client, params | {"searchCriteria[pageSize]": "7", "cursor": cursor})
        ids += [item["id"] for item in answer["items"]]
        if answer["next_cursor"] is None:
            return ids
        cursor = answer["next_cursor"]
        if between:
            insert_bulks(url, [between.pop()])


SORTS = [
    [],
    [("status", "DESC")],
    [("topic_name", "ASC"), ("result_message", "DESC")],
    [("result_message", "ASC"), ("error_code", "DESC")],
    [("error_code", "ASC"), ("id", "DESC"), ("status", "ASC")],
    [("start_time", "DESC"), ("description", "ASC")],
    [("description", "DESC"), ("updated_at", "ASC"), ("operation_key", "ASC")],
]


@pytest.mark.parametrize("sorts", SORTS, ids=lambda s: ",".join(f"{f} {d}" for f, d in s))
def test_keyset_pages_are_the_search_in_order(
    server: RunningServer, sorts: list[tuple[str, str]]
) -> None:
    insert_bulks(server.database_url, [bulk(seed, 11) for seed in range(6)])
    with server.admin_client() as admin:
        whole = page_without_cursor(admin, criteria(sorts))
        assert keyset_ids(admin, criteria(sorts), [], server.database_url) == whole

        # Rows inserted between pages, sorting anywhere among the others: the rows there
        # were are all seen once, in order.
        later = [bulk(seed, 5, ["async.alpha.post", "async.Beta.post"]) for seed in range(6, 9)]
        seen = keyset_ids(admin, criteria(sorts), later, server.database_url)
        assert len(seen) == len(set(seen))
        assert [found for found in seen if found in set(whole)] == whole


def page_without_cursor(client: httpx.Client, params: dict[str, str]) -> list[int]:
    answer = client.get(SEARCH, params=params).json()
    assert set(answer) == {"items", "search_criteria", "total_count"}
    return [item["id"] for item in answer["items"]]


def test_a_cursor_is_only_good_for_its_search(server: RunningServer) -> None:
    insert_bulks(server.database_url, [bulk(seed, 11) for seed in range(3)])
    sorts = [("topic_name", "ASC")]
    with server.admin_client() as admin:
        first = page(admin, criteria(sorts, **{"searchCriteria[pageSize]": "5", "cursor": ""}))
        assert len(first["items"]) == 5 and first["total_count"] > 5
        assert list(first)[:3] == ["items", "search_criteria", "total_count"]
        cursor = first["next_cursor"]
        # Another page size is the same search.
        following = page(
            admin, criteria(sorts, **{"searchCriteria[pageSize]": "3", "cursor": cursor})
        )
        assert len(following["items"]) == 3

        refused = [
            criteria([("status", "ASC")], **{"searchCriteria[pageSize]": "5", "cursor": cursor}),
            criteria(sorts, **{"searchCriteria[pageSize]": "5", "cursor": cursor[:-3]}),
            criteria(sorts, **{"searchCriteria[pageSize]": "5", "cursor": "garbage!"}),
            criteria(sorts, **{"searchCriteria[pageSize]": "5", "cursor": "W10"}),
            criteria(sorts, cursor=cursor),
            criteria(sorts, **{"searchCriteria[pageSize]": "5001", "cursor": ""}),
            criteria(
                sorts,
                **{
                    "searchCriteria[pageSize]": "5",
                    "searchCriteria[currentPage]": "2",
                    "cursor": "",
                },
            ),
            criteria(
                [("serialized_data", "ASC")], **{"searchCriteria[pageSize]": "5", "cursor": ""}
            ),
            {
                "searchCriteria[pageSize]": "5",
                "cursor": cursor,
            },
        ]
        for params in refused:
            response = admin.get(SEARCH, params=params)
            assert response.status_code == 400, (params, response.text)
            assert set(response.json()) == {"message", "parameters"}
