"""Status lifecycle tools: results, retry (store, HTTP, CLI), marking operations open too long,
cleanup, and the derived bulk status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bulkops.api.app import create_app
from bulkops.errors import InputError
from bulkops.queue.db import DbTransport
from bulkops.settings import Settings
from bulkops.status import BulkStatus, OperationStatus, derive_bulk_status
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import (
    UNKNOWN_ERROR,
    Result,
    bulk_status,
    cleanup_bulks,
    expired_bulks,
    mark_incomplete_operations,
    record_results,
    retry_in_batches,
    retry_operations,
    start_operations,
)
from bulkops.store.migrate import upgrade
from bulkops.store.queue import enqueue_open_operations
from bulkops.store.tables import bulk, operation, queue_message
from tests.integrations import bulkops_cli

TOPIC = "async.V1.things.POST"
BULK = "c0000000-0000-4000-8000-000000000001"
NOW = datetime(2030, 6, 1, 12, 0, 0)
DONE, RETRY, FAIL, OPEN, REJECTED = (
    OperationStatus.COMPLETE,
    OperationStatus.RETRIABLY_FAILED,
    OperationStatus.NOT_RETRIABLY_FAILED,
    OperationStatus.OPEN,
    OperationStatus.REJECTED,
)


def new_bulk(
    statuses: list[OperationStatus],
    uuid: str = BULK,
    start_time: datetime = NOW,
    error_codes: list[int | None] | None = None,
) -> NewBulk:
    codes = error_codes or [None if s in (DONE, OPEN) else 0 for s in statuses]
    return NewBulk(
        uuid=uuid,
        description=None,
        user_id=1,
        user_type=2,
        start_time=start_time,
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=TOPIC,
                # Magento drops the payload of completed operations.
                serialized_data=None if status == DONE else f'{{"key":{key}}}',
                status=status,
                result_message=None if status == OPEN else f"message {key}",
                error_code=code,
                result_serialized_data='"out"' if status == DONE else None,
            )
            for key, (status, code) in enumerate(zip(statuses, codes, strict=True))
        ],
    )


async def add(database: Database, *bulks: NewBulk) -> None:
    async with database.write() as connection:
        for one in bulks:
            await insert_bulk(connection, one)
            await enqueue_open_operations(connection, one.uuid, one.start_time)


async def rows(database: Database, table: Any = operation) -> list[Any]:
    async with database.read() as connection:
        return (await connection.execute(select(table).order_by(table.c.id))).all()


@pytest.mark.parametrize(
    ("operation_count", "counts", "expected"),
    [
        (3, {OPEN: 3}, BulkStatus.NOT_STARTED),
        (3, {}, BulkStatus.NOT_STARTED),  # no rows yet: all open
        (0, {}, BulkStatus.NOT_STARTED),
        # Magento (#36911) says "finished with failure" for these two.
        (3, {DONE: 1, OPEN: 2}, BulkStatus.IN_PROGRESS),
        (3, {FAIL: 1, OPEN: 2}, BulkStatus.IN_PROGRESS),
        (3, {DONE: 2}, BulkStatus.IN_PROGRESS),  # one operation has no row: open
        (3, {DONE: 3}, BulkStatus.FINISHED_SUCCESSFULLY),
        (3, {DONE: 2, RETRY: 1}, BulkStatus.FINISHED_WITH_FAILURE),
        # Rejected operations are outside the bulk's count, and its status.
        (2, {DONE: 2, REJECTED: 1}, BulkStatus.FINISHED_SUCCESSFULLY),
        (2, {DONE: 1, FAIL: 1, REJECTED: 1}, BulkStatus.FINISHED_WITH_FAILURE),
        (0, {REJECTED: 2}, BulkStatus.NOT_STARTED),
        (2, {FAIL: 2}, BulkStatus.FINISHED_WITH_FAILURE),
    ],
)
def test_derived_bulk_status(
    operation_count: int, counts: dict[int, int], expected: BulkStatus
) -> None:
    assert derive_bulk_status(operation_count, counts) == expected


async def test_bulk_status_follows_the_operations(database: Database) -> None:
    await add(database, new_bulk([OPEN, OPEN]))
    async with database.read() as connection:
        assert await bulk_status(connection, BULK) == BulkStatus.NOT_STARTED
        assert await bulk_status(connection, "no-such-bulk") is None
    first, second = await rows(database)
    async with database.write() as connection:
        await record_results(connection, [Result(first.id, DONE, "ok")], NOW)
        assert await bulk_status(connection, BULK) == BulkStatus.IN_PROGRESS
        await record_results(connection, [Result(second.id, DONE, "ok")], NOW)
        assert await bulk_status(connection, BULK) == BulkStatus.FINISHED_SUCCESSFULLY


async def test_results_are_written_once_and_only_to_open_operations(database: Database) -> None:
    await add(database, new_bulk([OPEN, OPEN, OPEN]))
    started, completed, failed = await rows(database)
    later = NOW + timedelta(minutes=5)
    async with database.write() as connection:
        (fresh,) = await start_operations(connection, [started.id], later)
        assert (fresh.id, fresh.user_type, fresh.user_id) == (started.id, 2, 1)
        await record_results(
            connection,
            [
                Result(completed.id, DONE, "done", None, '{"a":1}'),
                Result(failed.id, FAIL, "bad", 9),
            ],
            later,
        )
        # Second results for the same operations: ignored.
        await record_results(
            connection, [Result(completed.id, FAIL, "x", 1), Result(failed.id, DONE, "y")], NOW
        )
        assert await start_operations(connection, [completed.id, failed.id], NOW) == []
    started, completed, failed = await rows(database)
    assert (started.status, started.started_at, started.updated_at) == (OPEN, later, later)
    assert (completed.serialized_data, completed.result_serialized_data) == (None, '{"a":1}')
    assert (completed.status, completed.error_code, completed.result_message) == (
        DONE,
        None,
        "done",
    )
    assert (completed.updated_at, completed.started_at) == (later, None)
    assert (failed.serialized_data, failed.status, failed.error_code) == ('{"key":2}', FAIL, 9)
    assert failed.result_message == "bad"


async def test_retry_reopens_failed_operations_and_queues_them(database: Database) -> None:
    await add(
        database,
        new_bulk([DONE, RETRY, FAIL, OPEN, REJECTED, FAIL], error_codes=[None, 5, 0, None, 0, 5]),
    )
    async with database.write() as connection:
        await connection.execute(queue_message.delete())  # the open one's message is away
        count = await retry_operations(connection, BULK, NOW + timedelta(hours=1))
    assert count == 3
    statuses = [row.status for row in await rows(database)]
    assert statuses == [DONE, OPEN, OPEN, OPEN, REJECTED, OPEN]
    await check_retried(database)


async def check_retried(database: Database) -> None:
    retried = [row for row in await rows(database) if row.operation_key in (1, 2, 5)]
    for row in retried:
        assert (row.result_message, row.error_code, row.result_serialized_data) == (None,) * 3
        assert row.started_at is None and row.updated_at == NOW + timedelta(hours=1)
        assert row.serialized_data == f'{{"key":{row.operation_key}}}'
    # The reopened ones are queued, and only they: the untouched open one, whose message was
    # lost, gets a new one from the relay, which can tell a lost message from one in flight.
    queued = {message.operation_id for message in await rows(database, queue_message)}
    assert queued == {row.id for row in retried}
    assert await DbTransport(database, lease_seconds=30).relay() == 1
    await check_open_ones_queued(database)


async def check_open_ones_queued(database: Database) -> None:
    queued = {message.operation_id for message in await rows(database, queue_message)}
    # Every open operation of the bulk has a message.
    assert queued == {row.id for row in await rows(database) if row.status == OPEN}


async def test_retry_filters_by_status_and_error_code(database: Database) -> None:
    await add(
        database, new_bulk([DONE, RETRY, FAIL, REJECTED, FAIL], error_codes=[None, 5, 0, 0, 5])
    )

    async def retry(**filters: Any) -> int | None:
        async with database.write() as connection:
            return await retry_operations(connection, filters.pop("uuid", BULK), NOW, **filters)

    assert await retry(error_codes=[5]) == 2
    assert [row.status for row in await rows(database)] == [DONE, OPEN, FAIL, REJECTED, OPEN]
    # Only failed operations: rejected ones need new input, the others are not failed.
    for status in (DONE, OPEN, REJECTED):
        with pytest.raises(InputError):
            await retry(statuses=[status])
    assert await retry(statuses=[FAIL]) == 1
    assert await retry(uuid="unknown") is None
    assert [row.status for row in await rows(database)] == [DONE, OPEN, OPEN, REJECTED, OPEN]
    assert len(await rows(database, queue_message)) == 3


async def test_operations_open_too_long_are_marked_failed(database: Database) -> None:
    await add(database, new_bulk([OPEN] * 5 + [DONE]))
    ids = [row.id for row in await rows(database)]
    async with database.write() as connection:
        await start_operations(connection, ids[:3], NOW - timedelta(hours=13))
        await start_operations(connection, ids[3:4], NOW - timedelta(hours=11))
        await start_operations(connection, ids[5:], NOW - timedelta(hours=13))
    marked = await mark_incomplete_operations(database, NOW, timedelta(hours=12), batch_size=2)
    assert marked == 3
    found = await rows(database)
    assert [(r.status, r.result_message, r.error_code) for r in found[:3]] == [
        (RETRY, UNKNOWN_ERROR, 0)
    ] * 3
    assert all(row.updated_at == NOW for row in found[:3])
    # Started recently, never started, or final: untouched.
    assert [row.status for row in found[3:]] == [OPEN, OPEN, DONE]
    queued = {message.operation_id for message in await rows(database, queue_message)}
    assert queued == set(ids[3:5])
    assert await mark_incomplete_operations(database, NOW, timedelta(hours=12)) == 0


async def test_cleanup_deletes_old_bulks_in_batches(database: Database) -> None:
    old = NOW - timedelta(days=61)
    await add(
        database,
        new_bulk([OPEN, DONE, FAIL], uuid="old-1", start_time=old),
        new_bulk([DONE] * 4, uuid="old-2", start_time=old - timedelta(days=300)),
        new_bulk([OPEN, DONE], uuid="recent", start_time=NOW - timedelta(days=59)),
    )
    cleaned = await cleanup_bulks(database, expired_bulks(NOW, timedelta(days=60)), batch_size=2)
    assert (cleaned.bulks, cleaned.operations) == (2, 7)
    assert [row.uuid for row in await rows(database, bulk)] == ["recent"]
    assert {row.bulk_uuid for row in await rows(database)} == {"recent"}
    assert len(await rows(database, queue_message)) == 1


async def test_retry_in_batches_reopens_and_queues_as_one_transaction_does(
    database: Database,
) -> None:
    await add(
        database,
        new_bulk([DONE, RETRY, FAIL, OPEN, REJECTED, FAIL], error_codes=[None, 5, 0, None, 0, 5]),
    )
    async with database.write() as connection:
        await connection.execute(queue_message.delete())  # the open one's message is away
    told: list[tuple[int, int]] = []
    count = await retry_in_batches(
        database, BULK, NOW + timedelta(hours=1), batch_size=2, progress=lambda *n: told.append(n)
    )
    assert count == 3
    assert told == [(0, 3), (2, 3), (3, 3)]
    assert [row.status for row in await rows(database)] == [DONE, OPEN, OPEN, OPEN, REJECTED, OPEN]
    await check_retried(database)
    assert await retry_in_batches(database, "unknown", NOW) is None
    with pytest.raises(InputError):
        await retry_in_batches(database, BULK, NOW, statuses=[REJECTED])


async def test_cleanup_of_every_bulk_tells_its_progress(database: Database) -> None:
    await add(
        database,
        new_bulk([DONE, FAIL], uuid="old", start_time=NOW - timedelta(days=300)),
        new_bulk([OPEN], uuid="future", start_time=NOW + timedelta(days=300)),
        new_bulk([], uuid="empty"),
    )
    told: list[tuple[int, int]] = []
    cleaned = await cleanup_bulks(database, None, batch_size=1, progress=lambda *n: told.append(n))
    assert (cleaned.bulks, cleaned.operations) == (3, 3)
    assert told == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert await rows(database, bulk) == [] and await rows(database, queue_message) == []


# The HTTP endpoint and the CLI, on their own database.


@pytest.fixture
def seeded_url(database_url: str) -> str:
    """The test's database, with a bulk to retry and one old enough to clean up."""

    async def prepare() -> None:
        database = Database(database_url)
        await upgrade(database)
        await add(
            database,
            new_bulk([DONE, RETRY, FAIL, FAIL, REJECTED], error_codes=[None, 5, 0, 5, 0]),
            new_bulk([DONE, OPEN], uuid="old", start_time=datetime(2020, 1, 1)),
        )
        await database.dispose()

    asyncio.run(prepare())
    return database_url


