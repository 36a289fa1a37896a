"""The worker in process, on a SQLite store: outcomes by Magento's rules, idempotent results,
leases, concurrency, graceful stop, and the relay."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bulkops.api.app import create_app
from bulkops.handlers import HandlerRegistry, NotRetriableError, OperationInput, RetriableError
from bulkops.queue import DbTransport, Delivery
from bulkops.services.payloads import Payloads
from bulkops.services.submission import serialized_data
from bulkops.settings import Settings
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now
from bulkops.store.queue import enqueue_open_operations
from bulkops.store.tables import operation, queue_message
from bulkops.worker import Executor, Maintenance, Worker
from tests.waiting import eventually

SERVICE = "Tests\\Api\\ThingsInterface::save"
HOURS_12 = timedelta(hours=12)
BULK_UUID = "b0000000-0000-4000-8000-000000000001"


def registry_with(
    handler: Callable[[OperationInput], Any], max_attempts: int = 1
) -> HandlerRegistry:
    routes = HandlerRegistry()
    routes.route("POST", "/V1/things", service=SERVICE, max_attempts=max_attempts)(handler)
    return routes


TOPIC = registry_with(lambda _: None).routes()[0].topic_name()


async def add_bulk(
    database: Database,
    items: list[Any],
    *,
    uuid: str = BULK_UUID,
    topic: str = TOPIC,
    status: OperationStatus = OperationStatus.OPEN,
    enqueue: bool = True,
    start_time: datetime | None = None,
) -> str:
    new_bulk = NewBulk(
        uuid=uuid,
        description=f"Topic {topic}",
        user_id=7,
        user_type=2,
        start_time=start_time or utc_now(),
        operations=[
            NewOperation(key, topic, serialized_data(item), status)
            for key, item in enumerate(items)
        ],
    )
    async with database.write() as connection:
        await insert_bulk(connection, new_bulk)
        if enqueue:
            await enqueue_open_operations(connection, uuid, utc_now())
    return uuid


def make_worker(
    database: Database,
    routes: HandlerRegistry,
    *,
    concurrency: int = 4,
    batch_size: int = 10,
    lease_seconds: float = 30,
    backoff: float = 0,
    max_deliveries: int = 5,
    maintenance: Callable[[DbTransport], Maintenance] | None = None,
) -> Worker:
    transport = DbTransport(database, lease_seconds=lease_seconds)
    return Worker(
        database,
        transport,
        Executor(routes, backoff, Payloads.from_settings(Settings())),
        concurrency=concurrency,
        batch_size=batch_size,
        poll_seconds=0.01,
        lease_seconds=lease_seconds,
        max_deliveries=max_deliveries,
        maintenance=maintenance(transport) if maintenance else None,
    )


async def lease(database: Database, transport: DbTransport, limit: int) -> list[Delivery]:
    async with database.write() as connection:
        return list(await transport.receive(connection, limit))


async def operations(database: Database) -> list[Any]:
    async with database.read() as connection:
        return (await connection.execute(select(operation).order_by(operation.c.id))).all()


async def message_count(database: Database) -> int:
    async with database.read() as connection:
        return (await connection.execute(select(func.count()).select_from(queue_message))).scalar()


async def process_all(worker: Worker, database: Database) -> list[Any]:
    """Run the worker until no operation is open and no message is left."""

    async def finished() -> bool:
        rows = await operations(database)
        return all(row.status != OperationStatus.OPEN for row in rows) and not (
            await message_count(database)
        )

    await worker.start()
    try:
        await eventually(finished)
    finally:
        await worker.stop(grace_seconds=5)
    return await operations(database)


async def test_success_is_recorded_as_magento_does(database: Database) -> None:
    seen: list[OperationInput] = []

    async def save(operation: OperationInput) -> dict[str, Any]:
        seen.append(operation)
        return {"sku": operation.payload["sku"], "url": "a/b"}

    async def nothing(_: OperationInput) -> None:
        return None

    await add_bulk(database, [{"sku": "one"}])
    routes = registry_with(save)
    routes.route("PUT", "/V1/nothing", service="Tests\\Api\\NothingInterface::run")(nothing)
    await add_bulk(
        database,
        [{}],
        uuid="b0000000-0000-4000-8000-000000000002",
        topic=routes.routes()[1].topic_name("route"),
    )
    before = utc_now()
    saved, returned_none = await process_all(make_worker(database, routes), database)

    assert seen[0].payload == {"sku": "one"} and seen[0].operation_id == saved.id
    assert (seen[0].user_type, seen[0].user_id, seen[0].operation_key) == (2, 7, 0)
    assert saved.status == OperationStatus.COMPLETE
    assert saved.result_message == f"Service execution success {SERVICE}"
    assert saved.result_serialized_data == '{"sku":"one","url":"a\\/b"}'
    assert saved.serialized_data is None and saved.error_code is None
    assert saved.started_at >= before and saved.updated_at >= saved.started_at
    # Found by its route-style topic too; no result is stored as NULL.
    assert returned_none.status == OperationStatus.COMPLETE
    assert returned_none.result_serialized_data is None


REPORTED = "Internal Error. Details are available in Magento log file. Report ID: "


async def test_failures_become_statuses_2_and_3_with_rendered_messages(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls: dict[str, int] = {}

    async def save(operation: OperationInput) -> None:
        kind = operation.payload["kind"]
        calls[kind] = calls.get(kind, 0) + 1
        if kind == "retriable":
            raise RetriableError("Lock wait on %table", 1205, {"table": "stock"})
        if kind == "not-retriable":
            raise NotRetriableError('Product "%sku" is invalid', 42, {"sku": "x-1"})
        if kind == "foreign":
            raise KeyError("price")
        raise RuntimeError()

    kinds = ["retriable", "not-retriable", "foreign", "silent"]
    await add_bulk(database, [{"kind": kind} for kind in kinds])
    with caplog.at_level(logging.ERROR, logger="bulkops.worker"):
        rows = await process_all(make_worker(database, registry_with(save, 3)), database)

    by_kind = dict(zip(kinds, rows, strict=True))
    # Delivered max_attempts times, then final.
    assert calls["retriable"] == 3 and calls["not-retriable"] == 1
    assert [(row.status, row.result_message, row.error_code) for row in rows[:2]] == [
        (2, "Lock wait on stock", 1205),
        (3, 'Product "x-1" is invalid', 42),
    ]
    # An unexpected exception's text stays in the log, under the report id the operation shows.
    for row in rows[2:]:
        assert (row.status, row.error_code) == (3, 0)
        assert row.result_message.startswith(REPORTED)
        assert row.result_message.removeprefix(REPORTED) in caplog.text
    assert "price" not in by_kind["foreign"].result_message
    # Failed operations keep their payload, for a retry.
    assert all(row.serialized_data is not None for row in rows)
    assert by_kind["foreign"].result_serialized_data is None
    assert "Traceback" in caplog.text and "KeyError: 'price'" in caplog.text


async def test_unknown_topic_and_unreadable_payload_fail_without_a_handler(
    database: Database,
) -> None:
    async def save(_: OperationInput) -> None:
        raise AssertionError("not called")

    await add_bulk(database, [{}], topic="async.v1.unknown.post")
    async with database.write() as connection:
        await insert_bulk(
            connection,
            NewBulk(
                "b0000000-0000-4000-8000-000000000002",
                None,
                None,
                None,
                utc_now(),
                [NewOperation(0, TOPIC, "not json")],
            ),
        )
        await enqueue_open_operations(connection, "b0000000-0000-4000-8000-000000000002", utc_now())
    unknown, unreadable = await process_all(make_worker(database, registry_with(save)), database)
    assert (unknown.status, unknown.error_code) == (3, 0)
    assert unknown.result_message == 'No handler is configured for topic "async.v1.unknown.post".'
    assert unreadable.status == 3
    assert unreadable.result_message.startswith("The operation's data cannot be read")


async def test_retry_backs_off_exponentially_and_keeps_the_operation_open(
    database: Database,
) -> None:
    async def save(_: OperationInput) -> None:
        raise RetriableError("busy")

    await add_bulk(database, [{}])
    worker = make_worker(database, registry_with(save, max_attempts=5), backoff=100)
    for attempt in (1, 2):
        # Make the message due now, and let the worker take it once.
        async with database.write() as connection:
            await connection.execute(queue_message.update().values(available_at=utc_now()))
        started = utc_now()
        await worker.start()

        async def requeued(attempt: int = attempt) -> bool:
            async with database.read() as connection:
                row = (await connection.execute(select(queue_message))).one()
            return row.attempts == attempt and row.lease_owner is None

        await eventually(requeued)
        await worker.stop()
        worker = make_worker(database, registry_with(save, max_attempts=5), backoff=100)
        async with database.read() as connection:
            message = (await connection.execute(select(queue_message))).one()
        delay = (message.available_at - started).total_seconds()
        assert 100 * 2 ** (attempt - 1) <= delay <= 100 * 2 ** (attempt - 1) + 2
        (row,) = await operations(database)
        assert row.status == OperationStatus.OPEN and row.result_message is None


async def test_a_handler_meeting_the_database_unavailable_is_no_attempt(
    database: Database, tmp_path: Path
) -> None:
    # A database the handler cannot open: the driver's own "unable to open database file"
    # (a directory where the file should be, once the database was made).
    gone = tmp_path / "gone.sqlite3"
    unreachable = Database(f"sqlite+aiosqlite:///{gone}")
    gone.mkdir()
    calls: list[str] = []

    async def save(_: OperationInput) -> str:
        calls.append("call")
        if len(calls) == 1:
            async with unreachable.read() as connection:
                await connection.exec_driver_sql("SELECT 1")
        if len(calls) == 2:
            raise RetriableError("busy")
        return "saved"

    await add_bulk(database, [{}])
    # Two attempts: the delivery that met the unavailable database is not one of them.
    rows = await process_all(make_worker(database, registry_with(save, max_attempts=2)), database)
    await unreachable.dispose()
    assert len(calls) == 3
    assert [(row.status, row.result_serialized_data, row.deliveries) for row in rows] == [
        (OperationStatus.COMPLETE, '"saved"', 1)
    ]


async def test_an_operation_whose_deliveries_end_without_an_outcome_is_abandoned(
    database: Database,
) -> None:
    calls: list[int] = []

    async def save(operation: OperationInput) -> None:
        calls.append(operation.operation_id)

    await add_bulk(database, [{}, {}], topic=TOPIC)
    # The first operation's earlier deliveries all ended with their worker.
    async with database.write() as connection:
        await connection.execute(
            operation.update().where(operation.c.operation_key == 0).values(deliveries=3)
        )
    worker = make_worker(database, registry_with(save), max_deliveries=3)
    first, second = await process_all(worker, database)
    assert (first.status, first.result_message, first.error_code) == (
        OperationStatus.RETRIABLY_FAILED,
        "The operation was abandoned after 3 deliveries.",
        0,
    )
    assert first.serialized_data is not None and calls == [second.id]
    assert second.status == OperationStatus.COMPLETE


async def test_a_final_operation_is_never_processed_again(database: Database) -> None:
    calls: list[int] = []

    async def save(operation: OperationInput) -> str:
        calls.append(operation.operation_id)
        return "ok"

    await add_bulk(database, [{"n": 1}, {"n": 2}])
    # A duplicate message for an operation that is already final.
    async with database.write() as connection:
        await connection.execute(
            operation.update()
            .where(operation.c.operation_key == 1)
            .values(status=OperationStatus.NOT_RETRIABLY_FAILED, result_message="done before")
        )
    first, second = await process_all(make_worker(database, registry_with(save)), database)
    assert calls == [first.id]
    assert (second.status, second.result_message) == (3, "done before")
    assert second.started_at is None


async def test_a_delivery_of_an_operation_in_hand_does_not_run_its_handler_again(
    database: Database,
) -> None:
    """Its lease ran out while the handler ran (as a broker's restart redelivers an
    unacknowledged message): the same worker receives the operation again meanwhile."""
    clock = [datetime(2030, 1, 1)]
    started, finish = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def save(operation: OperationInput) -> str:
        calls.append(operation.operation_id)
        started.set()
        await finish.wait()
        return "ok"

    await add_bulk(database, [{}])
    worker = Worker(
        database,
        DbTransport(database, lease_seconds=30, clock=lambda: clock[0]),
        Executor(registry_with(save), 0, Payloads.from_settings(Settings())),
        concurrency=4,
        batch_size=10,
        poll_seconds=0.01,
        lease_seconds=30,
        max_deliveries=1,
        clock=lambda: clock[0],
    )

    async def delivered_twice() -> bool:
        async with database.read() as connection:
            return (await connection.execute(select(queue_message.c.attempts))).scalar() == 2

    await worker.start()
    try:
        await started.wait()
        clock[0] += timedelta(seconds=31)
        await eventually(delivered_twice)
        finish.set()
        await eventually(lambda: _settled(database))
    finally:
        await worker.stop(grace_seconds=5)
    (row,) = await operations(database)
    # Not abandoned either, though its deliveries exceed max_deliveries.
    assert (row.status, calls) == (OperationStatus.COMPLETE, [row.id])


async def _settled(database: Database) -> bool:
    rows = await operations(database)
    return rows[0].status != OperationStatus.OPEN and not await message_count(database)


async def test_handlers_run_at_most_concurrency_at_once(database: Database) -> None:
    running, peak = 0, 0

    async def save(_: OperationInput) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await add_bulk(database, [{}] * 40)
    rows = await process_all(make_worker(database, registry_with(save), concurrency=3), database)
    assert peak == 3
    assert {row.status for row in rows} == {OperationStatus.COMPLETE}


async def test_a_lease_keeps_a_message_from_other_workers_until_it_runs_out(
    database: Database,
) -> None:
    await add_bulk(database, [{}])
    now = datetime(2030, 1, 1)
    clock = [now]
    first = DbTransport(database, lease_seconds=60, owner="first", clock=lambda: clock[0])
    second = DbTransport(database, lease_seconds=60, owner="second", clock=lambda: clock[0])

    taken = await lease(database, first, 10)
    assert [delivery.attempts for delivery in taken] == [1]
    assert await lease(database, second, 10) == []

    clock[0] = now + timedelta(seconds=59)
    assert await first.extend(taken) == 1  # renewed to 59 + 60 s
    clock[0] = now + timedelta(seconds=100)
    assert await lease(database, second, 10) == []
    clock[0] = now + timedelta(seconds=120)
    (again,) = await lease(database, second, 10)
    assert (again.operation_id, again.attempts) == (taken[0].operation_id, 2)
    # The first worker lost the lease: it cannot renew or release it any more.
    assert await first.extend(taken) == 0
    await first.release(taken)
    assert await lease(database, first, 10) == []


async def test_renewed_leases_outlive_a_slow_handler(database: Database) -> None:
    calls = 0

    async def save(_: OperationInput) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(2.5)

    await add_bulk(database, [{}])
    worker = make_worker(database, registry_with(save), lease_seconds=2)
    other = DbTransport(database, lease_seconds=2)
    await worker.start()
    try:
        for _ in range(12):
            await asyncio.sleep(0.2)
            assert await lease(database, other, 1) == []
    finally:
        await worker.stop()
    (row,) = await operations(database)
    assert calls == 1 and row.status == OperationStatus.COMPLETE


async def test_graceful_stop_finishes_in_flight_items_and_gives_back_the_rest(
    database: Database,
) -> None:
    started = asyncio.Event()

    async def save(_: OperationInput) -> None:
        started.set()
        await asyncio.sleep(0.3)

    await add_bulk(database, [{}] * 10)
    worker = make_worker(database, registry_with(save), concurrency=2, batch_size=10)
    await worker.start()
    await started.wait()
    await worker.stop(grace_seconds=5)

    rows = await operations(database)
    assert [row.status for row in rows].count(OperationStatus.COMPLETE) == 2
    async with database.read() as connection:
        messages = (await connection.execute(select(queue_message))).all()
    # The eight never started are available again, their delivery not counted.
    assert len(messages) == 8
    assert all(m.lease_owner is None and m.attempts == 0 for m in messages)
    assert all(m.available_at <= utc_now() for m in messages)


async def test_stop_cancels_handlers_past_the_grace_period(database: Database) -> None:
    started = asyncio.Event()

    async def save(_: OperationInput) -> None:
        started.set()
        await asyncio.sleep(60)

    await add_bulk(database, [{}])
    worker = make_worker(database, registry_with(save))
    await worker.start()
    await started.wait()
    began = time.monotonic()
    await worker.stop(grace_seconds=0.2)
    assert time.monotonic() - began < 5
    (row,) = await operations(database)
    assert row.status == OperationStatus.OPEN
    async with database.read() as connection:
        message = (await connection.execute(select(queue_message))).one()
    assert message.lease_owner is None and message.available_at <= utc_now()


async def test_relay_publishes_operations_committed_without_messages(database: Database) -> None:
    """As after a crash between the commit and the publish: the bulk is committed, its open
    operations have no message. The worker's relay gives each one, and they are processed."""
    await add_bulk(database, [{"n": n} for n in range(5)], enqueue=False)
    await add_bulk(
        database,
        [{"n": 9}],
        uuid="b0000000-0000-4000-8000-000000000002",
        status=OperationStatus.COMPLETE,
        enqueue=False,
    )
    assert await message_count(database) == 0

    transport = DbTransport(database, lease_seconds=30)
    assert await transport.relay() == 5
    assert await transport.relay() == 0  # each operation gets one message only
    async with database.write() as connection:
        await connection.execute(queue_message.delete())

    async def save(operation: OperationInput) -> int:
        return operation.payload["n"]

    worker = make_worker(
        database,
        registry_with(save),
        maintenance=lambda transport: Maintenance(database, transport, 3600, HOURS_12, None),
    )
    rows = await process_all(worker, database)
    assert [row.result_serialized_data for row in rows[:5]] == ["0", "1", "2", "3", "4"]
    assert {row.status for row in rows} == {OperationStatus.COMPLETE}


