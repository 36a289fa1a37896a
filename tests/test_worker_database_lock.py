"""SQLite's write lock held by another connection: a handler that meets it (the demo customers
handler writes to the service's database) has its operation delivered again, never failed nor
counted as an attempt; and every connection waits the busy timeout before it fails, so that a
submission made while the lock is held is stored once the lock is released."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bulkops.api.app import create_app
from bulkops.handlers import HandlerRegistry, OperationInput
from bulkops.handlers.customers import customers_route
from bulkops.settings import Settings
from bulkops.status import OperationStatus
from bulkops.store.database import Database, SqliteOptions
from bulkops.store.migrate import upgrade
from bulkops.store.tables import demo_customer
from tests.backends import Backend
from tests.test_submission import customer
from tests.test_worker import add_bulk, make_worker, operations
from tests.waiting import eventually

SHORT_BUSY_TIMEOUT = 0.05
"""Seconds: the handler meets the held lock quickly."""


class WriteLock:
    """SQLite's write lock, taken and released by a connection of its own (in a thread, as
    taking it may wait for the service's writers)."""

    def __init__(self, database_url: str) -> None:
        path = make_url(database_url).database
        assert path is not None
        self.connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )

    async def take(self) -> None:
        await asyncio.to_thread(self.connection.execute, "BEGIN IMMEDIATE")

    async def release(self) -> None:
        await asyncio.to_thread(self.connection.execute, "ROLLBACK")

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def sqlite_url(backend: Backend, database_url: str) -> str:
    if backend.name != "sqlite":
        pytest.skip("SQLite's write lock; servers wait for their locks by themselves")
    return database_url


@pytest.fixture
def write_lock(sqlite_url: str) -> Iterator[WriteLock]:
    lock = WriteLock(sqlite_url)
    yield lock
    lock.close()


async def test_a_handler_meeting_the_lock_has_its_operation_delivered_again(
    sqlite_url: str, write_lock: WriteLock
) -> None:
    database = Database(sqlite_url, sqlite=SqliteOptions(busy_timeout_seconds=SHORT_BUSY_TIMEOUT))
    await upgrade(database)
    customers = customers_route(Settings(database_url=sqlite_url), database)
    handler_called, lock_taken = asyncio.Event(), asyncio.Event()
    failures: list[Exception] = []

    async def create_account(operation: OperationInput) -> Any:
        handler_called.set()
        await lock_taken.wait()
        try:
            return await customers.handler(operation)
        except Exception as error:
            failures.append(error)
            raise

    routes = HandlerRegistry()
    routes.add(dataclasses.replace(customers, handler=create_account))
    await add_bulk(
        database,
        [customer("locked@example.com")],
        topic=customers.topic_name(),
    )
    worker = make_worker(database, routes)
    await worker.start()
    try:
        await asyncio.wait_for(handler_called.wait(), 10)
        await write_lock.take()
        lock_taken.set()

        async def failed_once() -> bool:
            return bool(failures)

        await eventually(failed_once)
        assert "database is locked" in str(failures[0])
        await write_lock.release()

        async def final() -> bool:
            return (await operations(database))[0].status != OperationStatus.OPEN

        await eventually(final)
    finally:
        await worker.stop(grace_seconds=5)
    (row,) = await operations(database)
    assert (row.status, row.result_message) == (
        OperationStatus.COMPLETE,
        f"Service execution success {customers.service}",
    )
    # The delivery that met the lock does not count: only the one that completed.
    assert row.deliveries == 1
    async with database.read() as connection:
        stored = await connection.execute(select(func.count()).select_from(demo_customer))
        assert stored.scalar() == 1
    await database.dispose()


async def busy_timeout(database: Database) -> int:
    async with database.read() as connection:
        return (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()


async def test_every_connection_waits_the_busy_timeout(sqlite_url: str) -> None:
    configured = Database(sqlite_url, sqlite=SqliteOptions(busy_timeout_seconds=7.5))
    from_settings = Database.from_settings(
        Settings(database_url=sqlite_url, sqlite_busy_timeout_seconds=12)
    )
    default = Database(sqlite_url)
    try:
        assert await busy_timeout(configured) == 7500
        assert await busy_timeout(from_settings) == 12000
        assert await busy_timeout(default) == 30000
    finally:
        for database in (configured, from_settings, default):
            await database.dispose()


async def test_a_submission_waits_for_the_lock_rather_than_failing(
    sqlite_url: str, write_lock: WriteLock
) -> None:
    app = create_app(Settings(database_url=sqlite_url), run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        writing = asyncio.Event()

        def on_statement(connection: Any, *_: Any) -> None:
            # A write's first statement carries its BEGIN IMMEDIATE (`sqlite_driver`).
            if not connection.get_execution_options().get("bulkops_readonly", False):
                writing.set()

        engine = app.state.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", on_statement)
        await write_lock.take()
        submitted = asyncio.create_task(
            client.post(
                "/rest/default/async/bulk/V1/customers", json=[customer("waited@example.com")]
            )
        )
        await asyncio.wait_for(writing.wait(), 10)
        # The submission's transaction is beginning, with the lock held elsewhere.
        await write_lock.release()
        response = await submitted
        event.remove(engine, "before_cursor_execute", on_statement)
    assert response.status_code == 202, response.text
    assert response.json()["errors"] is False
