"""Store behaviour that each database would otherwise do its own way: trailing spaces
compared (text byte for byte, or without regard to case where searches say so), integers
beyond a column's width, NUL characters, whole seconds, and concurrent transactions on the
queue."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bulkops.criteria import parse_search_criteria
from bulkops.status import OperationStatus
from bulkops.store import bulks, search
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database, async_url
from bulkops.store.lifecycle import Result, record_results, retry_operations
from bulkops.store.queue import enqueue_open_operations, enqueue_operations, lease_messages
from bulkops.store.tables import admin_user, operation, queue_message
from bulkops.store.users import insert_admin

NOW = datetime(2030, 6, 1, 12, 0, 0)
TOPIC = "async.V1.things.POST"


def a_bulk(uuid: str, size: int, status: OperationStatus = OperationStatus.OPEN) -> NewBulk:
    return NewBulk(
        uuid=uuid,
        description="Things ",
        user_id=1,
        user_type=2,
        start_time=NOW,
        operations=[
            NewOperation(
                key,
                TOPIC,
                f'{{"key":{key}}}',
                status,
                None if status == OperationStatus.OPEN else "failed",
                None if status == OperationStatus.OPEN else 7,
            )
            for key in range(size)
        ],
    )


async def add(database: Database, *new_bulks: NewBulk) -> None:
    async with database.write() as connection:
        for new_bulk in new_bulks:
            await insert_bulk(connection, new_bulk)
            await enqueue_open_operations(connection, new_bulk.uuid, NOW)


async def search_total(database: Database, query: str) -> int:
    """The total count of a search; its page must hold every match."""
    criteria = parse_search_criteria({"searchCriteria": _nested(query)})
    async with database.read() as connection:
        page = await search.search_page(connection, criteria, database.backend)
    assert len(page.rows) == page.total_count
    return page.total_count


def _nested(query: str) -> dict[str, object]:
    """`field=status&value=3&condition_type=eq` as one filter, with a page size of 50."""
    pairs = dict(pair.split("=", 1) for pair in query.split("&"))
    return {"filter_groups": {"0": {"filters": {"0": pairs}}}, "pageSize": "50"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///a.sqlite3", "sqlite+aiosqlite:///a.sqlite3"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("mysql://u@h/db", "mysql+aiomysql://u@h/db?charset=utf8mb4"),
        ("mariadb://u@h/db", "mariadb+aiomysql://u@h/db?charset=utf8mb4"),
        ("mysql+aiomysql://u@h/db?charset=utf8", "mysql+aiomysql://u@h/db?charset=utf8"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_urls_get_their_async_driver(url: str, expected: str) -> None:
    assert async_url(url).render_as_string(hide_password=False) == expected


async def test_text_is_compared_byte_for_byte_trailing_spaces_included(
    database: Database,
) -> None:
    await add(database, a_bulk("b-1", 1), a_bulk("b-1 ", 1), a_bulk("B-1", 1))
    for uuid in ("b-1", "b-1 ", "B-1"):
        assert await search_total(database, f"field=bulk_uuid&value={uuid}") == 1, uuid
        async with database.read() as connection:
            found = await bulks.find_bulk(connection, uuid)
        assert found is not None
        assert found["uuid"] == uuid
    # The description (compared without regard to case) has a trailing space: equal only to
    # itself in any case, and not to ''.
    assert await search_total(database, "field=description&value=Things") == 0
    assert await search_total(database, "field=description&value=tHINGS ") == 3
    like = "field=description&value=thing_&condition_type=like"
    assert await search_total(database, like) == 0
    # Unique keys tell trailing spaces apart too, and still refuse a true duplicate.
    async with database.write() as connection:
        await insert_admin(connection, "admin", "hash", NOW)
        await insert_admin(connection, "admin ", "hash", NOW)
    with pytest.raises(IntegrityError):
        async with database.write() as connection:
            await insert_admin(connection, "admin", "hash", NOW)
    async with database.read() as connection:
        names = (await connection.execute(select(admin_user.c.username))).scalars().all()
    assert sorted(names) == ["admin", "admin "]


async def test_integers_beyond_a_columns_width_match_nothing(database: Database) -> None:
    await add(database, a_bulk("b-1", 2, OperationStatus.RETRIABLY_FAILED))
    largest = 2**63 - 1
    for query, expected in (
        (f"field=status&value={largest}", 0),
        ("field=status&value=70000&condition_type=lt", 2),
        (f"field=error_code&value=7,{largest}&condition_type=in", 2),
        (f"field=user_type&value={-largest}&condition_type=gt", 2),
    ):
        assert await search_total(database, query) == expected, query
    async with database.read() as connection:
        assert await bulks.count_operations(connection, "b-1", 70000) == 0
        assert await bulks.count_operations(connection, "b-1", largest) == 0
    async with database.write() as connection:
        assert await retry_operations(connection, "b-1", NOW, error_codes=[2**64, 7]) == 2


async def test_a_bulk_uuid_with_a_nul_character_is_no_bulk(database: Database) -> None:
    await add(database, a_bulk("b-1", 1))
    async with database.write() as connection:
        assert await bulks.find_bulk(connection, "b-1\x00") is None
        assert await bulks.bulk_operations(connection, "b-1\x00") == []
        assert await bulks.count_operations(connection, "b-1\x00", 4) == 0
        assert await retry_operations(connection, "b-1\x00", NOW) is None


async def test_timestamps_keep_whole_seconds(database: Database) -> None:
    await add(database, a_bulk("b-1", 1))
    async with database.write() as connection:
        (message_id,) = (await connection.execute(select(queue_message.c.id))).scalars()
        leased = await lease_messages(connection, "me", 10, NOW, NOW + timedelta(seconds=1.999999))
        assert [row.id for row in leased] == [message_id]
        available_at = (await connection.execute(select(queue_message.c.available_at))).scalar_one()
    # Cut, as on SQLite: not kept (PostgreSQL) nor rounded up (MySQL).
    assert available_at == NOW + timedelta(seconds=1)


async def test_concurrent_leases_never_share_a_message(database: Database) -> None:
    await add(database, a_bulk("b-1", 10))
    first_leased = asyncio.Event()

    async def lease(owner: str, hold: asyncio.Event | None) -> set[int]:
        async with database.write() as connection:
            leased = await lease_messages(connection, owner, 6, NOW, NOW + timedelta(minutes=5))
            if hold is not None:
                first_leased.set()
                await hold.wait()
            return {row.id for row in leased}

    release = asyncio.Event()
    first = asyncio.create_task(lease("first", release))
    await first_leased.wait()
    second = asyncio.create_task(lease("second", None))
    if database.backend != "sqlite":
        # With the first transaction still open, the second one skips the rows it locked
        # rather than waiting for them (SQLite has one writer: there the second one waits).
        await asyncio.wait_for(asyncio.shield(second), timeout=60)
    release.set()
    first_ids, second_ids = await first, await second
    assert len(first_ids) == 6
    assert len(second_ids) == 4
    assert not first_ids & second_ids


async def test_concurrent_relays_give_an_operation_one_message(database: Database) -> None:
    async with database.write() as connection:
        await insert_bulk(connection, a_bulk("b-1", 5))  # no messages yet
    async with database.read() as connection:
        ids = list((await connection.execute(select(operation.c.id))).scalars())
    first_inserted = asyncio.Event()
    release = asyncio.Event()

    async def relay(hold: bool) -> int:
        async with database.write() as connection:
            inserted = await enqueue_operations(connection, ids, NOW)
            if hold:
                first_inserted.set()
                await release.wait()
            return inserted

    first = asyncio.create_task(relay(True))
    await first_inserted.wait()
    # Checks for missing messages before the first commits, then finds the unique key taken.
    second = asyncio.create_task(relay(False))
    await asyncio.sleep(0.2)
    release.set()
    assert sorted([await first, await second]) == [0, 5]
    async with database.read() as connection:
        count = (
            await connection.execute(select(func.count()).select_from(queue_message))
        ).scalar_one()
    assert count == 5


async def test_results_recorded_twice_at_once_are_written_once(database: Database) -> None:
    await add(database, a_bulk("b-1", 6))
    async with database.read() as connection:
        ids = list((await connection.execute(select(operation.c.id))).scalars())
    # The same operations, in opposite orders and with completed and failed ones mixed:
    # both transactions lock them in id order, so neither deadlocks the other.
    statuses = (OperationStatus.RETRIABLY_FAILED, OperationStatus.COMPLETE)
    outcomes = [Result(op_id, statuses[n % 2], "x") for n, op_id in enumerate(sorted(ids))]

    async def record(results: list[Result], message: str) -> None:
        async with database.write() as connection:
            await record_results(
                connection,
                [Result(r.operation_id, r.status, message) for r in results],
                NOW,
            )

    await asyncio.gather(record(outcomes, "first"), record(outcomes[::-1], "second"))
    async with database.read() as connection:
        rows = (
            await connection.execute(
                select(operation.c.result_message, operation.c.serialized_data).order_by(
                    operation.c.id
                )
            )
        ).all()
    assert len({message for message, _ in rows}) == 1  # one transaction won every row
    assert [data is None for _, data in rows] == [n % 2 == 1 for n in range(6)]
