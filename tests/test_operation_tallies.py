"""The operations' counts by bulk, topic and status (`bulkops_operation_tally`) stay exactly
the operations' while writers race (results recorded over each other, retries by search,
operations marked failed), on every backend; facets read from them answer as a
GROUP BY of the operations does, and the searches they cannot answer are scanned."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bulkops.criteria import SearchCriteria, parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.facets import facet_query, tallied, tally_query
from bulkops.store.lifecycle import (
    Result,
    delete_bulks,
    mark_incomplete_operations,
    record_results,
    retry_operations,
    retry_searched,
    start_operations,
)
from bulkops.store.queue import delete_messages_of_operations, enqueue_new_bulk
from bulkops.store.tables import bulk, operation, operation_tally, queue_message

NOW = datetime(2030, 6, 1, 12, 0, 30)
TOPICS = ("async.V1.a.POST", "async.V1.b.POST", "async.V1.c.POST")
BULKS = ("f0000000-0000-4000-8000-000000000001", "f0000000-0000-4000-8000-000000000002")
OPERATIONS = 120  # per bulk
WRITERS = 4
BATCH = 10
OUTCOMES = (
    OperationStatus.COMPLETE,
    OperationStatus.RETRIABLY_FAILED,
    OperationStatus.NOT_RETRIABLY_FAILED,
)
TIMEOUT = timedelta(hours=12)


def _bulk(uuid: str, user_type: int) -> NewBulk:
    operations = [NewOperation(key, TOPICS[key % len(TOPICS)], "{}") for key in range(OPERATIONS)]
    # The last is rejected: counted from its submission on.
    operations[-1] = NewOperation(OPERATIONS - 1, TOPICS[0], "{}", OperationStatus.REJECTED)
    return NewBulk(uuid, None, 1, user_type, NOW, operations)


async def _submit(database: Database) -> list[int]:
    async with database.write() as connection:
        for n, uuid in enumerate(BULKS):
            await insert_bulk(connection, _bulk(uuid, n + 1))
        ids = (await connection.execute(select(operation.c.id).order_by(operation.c.id))).scalars()
        return list(ids)


async def _write(database: Database, writer: int, ids: list[int], settle: bool = False) -> None:
    """Every operation's result, in batches, in an order and with outcomes of this writer's
    own: only results of operations still open count. With `settle`, the messages of the
    operations the batch made final go in the same transaction (those of operations it found
    final may belong to a retry that reopened them since)."""
    shuffled = random.Random(writer).sample(ids, len(ids))
    for start in range(0, len(shuffled), BATCH):
        results = [
            Result(operation_id, OUTCOMES[(operation_id + writer) % 3], "done", error_code=writer)
            for operation_id in shuffled[start : start + BATCH]
        ]
        async with database.write() as connection:
            made_final = await record_results(connection, results, NOW)
            if settle:
                await delete_messages_of_operations(connection, made_final)


async def _retry(database: Database) -> None:
    """Retries by search, over and over, as results come in."""
    for _ in range(8):
        await retry_searched(database, SearchCriteria(), TOPICS, NOW, batch_size=7)


async def _operations(database: Database) -> Counter[tuple[str, str, int]]:
    async with database.read() as connection:
        key = (operation.c.bulk_uuid, operation.c.topic_name, operation.c.status)
        found = await connection.execute(select(*key, func.count()).group_by(*key))
        return Counter({(uuid, topic, status): n for uuid, topic, status, n in found})


async def _ids_of(database: Database, bulk_uuid: str) -> list[int]:
    async with database.read() as connection:
        found = await connection.execute(
            select(operation.c.id).where(operation.c.bulk_uuid == bulk_uuid)
        )
        return list(found.scalars())


async def _tallies(database: Database) -> Counter[tuple[str, str, int]]:
    async with database.read() as connection:
        found = await connection.execute(select(operation_tally))
        return Counter({(row[0], row[1], row[2]): row[3] for row in found if row[3]})


async def test_counts_stay_exact_while_writers_race(database: Database) -> None:
    ids = await _submit(database)
    async with database.write() as connection:
        # A third were started long ago: the periodic job marks them failed meanwhile.
        await start_operations(connection, ids[::3], NOW - 2 * TIMEOUT)
    # Each writer as a process of its own: an engine, connections, transactions.
    writers = [Database(database.url) for _ in range(WRITERS + 2)]
    try:
        # One failing (a deadlock) cancels the others: none is left holding a transaction.
        async with asyncio.TaskGroup() as group:
            for n, writer in enumerate(writers[:WRITERS]):
                group.create_task(_write(writer, n, ids))
            group.create_task(
                mark_incomplete_operations(writers[-2], NOW, TIMEOUT, batch_size=BATCH)
            )
            group.create_task(_retry(writers[-1]))
    finally:
        for one in writers:
            await one.dispose()
    counted = await _operations(database)
    assert sum(counted.values()) == len(BULKS) * OPERATIONS
    assert await _tallies(database) == counted

    # A bulk deleted takes its counts along.
    async with database.write() as connection:
        found = await connection.execute(select(bulk.c.id).where(bulk.c.uuid == BULKS[0]))
        await delete_bulks(connection, [(found.scalar_one(), BULKS[0])])
    assert await _tallies(database) == await _operations(database)
    assert {uuid for uuid, _, _ in await _tallies(database)} == {BULKS[1]}


async def _work(database: Database, worker: int, ids: list[int]) -> None:
    """As a worker finishing operations of a bulk: results recorded and the messages of
    the operations made final settled in one transaction, operations, counts, bulks, queue."""
    for _ in range(3):  # operations reopened meanwhile are finished again
        await _write(database, worker, ids, settle=True)


async def _retry_bulk(database: Database) -> None:
    """Retries of the bulk, over and over, as its results come in."""
    for _ in range(30):
        async with database.write() as connection:
            await retry_operations(connection, BULKS[0], NOW)


async def test_retries_of_a_bulk_race_its_workers(database: Database) -> None:
    """Workers record results of a bulk's operations while the bulk is retried again and
    again: no deadlock (MariaDB's shared locks of a locking read once took one), and in the
    end each open operation has one message, a final one none, and the counts are exact."""
    await _submit(database)
    async with database.write() as connection:
        await enqueue_new_bulk(connection, BULKS[0], NOW)
    mine = await _ids_of(database, BULKS[0])
    writers = [Database(database.url) for _ in range(WRITERS + 1)]
    try:
        async with asyncio.TaskGroup() as group:
            for n, writer in enumerate(writers[:WRITERS]):
                group.create_task(_work(writer, n, mine))
            group.create_task(_retry_bulk(writers[-1]))
    finally:
        for one in writers:
            await one.dispose()
    async with database.read() as connection:
        open_ids = set(
            (
                await connection.execute(
                    select(operation.c.id).where(operation.c.status == OperationStatus.OPEN)
                )
            ).scalars()
        )
        queued = list((await connection.execute(select(queue_message.c.operation_id))).scalars())
    assert sorted(queued) == sorted(open_ids & set(mine))
    assert await _tallies(database) == await _operations(database)


def _criteria(query: str) -> SearchCriteria:
    return parse_search_criteria(parse_query_string(query))


def _filter(field: str, value: str, condition: str, group: int = 0, index: int = 0) -> str:
    prefix = f"searchCriteria[filter_groups][{group}][filters][{index}]"
    return f"{prefix}[field]={field}&{prefix}[value]={value}&{prefix}[condition_type]={condition}"


TALLIED = [
    "searchCriteria=",
    _filter("bulk_uuid", BULKS[1], "eq"),
    _filter("topic_name", TOPICS[1].upper(), "eq") + "&" + _filter("status", "2,3", "in", 1),
    _filter("user_type", "2", "eq") + "&" + _filter("user_id", "1", "eq", 1),
    _filter("status", "1", "neq") + "&" + _filter("bulk_uuid", BULKS[0], "eq", 0, 1),
    _filter("topic_name", f"{TOPICS[0]},{TOPICS[2]}", "nin"),
]
SCANNED = [
    _filter("error_code", "1", "eq"),
    _filter("topic_name", "async.V1.a%", "like"),
    _filter("status", "2", "gteq"),
    _filter("start_time", "2030-01-01", "from"),
]


@pytest.mark.parametrize(
    "facets", [("status",), ("status", "topic_name"), ("user_type", "topic_name", "status")]
)
async def test_facets_from_counts_answer_as_a_scan(
    database: Database, facets: tuple[str, ...]
) -> None:
    ids = await _submit(database)
    async with database.write() as connection:
        results = [
            Result(operation_id, OUTCOMES[operation_id % 3], "done", error_code=operation_id % 2)
            for operation_id in ids[::2]
        ]
        await record_results(connection, results, NOW)
        await retry_operations(connection, BULKS[1], NOW, [OperationStatus.NOT_RETRIABLY_FAILED])
    backend = database.backend
    async with database.read() as connection:
        for query in TALLIED:
            criteria = _criteria(query)
            assert tallied(criteria, facets), query
            scanned = (await connection.execute(facet_query(criteria, facets, backend))).all()
            counted = (await connection.execute(tally_query(criteria, facets, backend))).all()
            assert Counter({tuple(r[:-1]): int(r[-1]) for r in counted}) == Counter(
                {tuple(r[:-1]): r[-1] for r in scanned}
            ), query
        for query in SCANNED:
            assert not tallied(_criteria(query), facets), query
    assert not tallied(SearchCriteria(), ("error_code",))
