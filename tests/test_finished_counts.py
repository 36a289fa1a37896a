"""The counters of finished operations (`bulkops_finished_minute`) stay exact while several
writers record overlapping results and the periodic job marks operations failed, all at once
in the same minute, on every backend; they are read back by minute and by topic, and pruned."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bulkops.status import OperationStatus
from bulkops.store import finished
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import (
    Result,
    mark_incomplete_operations,
    record_results,
    start_operations,
)
from bulkops.store.tables import finished_minute, operation

NOW = datetime(2030, 6, 1, 12, 0, 30)
TOPICS = ("async.V1.a.POST", "async.V1.b.POST", "async.V1.c.POST")
OPERATIONS = 240
WRITERS = 4
BATCH = 10
OUTCOMES = (
    OperationStatus.COMPLETE,
    OperationStatus.RETRIABLY_FAILED,
    OperationStatus.NOT_RETRIABLY_FAILED,
)
TIMEOUT = timedelta(hours=12)


def _bulk() -> NewBulk:
    operations = [NewOperation(key, TOPICS[key % len(TOPICS)], "{}") for key in range(OPERATIONS)]
    return NewBulk("f0000000-0000-4000-8000-000000000001", None, 1, 2, NOW, operations)


async def _write(database: Database, writer: int, ids: list[int]) -> None:
    """Every operation's result, in batches, in an order and with outcomes of this writer's
    own: each operation is recorded by every writer, and only the first one counts."""
    shuffled = random.Random(writer).sample(ids, len(ids))
    for start in range(0, len(shuffled), BATCH):
        results = [
            Result(operation_id, OUTCOMES[(operation_id + writer) % 3], "done")
            for operation_id in shuffled[start : start + BATCH]
        ]
        async with database.write() as connection:
            await record_results(connection, results, NOW + timedelta(seconds=writer))


async def _final_counts(database: Database) -> Counter[tuple[str, int]]:
    async with database.read() as connection:
        found = await connection.execute(
            select(operation.c.topic_name, operation.c.status, func.count())
            .where(operation.c.status != OperationStatus.OPEN)
            .group_by(operation.c.topic_name, operation.c.status)
        )
        return Counter({(topic, status): count for topic, status, count in found})


async def _counters(database: Database) -> Counter[tuple[str, int]]:
    async with database.read() as connection:
        found = await connection.execute(
            select(
                finished_minute.c.topic_name, finished_minute.c.status, finished_minute.c.finished
            )
        )
        counted: Counter[tuple[str, int]] = Counter()
        for topic, status, count in found:
            counted[(topic, status)] += count
        return counted


async def test_counters_stay_exact_while_writers_race(database: Database) -> None:
    async with database.write() as connection:
        await insert_bulk(connection, _bulk())
        ids = list(
            (await connection.execute(select(operation.c.id).order_by(operation.c.id))).scalars()
        )
        # A third were started long ago: the periodic job marks them failed meanwhile.
        await start_operations(connection, ids[::3], NOW - 2 * TIMEOUT)
    # Each writer as a process of its own: an engine, connections, transactions.
    writers = [Database(database.url) for _ in range(WRITERS)]
    marker = Database(database.url)
    try:
        # One failing (a deadlock) cancels the others: none is left holding a transaction.
        async with asyncio.TaskGroup() as group:
            for n, writer in enumerate(writers):
                group.create_task(_write(writer, n, ids))
            group.create_task(mark_incomplete_operations(marker, NOW, TIMEOUT, batch_size=BATCH))
    finally:
        for one in [*writers, marker]:
            await one.dispose()
    final = await _final_counts(database)
    assert sum(final.values()) == OPERATIONS
    assert await _counters(database) == final

    async with database.read() as connection:
        minutes = await finished.per_minute(connection, NOW - timedelta(hours=1))
        topics = await finished.by_topic(connection, NOW - timedelta(hours=1), limit=10)
    failed = sum(n for (_, status), n in final.items() if status != OperationStatus.COMPLETE)
    assert [(m.minute, m.finished, m.failed) for m in minutes] == [
        (finished.minute_of(NOW), OPERATIONS, failed)
    ]
    by_topic = {
        topic: (
            sum(n for (name, _), n in final.items() if name == topic),
            sum(n for (name, s), n in final.items() if name == topic and s != 1),
        )
        for topic in TOPICS
    }
    assert {t.topic_name: (t.finished, t.failed) for t in topics} == by_topic
    # Most failures first.
    assert [t.failed for t in topics] == sorted((t.failed for t in topics), reverse=True)


async def test_results_recorded_again_count_nothing_and_old_counters_go(
    database: Database,
) -> None:
    async with database.write() as connection:
        await insert_bulk(connection, _bulk())
        ids = list(
            (await connection.execute(select(operation.c.id).order_by(operation.c.id))).scalars()
        )[:3]
    results = [Result(ids[0], OperationStatus.COMPLETE, ""), Result(ids[1], OUTCOMES[2], "no")]
    later = NOW + finished.KEPT
    for now in (NOW, NOW, later):
        async with database.write() as connection:
            await record_results(connection, [*results, Result(ids[0], OUTCOMES[1], "")], now)
    async with database.write() as connection:
        await record_results(connection, [Result(ids[2], OUTCOMES[0], "")], later)
    async with database.read() as connection:
        minutes = await finished.per_minute(connection, finished.minute_of(NOW))
    assert [(m.minute, m.finished, m.failed) for m in minutes] == [
        (finished.minute_of(NOW), 2, 1),
        (finished.minute_of(later), 1, 0),
    ]
    async with database.write() as connection:
        assert (
            await finished.prune(connection, later + timedelta(minutes=1)) == 2
        )  # both topics' rows of NOW
    async with database.read() as connection:
        minutes = await finished.per_minute(connection, finished.minute_of(NOW))
    assert [m.minute for m in minutes] == [finished.minute_of(later)]
