"""Who may retry what: the route's own resource for every operation requeued, and only failed
operations (2, 3); a handler never sees an item its route refuses, whatever the path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
import sqlalchemy
from sqlalchemy import func, select

from bulkops.api.app import create_app
from bulkops.auth.context import ALL_RESOURCES, BULK_OPERATIONS
from bulkops.handlers.customers import customers_route
from bulkops.handlers.registry import HandlerRegistry
from bulkops.services.payloads import Payloads
from bulkops.services.submission import serialized_data
from bulkops.settings import Settings
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import MYSQL_BACKENDS, Database
from bulkops.store.lifecycle import start_operations
from bulkops.store.tables import demo_customer, operation, operation_tally
from bulkops.worker.execution import Executor
from tests.backends import sync_url
from tests.integrations import bulkops_cli
from tests.storage import insert_bulks, insert_bulks_async, query
from tests.waiting import eventually

UNAVAILABLE = {"message": "The database is unavailable. Try again later."}

ECHO = "Vendor_Echo::echo"
ECHO_TOPIC = "async.vendor.echo.api.echointerface.echo.post"
GONE_TOPIC = "async.vendor.gone.api.goneinterface.apply.post"
CUSTOMERS_TOPIC = "async.magento.customer.api.accountmanagementinterface.createaccount.post"
ECHO_BULK = "e0000000-0000-4000-8000-000000000001"
GONE_BULK = "e0000000-0000-4000-8000-000000000002"
CUSTOMERS_BULK = "e0000000-0000-4000-8000-000000000003"
FAILED = [OperationStatus.RETRIABLY_FAILED, OperationStatus.NOT_RETRIABLY_FAILED]
REJECTED_EMAIL = {"customer": {"email": "bad"}, "password": "Password1"}


def failed_bulk(uuid: str, topic: str, statuses: list[OperationStatus], item: object) -> NewBulk:
    return NewBulk(
        uuid=uuid,
        description=None,
        # Submitted by another integration: the callers here read every bulk, so that only
        # the route's resource is in question.
        user_id=99,
        user_type=int(UserType.INTEGRATION),
        start_time=datetime(2030, 1, 1),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=topic,
                serialized_data=serialized_data(item),
                status=status,
                result_message="failed",
                error_code=0,
            )
            for key, status in enumerate(statuses)
        ],
    )


@dataclass
class Api:
    clients: dict[str, httpx.AsyncClient]
    database: Database

    async def statuses(self, uuid: str) -> list[int]:
        async with self.database.read() as connection:
            query = (
                select(operation.c.status)
                .where(operation.c.bulk_uuid == uuid)
                .order_by(operation.c.operation_key)
            )
            return list((await connection.execute(query)).scalars())


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    """The API with the echo route (resource Vendor_Echo::echo) and bulks of failed
    operations on it, on a route no longer served, and rejected ones on the customers route;
    callers that read every bulk, with the bulk resource alone, with the echo one too, and
    with every resource."""
    settings = Settings(
        database_url=database_url,
        handler_modules=["tests.handler_fixtures.echo"],
        token_cache_seconds=0,
    )
    app = create_app(settings, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    grants = {
        "reader": [BULK_OPERATIONS],
        "echoer": [BULK_OPERATIONS, ECHO],
        "everything": [ALL_RESOURCES],
    }
    async with app.router.lifespan_context(app):
        database = app.state.database
        clients = {}
        for name, resources in grants.items():
            credentials = await app.state.auth.create_integration(name, resources, all_bulks=True)
            clients[name] = httpx.AsyncClient(
                transport=transport,
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {credentials.access_token}"},
            )
        await insert_bulks_async(
            database,
            [
                failed_bulk(ECHO_BULK, ECHO_TOPIC, FAILED, {"name": "x"}),
                failed_bulk(GONE_BULK, GONE_TOPIC, FAILED, {}),
                failed_bulk(
                    CUSTOMERS_BULK,
                    CUSTOMERS_TOPIC,
                    [OperationStatus.REJECTED, OperationStatus.RETRIABLY_FAILED],
                    REJECTED_EMAIL,
                ),
            ],
        )
        try:
            yield Api(clients, database)
        finally:
            for client in clients.values():
                await client.aclose()


def not_authorized(resources: str) -> dict[str, object]:
    return {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": resources},
    }


async def test_retrying_needs_the_resource_of_the_operations_route(api: Api) -> None:
    path = f"/rest/V1/bulk/{ECHO_BULK}/retry"
    response = await api.clients["reader"].post(path)
    assert (response.status_code, response.json()) == (401, not_authorized(ECHO))
    assert await api.statuses(ECHO_BULK) == FAILED
    response = await api.clients["echoer"].post(path, json={"statuses": [3]})
    assert (response.status_code, response.json()) == (200, 1)
    assert await api.statuses(ECHO_BULK) == [OperationStatus.RETRIABLY_FAILED, OperationStatus.OPEN]
    response = await api.clients["everything"].post(path)
    assert (response.status_code, response.json()) == (200, 1)


async def test_only_the_operations_requeued_need_their_resource(api: Api) -> None:
    # No operation of the echo route has error code 7: nothing is requeued, nothing needed.
    response = await api.clients["reader"].post(
        f"/rest/V1/bulk/{ECHO_BULK}/retry", json={"error_codes": [7]}
    )
    assert (response.status_code, response.json()) == (200, 0)


async def test_a_topic_no_route_serves_needs_every_resource(api: Api) -> None:
    path = f"/rest/V1/bulk/{GONE_BULK}/retry"
    for caller in ("reader", "echoer"):
        response = await api.clients[caller].post(path)
        assert (response.status_code, response.json()) == (401, not_authorized(ALL_RESOURCES))
    assert await api.statuses(GONE_BULK) == FAILED
    response = await api.clients["everything"].post(path)
    assert (response.status_code, response.json()) == (200, 2)


async def test_resubmitting_needs_the_resource_of_the_operations_route(api: Api) -> None:
    """As a retry: the corrected item runs through the same route."""
    path = f"/rest/V1/bulk/{ECHO_BULK}/resubmit"
    body = [{"operation_key": 1, "item": {"name": "y"}}]
    response = await api.clients["reader"].post(path, json=body)
    assert (response.status_code, response.json()) == (401, not_authorized(ECHO))
    response = await api.clients["echoer"].post(path, json=body)
    assert response.status_code == 202 and response.json()["errors"] is False
    new_bulk = response.json()["bulk_uuid"]
    assert await api.statuses(new_bulk) == [OperationStatus.OPEN]
    # A topic no route serves: every resource, and still nothing to validate it with.
    gone = f"/rest/V1/bulk/{GONE_BULK}/resubmit"
    response = await api.clients["echoer"].post(gone, json=body)
    assert (response.status_code, response.json()) == (401, not_authorized(ALL_RESOURCES))
    response = await api.clients["everything"].post(gone, json=body)
    assert response.status_code == 400
    assert response.json()["parameters"] == {"operationKey": 1, "topic": GONE_TOPIC}


async def test_an_operation_is_resubmitted_once_however_many_requests_race(api: Api) -> None:
    path = f"/rest/V1/bulk/{ECHO_BULK}/resubmit"
    body = [{"operation_key": 0, "item": {"name": "z"}}]
    client = api.clients["echoer"]
    answers = await asyncio.gather(*(client.post(path, json=body) for _ in range(4)))
    assert sorted(answer.status_code for answer in answers) == [202, 400, 400, 400]
    async with api.database.read() as connection:
        linked = select(func.count()).where(operation.c.resubmitted_to_bulk.is_not(None))
        assert (await connection.execute(linked)).scalar_one() == 1


@pytest.mark.parametrize("statuses", [[5], [2, 5], [1], [4], [9], [3, 4]])
async def test_only_failed_operations_can_be_retried(api: Api, statuses: list[int]) -> None:
    refused = next(status for status in statuses if status not in (2, 3))
    response = await api.clients["everything"].post(
        f"/rest/V1/bulk/{CUSTOMERS_BULK}/retry", json={"statuses": statuses}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["parameters"] == {"status": refused}
    if refused == 5:
        assert body["message"] == (
            "Rejected operations (status %status) failed validation and need new input: "
            "submit the items again instead of retrying them."
        )
    else:
        assert body["message"] == (
            "Operations with status %status cannot be retried: only failed ones "
            "(status 2 or 3) can."
        )
    assert await api.statuses(CUSTOMERS_BULK) == [
        OperationStatus.REJECTED,
        OperationStatus.RETRIABLY_FAILED,
    ]


def test_the_retry_command_refuses_other_statuses(database_url: str) -> None:
    assert bulkops_cli(database_url, "migrate").returncode == 0
    statuses = [OperationStatus.REJECTED, OperationStatus.RETRIABLY_FAILED]
    insert_bulks(database_url, [failed_bulk(CUSTOMERS_BULK, CUSTOMERS_TOPIC, statuses, {})])
    result = bulkops_cli(database_url, "retry", CUSTOMERS_BULK, "--status", "5")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: Rejected operations (status 5) failed validation and need new input: "
        "submit the items again instead of retrying them.\n"
    )
    result = bulkops_cli(database_url, "retry", CUSTOMERS_BULK, "-s", "2", "-s", "4")
    assert result.returncode == 1
    assert "Operations with status 4 cannot be retried" in result.stderr
    assert query(database_url, "SELECT status FROM bulkops_operation ORDER BY id") == [(5,), (2,)]
    result = bulkops_cli(database_url, "retry", CUSTOMERS_BULK)
    assert (result.returncode, result.stdout) == (0, "requeued 1 operations\n")


async def test_a_handler_never_sees_an_item_its_route_refuses(database: Database) -> None:
    """An open operation whose item the route refuses (its rules changed since it was
    accepted, or it was reopened by hand) ends failed, not retriable, with the reason; the
    handler is not run: no customer is created."""
    item = REJECTED_EMAIL
    await insert_bulks_async(
        database,
        [failed_bulk(CUSTOMERS_BULK, CUSTOMERS_TOPIC, [OperationStatus.OPEN], item)],
    )
    routes = HandlerRegistry()
    routes.add(customers_route(Settings(), database))
    async with database.write() as connection:
        ids = list((await connection.execute(select(operation.c.id))).scalars())
        (row,) = await start_operations(connection, ids, datetime(2030, 1, 1))
    executor = Executor(routes, 1, Payloads.from_settings(Settings()))
    result = await executor.run(row, 1)
    assert result.status == OperationStatus.NOT_RETRIABLY_FAILED
    assert result.result_message == '"Email" is not a valid email address.'
    async with database.read() as connection:
        created = await connection.execute(select(func.count()).select_from(demo_customer))
        assert created.scalar_one() == 0


async def test_a_retry_losing_a_deadlock_answers_503(api: Api, database_url: str) -> None:
    """A retry that InnoDB picks as a deadlock's victim answers Magento's 503 (try again), and
    changes nothing. Here another transaction, heavier (InnoDB rolls back the lighter), holds
    the bulk's counts the retry waits for, then asks for the operations the retry holds."""
    if api.database.backend not in MYSQL_BACKENDS:
        pytest.skip("InnoDB's deadlock detection")
    engine = sqlalchemy.create_engine(sync_url(database_url))
    with engine.connect() as other, engine.connect() as watcher:
        other.execute(sqlalchemy.text("CREATE TABLE ballast (n INT PRIMARY KEY)"))
        other.commit()

        def hold_counts() -> None:
            ballast = [{"n": n} for n in range(500)]
            other.execute(sqlalchemy.text("INSERT INTO ballast VALUES (:n)"), ballast)
            other.execute(
                select(operation_tally)
                .where(operation_tally.c.bulk_uuid == ECHO_BULK)
                .with_for_update()
            )

        def counting() -> int:
            """Statements counting the retry's operations: once one runs, the retry holds the
            operations' locks (taken first) and waits for the counts'. (MariaDB's innodb_trx
            does not always list a transaction in a lock wait; the process list does.)"""
            watcher.rollback()  # a fresh snapshot
            found = watcher.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM information_schema.processlist"
                    " WHERE info LIKE 'UPDATE bulkops_operation_tally%'"
                )
            )
            return int(found.scalar_one())

        def take_operations() -> None:
            other.execute(
                select(operation.c.id).where(operation.c.bulk_uuid == ECHO_BULK).with_for_update()
            )

        await asyncio.to_thread(hold_counts)
        retry = asyncio.create_task(api.clients["echoer"].post(f"/rest/V1/bulk/{ECHO_BULK}/retry"))
        await eventually(lambda: asyncio.to_thread(counting))
        await asyncio.to_thread(take_operations)
        response = await retry
        await asyncio.to_thread(other.rollback)
    engine.dispose()
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert await api.statuses(ECHO_BULK) == FAILED
    response = await api.clients["echoer"].post(f"/rest/V1/bulk/{ECHO_BULK}/retry")
    assert (response.status_code, response.json()) == (200, 2)
