"""`POST /V1/bulk/retry?searchCriteria...`: every failed operation (2, 3) a search matches is
queued again and run, across bulks, on both transports; `dry_run` counts them and changes
nothing; only the caller's bulks, and only with the resource of every route requeued."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bulkops.auth.context import ALL_RESOURCES, BULK_OPERATIONS
from bulkops.services.submission import serialized_data
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.integrations import create_integration
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks, query
from tests.waiting import wait_for

RETRY = "/rest/V1/bulk/retry"
CUSTOMERS = "async.magento.customer.api.accountmanagementinterface.createaccount.post"
GONE = "async.vendor.gone.api.goneinterface.apply.post"
OWN_BULK = "a0000000-0000-4000-8000-000000000001"
OTHER_BULK = "a0000000-0000-4000-8000-000000000002"
GONE_BULK = "a0000000-0000-4000-8000-000000000003"
S = OperationStatus


def customer(uuid: str, key: int) -> str:
    email = f"retried{uuid[-1]}{key}@example.com"
    return serialized_data({"customer": {"email": email}, "password": "Password1"})


def _bulk(uuid: str, user_id: int, operations: list[tuple[str, S]]) -> NewBulk:
    return NewBulk(
        uuid=uuid,
        description=None,
        user_id=user_id,
        user_type=int(UserType.INTEGRATION),
        start_time=datetime(2030, 1, 1),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=topic,
                serialized_data=None if status == S.COMPLETE else customer(uuid, key),
                status=status,
                result_message=None if status == S.COMPLETE else "failed",
                error_code=None if status == S.COMPLETE else 7,
            )
            for key, (topic, status) in enumerate(operations)
        ],
    )


@pytest.fixture
def serving(
    database_url: str, tmp_path: Path, queue_settings: dict[str, str]
) -> Iterator[RunningServer]:
    """A server with its worker, on the test's transport."""
    running = start_server(tmp_path / "server", DATABASE_URL=database_url, **queue_settings)
    yield running
    running.stop()


def statuses(server: RunningServer, uuid: str) -> list[int]:
    rows = query(
        server.database_url,
        f"SELECT status FROM bulkops_operation WHERE bulk_uuid = '{uuid}' ORDER BY operation_key",
    )
    return [row[0] for row in rows]


def criteria(field: str, value: str, condition: str = "eq") -> list[tuple[str, str]]:
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return [
        (f"{prefix}[field]", field),
        (f"{prefix}[value]", value),
        (f"{prefix}[condition_type]", condition),
    ]


EVERYTHING = [("searchCriteria", "")]


def test_retry_by_search_requeues_the_failed_matches_on_both_transports(
    serving: RunningServer,
) -> None:
    server = serving
    token = create_integration(server.database_url, "own", BULK_OPERATIONS).access_token
    [(own_id,)] = query(server.database_url, "SELECT id FROM bulkops_integration")
    insert_bulks(
        server.database_url,
        [
            _bulk(
                OWN_BULK,
                own_id,
                [
                    (CUSTOMERS, S.RETRIABLY_FAILED),
                    (CUSTOMERS, S.NOT_RETRIABLY_FAILED),
                    (CUSTOMERS, S.COMPLETE),
                    (CUSTOMERS, S.REJECTED),
                ],
            ),
            _bulk(OTHER_BULK, own_id + 1, [(CUSTOMERS, S.RETRIABLY_FAILED)]),
            _bulk(GONE_BULK, own_id, [(GONE, S.NOT_RETRIABLY_FAILED)]),
        ],
    )
    failed_own = [S.RETRIABLY_FAILED, S.NOT_RETRIABLY_FAILED, S.COMPLETE, S.REJECTED]
    with (
        server.client(headers={"Authorization": f"Bearer {token}"}) as own,
        server.admin_client() as admin,
    ):
        # A route no longer served needs every resource: refused, nothing changed, even dry.
        for params in (EVERYTHING, [*EVERYTHING, ("dry_run", "true")]):
            response = own.post(RETRY, params=params)
            assert response.status_code == 401, response.text
            assert response.json()["parameters"] == {"resources": ALL_RESOURCES}
        tag = own.get(f"/rest/V1/bulk/{OWN_BULK}/status").headers["etag"]

        # Its own failed operations only: the other's and the completed and rejected ones
        # are not counted.
        customers = criteria("topic_name", CUSTOMERS.upper())
        response = own.post(RETRY, params=[*customers, ("dry_run", "1")])
        assert (response.status_code, response.json()) == (200, 2)
        assert statuses(server, OWN_BULK) == failed_own
        assert own.get(f"/rest/V1/bulk/{OWN_BULK}/status").headers["etag"] == tag

        response = own.post(RETRY, params=customers)
        assert (response.status_code, response.json()) == (200, 2)
        wait_for(
            lambda: statuses(server, OWN_BULK) == [1, 1, 1, 5], 60, "the retried operations run"
        )
        assert own.get(f"/rest/V1/bulk/{OWN_BULK}/status").headers["etag"] != tag
        assert statuses(server, OTHER_BULK) == [S.RETRIABLY_FAILED]
        assert own.post(RETRY, params=customers).json() == 0

        # An admin reads every bulk: the other's now, by status.
        failed = criteria("status", "2,3", "in")
        assert admin.post(RETRY, params=[*failed, ("dry_run", "true")]).json() == 2
        assert admin.post(RETRY, params=criteria("bulk_uuid", OTHER_BULK)).json() == 1
        wait_for(lambda: statuses(server, OTHER_BULK) == [1], 60, "the other bulk's operation")
        emails = query(server.database_url, "SELECT email FROM bulkops_demo_customer")
        assert len(emails) == 3
        # The operations' counts followed every retry and result: facets read them.
        facets = admin.get("/rest/V1/bulk/facets", params=[*EVERYTHING, ("facets[]", "status")])
        assert facets.json()["counts"] == [
            {"status": 1, "count": 4},
            {"status": 3, "count": 1},
            {"status": 5, "count": 1},
        ]
    assert "Traceback" not in server.log()


def test_bad_retries_by_search_are_400s(server: RunningServer) -> None:
    with server.admin_client() as admin:
        response = admin.post(RETRY, params=[*EVERYTHING, ("dry_run", "maybe")])
        assert response.status_code == 400
        assert '"bool" type' in response.json()["message"]
        response = admin.post(RETRY, params=criteria("nope", "1"))
        assert response.status_code == 400
        response = admin.post(RETRY)
        assert response.status_code == 400
        assert response.json()["parameters"] == {"fieldName": "searchCriteria"}
        assert admin.post(RETRY, params=criteria("status", "9")).json() == 0
    with server.client() as anonymous:
        assert anonymous.post(RETRY, params=EVERYTHING).status_code == 401