async def statuses(database_url: str) -> list[int]:
    database = Database(database_url)
    try:
        return [row.status for row in await rows(database) if row.bulk_uuid == BULK]
    finally:
        await database.dispose()


async def bulk_uuids(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        return [row.uuid for row in await rows(database, bulk)]
    finally:
        await database.dispose()


@pytest.fixture
async def api(seeded_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=seeded_url, admin_username="admin", admin_password="Admin123-test"
    )
    app = create_app(settings, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        response = await client.post(
            "/rest/V1/integration/admin/token",
            json={"username": "admin", "password": "Admin123-test"},
        )
        client.headers["Authorization"] = f"Bearer {response.json()}"
        yield client


async def test_retry_endpoint_requeues_and_answers_the_count(
    api: httpx.AsyncClient, seeded_url: str
) -> None:
    path = f"/rest/default/V1/bulk/{BULK}/retry"
    response = await api.post(path, json={"error_codes": [5]})
    assert response.status_code == 200 and response.json() == 2
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert await statuses(seeded_url) == [DONE, OPEN, FAIL, OPEN, REJECTED]
    # No body, as some clients send: the default statuses, 2 and 3.
    response = await api.post(path, headers={"Content-Type": "application/json"})
    assert response.json() == 1
    assert (await api.post(path, json={"statuses": [5]})).status_code == 400
    assert await statuses(seeded_url) == [DONE, OPEN, OPEN, OPEN, REJECTED]


async def test_retry_endpoint_errors(api: httpx.AsyncClient) -> None:
    response = await api.post("/rest/V1/bulk/no-such-bulk/retry")
    assert response.status_code == 404
    assert response.json() == {
        "message": "Bulk uuid %bulkUuid not exist",
        "parameters": {"bulkUuid": "no-such-bulk"},
    }
    path = f"/rest/V1/bulk/{BULK}/retry"
    for body in (b"[2]", b"{", b'{"statuses": "2"}', b'{"statuses": [9]}', b'{"status": [2]}'):
        response = await api.post(path, content=body)
        assert response.status_code == 400, body
        assert set(response.json()) >= {"message"}
    del api.headers["Authorization"]
    response = await api.post(path)
    assert response.status_code == 401
    assert response.json()["parameters"] == {
        "resources": "Magento_Logging::system_magento_logging_bulk_operations"
    }


def test_retry_and_cleanup_commands(seeded_url: str) -> None:
    result = bulkops_cli(seeded_url, "retry", BULK, "--status", "3", "-e", "5")
    assert (result.returncode, result.stdout) == (0, "requeued 1 operations\n")
    assert result.stderr == "1/1 operations requeued\n"
    assert asyncio.run(statuses(seeded_url)) == [DONE, RETRY, FAIL, OPEN, REJECTED]
    result = bulkops_cli(seeded_url, "retry", "no-such-bulk")
    assert result.returncode == 1 and "Bulk uuid no-such-bulk not exist" in result.stderr

    off = {"BULK_LIFETIME_DAYS": "0"}
    result = bulkops_cli(seeded_url, "cleanup", settings=off)
    assert result.stdout == (
        "BULKOPS_BULK_LIFETIME_DAYS is 0: only bulks past their own retention\n"
        "deleted 0 bulks and 0 operations\n"
    )
    result = bulkops_cli(seeded_url, "cleanup")
    assert (result.returncode, result.stdout) == (0, "deleted 1 bulks and 2 operations\n")
    # An explicit age overrides the setting; the bulk of 2030 is younger than any.
    result = bulkops_cli(seeded_url, "cleanup", "--older-than-days", "0.001", settings=off)
    assert result.stdout == "deleted 0 bulks and 0 operations\n"
    assert asyncio.run(statuses(seeded_url)) == [DONE, RETRY, FAIL, OPEN, REJECTED]


def test_cleanup_refuses_zero_days_which_would_delete_every_bulk(seeded_url: str) -> None:
    """BULKOPS_BULK_LIFETIME_DAYS=0 keeps bulks forever; the same 0 here cannot mean the
    opposite, nor keeping them: it is refused, and --all says what it would do."""
    for days in ("0", "-1"):
        result = bulkops_cli(seeded_url, "cleanup", "--older-than-days", days)
        assert (result.returncode, result.stderr) == (
            1,
            "error: --older-than-days must be more than 0; to delete every bulk, use --all\n",
        )
    result = bulkops_cli(seeded_url, "cleanup", "--all", "--older-than-days", "1")
    assert result.returncode == 1 and "not both" in result.stderr
    assert len(asyncio.run(bulk_uuids(seeded_url))) == 2


def test_cleanup_all_asks_first(seeded_url: str) -> None:
    for answer in ("", "n\n"):
        result = bulkops_cli(seeded_url, "cleanup", "--all", input=answer)
        assert result.returncode == 1
        assert result.stdout.startswith("Delete every bulk and its operations? [y/N]:")
        assert "Aborted" in result.stderr
    assert len(asyncio.run(bulk_uuids(seeded_url))) == 2
    result = bulkops_cli(seeded_url, "cleanup", "--all", input="y\n")
    assert result.returncode == 0, result.stderr
    # The bulk of 2030 too, whose start is still to come.
    assert result.stdout.endswith("deleted 2 bulks and 7 operations\n")
    assert asyncio.run(bulk_uuids(seeded_url)) == []


def test_cleanup_all_yes_does_not_ask(seeded_url: str) -> None:
    result = bulkops_cli(seeded_url, "cleanup", "--all", "--yes", "--batch-size", "1")
    assert (result.returncode, result.stdout) == (0, "deleted 2 bulks and 7 operations\n")
    # A line per batch, on stderr, when it is no terminal.
    assert result.stderr == "1/2 bulks deleted\n2/2 bulks deleted\n"
    assert asyncio.run(bulk_uuids(seeded_url)) == []


def test_retry_command_works_in_batches(database_url: str) -> None:
    async def prepare() -> None:
        database = Database(database_url)
        await upgrade(database)
        await add(database, new_bulk([RETRY, DONE, FAIL, RETRY, FAIL, RETRY, REJECTED]))
        await database.dispose()

    asyncio.run(prepare())
    result = bulkops_cli(database_url, "retry", BULK, "--batch-size", "2")
    assert (result.returncode, result.stdout) == (0, "requeued 5 operations\n")
    assert result.stderr == (
        "2/5 operations requeued\n4/5 operations requeued\n5/5 operations requeued\n"
    )
    assert asyncio.run(statuses(database_url)) == [OPEN, DONE, OPEN, OPEN, OPEN, OPEN, REJECTED]

    async def check_queued() -> None:
        database = Database(database_url)
        try:
            await check_open_ones_queued(database)
        finally:
            await database.dispose()

    asyncio.run(check_queued())