async def test_a_late_result_does_not_overwrite_a_final_status(database: Database) -> None:
    """The operation became final while its handler ran (marked as open too long): the
    handler's result is dropped, and so is the message."""
    release = asyncio.Event()

    async def save(_: OperationInput) -> str:
        await release.wait()
        return "late"

    await add_bulk(database, [{}])
    worker = make_worker(database, registry_with(save))
    await worker.start()

    async def started() -> bool:
        return (await operations(database))[0].started_at is not None

    await eventually(started)
    async with database.write() as connection:
        await connection.execute(
            operation.update().values(status=OperationStatus.RETRIABLY_FAILED, result_message="x")
        )
    release.set()
    await eventually(lambda: _no_messages(database))
    await worker.stop()
    (row,) = await operations(database)
    assert (row.status, row.result_message, row.result_serialized_data) == (2, "x", None)


async def _no_messages(database: Database) -> bool:
    return await message_count(database) == 0


async def test_the_worker_marks_operations_open_too_long_and_deletes_old_bulks(
    database: Database,
) -> None:
    release = asyncio.Event()

    async def save(_: OperationInput) -> str:
        await release.wait()
        return "late"

    await add_bulk(database, [{}])
    old = "b0000000-0000-4000-8000-000000000002"
    await add_bulk(database, [{}], uuid=old, start_time=utc_now() - timedelta(days=61))
    # The jobs' clock is 13 hours ahead: the operation being handled has been open too long.
    worker = make_worker(
        database,
        registry_with(save),
        maintenance=lambda transport: Maintenance(
            database,
            transport,
            0.05,
            HOURS_12,
            timedelta(days=60),
            clock=lambda: utc_now() + timedelta(hours=13),
        ),
    )
    await worker.start()

    async def marked() -> bool:
        found = await operations(database)
        return len(found) == 1 and found[0].status == OperationStatus.RETRIABLY_FAILED

    await eventually(marked)
    release.set()
    await worker.stop()
    (row,) = await operations(database)
    assert (row.bulk_uuid, row.result_message, row.error_code) == (BULK_UUID, "Unknown Error", 0)
    assert await message_count(database) == 0


async def test_the_app_processes_operations_unless_told_not_to(
    database: Database, database_url: str
) -> None:
    await add_bulk(database, [{}], topic="async.v1.nothing.post")
    settings = Settings(
        database_url=database_url,
        admin_username="admin",
        admin_password="Admin123-test",
        demo_customers=False,
        worker_poll_seconds=0.01,
    )
    serving_only = create_app(settings, run_worker=False)
    async with serving_only.router.lifespan_context(serving_only):
        await asyncio.sleep(0.3)
    assert (await operations(database))[0].status == OperationStatus.OPEN

    app = create_app(settings)
    async with app.router.lifespan_context(app):

        async def processed() -> bool:
            return (await operations(database))[0].status != OperationStatus.OPEN

        await eventually(processed)
    (row,) = await operations(database)
    assert row.result_message == 'No handler is configured for topic "async.v1.nothing.post".'
