"""A bulk's `operation_count` counts its accepted operations only, as Magento's
`MassSchedule` / `BulkManagement::scheduleBulk` do
(module-asynchronous-operations/Model/MassSchedule.php): rejected items are stored with
status 5, listed and searchable, but a client waiting until statuses 1, 2 and 3 reach
`operation_count` finishes. Searches still count every row."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
from sqlalchemy import text

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests.servers import RunningServer

CUSTOMERS = "/rest/default/async/bulk/V1/customers"
VALID = [
    {"customer": {"email": "first@example.com"}, "password": "Password1"},
    {"customer": {"email": "second@example.com"}, "password": "Password1"},
]
INVALID = {"customer": "not an object"}


def submit(server: RunningServer, items: list[object]) -> str:
    with server.client() as client:
        response = client.post(CUSTOMERS, json=items)
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]


def wait_as_a_client_does(admin: httpx.Client, bulk_uuid: str, timeout: float = 30) -> int:
    """Until the complete and failed operations reach `operation_count`; answers that count."""
    deadline = time.monotonic() + timeout
    total = admin.get(f"/rest/V1/bulk/{bulk_uuid}/status").json()["operation_count"]
    while True:
        done = sum(
            admin.get(f"/rest/V1/bulk/{bulk_uuid}/operation-status/{status}").json()
            for status in (1, 2, 3)
        )
        if done >= total:
            return total
        assert time.monotonic() < deadline, f"{done} of {total} operations done"
        time.sleep(0.05)


def search_total(admin: httpx.Client, bulk_uuid: str, *filters: tuple[str, str]) -> int:
    """`total_count` of the bulk's operations (a filter on a bulk field only, whose count is
    read from the bulk table), with more filters (counted in the operations)."""
    query = "".join(
        f"&searchCriteria[filter_groups][{group}][filters][0][field]={field}"
        f"&searchCriteria[filter_groups][{group}][filters][0][value]={value}"
        for group, (field, value) in enumerate([("bulk_uuid", bulk_uuid), *filters])
    )
    response = admin.get(f"/rest/V1/bulk?searchCriteria[pageSize]=1{query}")
    assert response.status_code == 200, response.text
    return response.json()["total_count"]


def test_rejected_items_are_listed_but_not_counted(server: RunningServer) -> None:
    bulk_uuid = submit(server, [VALID[0], INVALID, VALID[1]])
    with server.admin_client() as admin:
        assert wait_as_a_client_does(admin, bulk_uuid) == 2
        status = admin.get(f"/rest/V1/bulk/{bulk_uuid}/status").json()
        assert [operation["status"] for operation in status["operations_list"]] == [1, 5, 1]
        detailed = admin.get(f"/rest/V1/bulk/{bulk_uuid}/detailed-status").json()
        assert detailed["operation_count"] == 2 and len(detailed["operations_list"]) == 3
        assert admin.get(f"/rest/V1/bulk/{bulk_uuid}/operation-status/5").json() == 1
        assert search_total(admin, bulk_uuid) == 3
        assert search_total(admin, bulk_uuid, ("status", "5")) == 1
        assert search_total(admin, bulk_uuid, ("status", "1")) == 2


def test_a_bulk_of_rejected_items_only_exists_with_no_operation(server: RunningServer) -> None:
    """Magento creates the bulk before it looks at the items, and keeps it."""
    bulk_uuid = submit(server, [INVALID, INVALID])
    with server.admin_client() as admin:
        assert wait_as_a_client_does(admin, bulk_uuid) == 0
        status = admin.get(f"/rest/V1/bulk/{bulk_uuid}/status")
        assert status.status_code == 200
        assert [operation["status"] for operation in status.json()["operations_list"]] == [5, 5]
        # No operation is open: Magento counts a bulk's missing rows as open, not rejected ones.
        assert admin.get(f"/rest/V1/bulk/{bulk_uuid}/operation-status/4").json() == 0
        assert search_total(admin, bulk_uuid) == 2


async def test_migration_leaves_rejected_rows_out_of_the_count(database_url: str) -> None:
    """Bulks written before revision 0004 counted every row in `operation_count`."""
    database = Database(database_url)
    try:
        await upgrade(database, "0003")
        start = datetime(2024, 1, 1)
        async with database.write() as connection:
            for uuid, statuses in (("with-rejected", [1, 5, 4, 5]), ("accepted-only", [1, 3])):
                await connection.execute(
                    text(
                        "INSERT INTO bulkops_bulk (uuid, operation_count, start_time)"
                        " VALUES (:uuid, :count, :start)"
                    ),
                    {"uuid": uuid, "count": len(statuses), "start": start},
                )
                for key, status in enumerate(statuses):
                    await connection.execute(
                        text(
                            "INSERT INTO bulkops_operation (bulk_uuid, operation_key,"
                            " topic_name, status, updated_at, start_time)"
                            " VALUES (:uuid, :key, 't', :status, :start, :start)"
                        ),
                        {"uuid": uuid, "key": key, "status": status, "start": start},
                    )
        await upgrade(database)
        async with database.read() as connection:
            counts = (
                await connection.execute(
                    text(
                        "SELECT uuid, operation_count, operation_rows FROM bulkops_bulk"
                        " ORDER BY uuid"
                    )
                )
            ).all()
        assert [tuple(row) for row in counts] == [("accepted-only", 2, 2), ("with-rejected", 2, 4)]
    finally:
        await database.dispose()


def test_a_rejected_operation_is_not_retried_nor_counted(server: RunningServer) -> None:
    """A rejected item needs new input: retrying it is refused, and the bulk's count and the
    item's status stay as they were."""
    bulk_uuid = submit(server, [VALID[0], INVALID])
    with server.admin_client() as admin:
        assert wait_as_a_client_does(admin, bulk_uuid) == 1
        refused = admin.post(f"/rest/V1/bulk/{bulk_uuid}/retry", json={"statuses": [5]})
        assert refused.status_code == 400, refused.text
        assert wait_as_a_client_does(admin, bulk_uuid) == 1
        status = admin.get(f"/rest/V1/bulk/{bulk_uuid}/status").json()
    assert [operation["status"] for operation in status["operations_list"]] == [1, 5]
