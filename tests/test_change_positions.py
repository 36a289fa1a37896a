"""The change feed's positions (`bulkops.store.changes`) on every backend: a change committed
after a later one was read is positioned past it (never behind a reader's cursor), retries and
deletions are changes, and the retention moves the head's `pruned_through` before deleting."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.changes import assign_positions, changes_after, prune_changes
from bulkops.store.database import Database
from bulkops.store.lifecycle import Result, delete_bulks, record_results, retry_operations
from bulkops.store.tables import bulk, operation

NOW = datetime(2030, 1, 1, 12, 0, 0)
TOPIC = "async.V1.things.POST"


async def _bulk_with_one_operation(database: Database, user_id: int = 1) -> tuple[str, int]:
    uuid_ = str(uuid.uuid4())
    new = NewBulk(uuid_, None, user_id, 2, NOW, [NewOperation(0, TOPIC, "[]")])
    async with database.write() as connection:
        await insert_bulk(connection, new)
        found = await connection.execute(
            select(operation.c.id).where(operation.c.bulk_uuid == uuid_)
        )
        return uuid_, found.scalar_one()


async def _read(database: Database, after: int) -> tuple[int, list[tuple[int | None, int | None]]]:
    """Position what is committed, then the changes past `after`: the head's last position
    and (operation id, status) of each."""
    async with database.write() as connection:
        head = await assign_positions(connection)
        rows = await changes_after(connection, after, 100, None)
    return head.last_position, [(row.operation_id, row.status) for row in rows]


async def test_a_change_committed_late_comes_after_those_already_read(database: Database) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite's writers run one at a time: they commit in the order they began")
    _, slow = await _bulk_with_one_operation(database)
    _, fast = await _bulk_with_one_operation(database)
    complete, failed = OperationStatus.COMPLETE, OperationStatus.NOT_RETRIABLY_FAILED
    # The slow transaction writes its change first and commits last. Different final
    # statuses: the two lock no counter in common.
    async with database.write() as slow_connection:
        await record_results(slow_connection, [Result(slow, complete, "Done")], NOW)
        async with database.write() as fast_connection:
            await record_results(fast_connection, [Result(fast, failed, "No")], NOW)
        cursor, seen = await _read(database, 0)
        assert seen == [(fast, failed)]
    later_cursor, later = await _read(database, cursor)
    assert later == [(slow, complete)]
    assert later_cursor == cursor + 1
    assert await _read(database, later_cursor) == (later_cursor, [])


async def test_retries_and_deletions_are_changes_and_the_retention_moves_the_start(
    database: Database,
) -> None:
    failed = OperationStatus.NOT_RETRIABLY_FAILED
    uuid_, operation_id = await _bulk_with_one_operation(database)
    async with database.write() as connection:
        await record_results(connection, [Result(operation_id, failed, "No")], NOW)
    async with database.write() as connection:
        assert await retry_operations(connection, uuid_, NOW) == 1
    async with database.write() as connection:
        # Nothing failed is left to retry: no change either.
        assert await retry_operations(connection, uuid_, NOW) == 0
    async with database.write() as connection:
        await record_results(connection, [Result(operation_id, failed, "No")], NOW)
    async with database.write() as connection:
        bulk_id = (
            await connection.execute(select(bulk.c.id).where(bulk.c.uuid == uuid_))
        ).scalar_one()
        await delete_bulks(connection, [(bulk_id, uuid_)])
    last, changes = await _read(database, 0)
    assert changes == [
        (operation_id, failed),
        (operation_id, OperationStatus.OPEN),
        (operation_id, failed),
        (None, None),
    ]
    assert last == 4

    # Changes before 2031 go (every one): the feed starts past them.
    assert await prune_changes(database, datetime(2031, 1, 1), batch_size=3) == 4
    async with database.write() as connection:
        head = await assign_positions(connection)
    assert (head.last_position, head.pruned_through) == (4, 4)
    assert await prune_changes(database, datetime(2031, 1, 1), batch_size=3) == 0
