"""Operations counted by bulk, topic and status (`bulkops_operation_tally`), for facets: a
search of many operations is counted from a row per bulk, topic and status instead of a row
per operation.

Every transaction that adds operations, changes their statuses or deletes them changes the
counts in the same transaction (submissions, results recorded, retries, operations open too
long marked failed, bulks deleted), so they are always exactly the operations committed. A
bulk's rows are all written with it, one per topic and status (0 for most), so that a change
is an UPDATE of rows that exist, adding to them in the database itself: no insert races
another (on MariaDB and MySQL, inserts into an index's gap deadlock each other), and the rows
are updated in key order, after the operations' rows are locked and before their bulks' are:
the order every writer locks in (operations, counters, bulks, queue messages)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, insert, update
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.tables import operation_tally

Key = tuple[str, str, int]
"""(bulk uuid, topic, status)."""

STATUSES = tuple(int(status) for status in OperationStatus)

RECOUNT = (
    "INSERT INTO bulkops_operation_tally (bulk_uuid, topic_name, status, operations)"
    " SELECT pairs.bulk_uuid, pairs.topic_name, statuses.status,"
    " coalesce(counted.operations, 0)"
    " FROM (SELECT DISTINCT bulk_uuid, topic_name FROM bulkops_operation) pairs"
    " CROSS JOIN ("
    + " UNION ALL ".join(f"SELECT {status} AS status" for status in STATUSES)
    + ") statuses"
    " LEFT JOIN (SELECT bulk_uuid, topic_name, status, count(*) AS operations"
    "  FROM bulkops_operation GROUP BY bulk_uuid, topic_name, status) counted"
    " ON counted.bulk_uuid = pairs.bulk_uuid AND counted.topic_name = pairs.topic_name"
    " AND counted.status = statuses.status"
)
"""Every bulk's rows counted from its operations, into an empty table (SQL of every backend:
the migration and the benchmarks' data, written in the tables directly, use it). The counts
are grouped in one pass over the operations and joined to the rows: counted row by row (a
subquery per bulk, topic and status), MariaDB read each bulk's operations again for every
status, through the index on the bulk alone, and took more than ten minutes for 1,000,000."""


async def count_new_bulk(
    connection: AsyncConnection, uuid: str, operations: Iterable[tuple[str, int]]
) -> None:
    """The rows of a bulk being submitted, with its operations given as (topic, status), in
    the caller's transaction."""
    counts = Counter(operations)
    rows = [
        {
            "bulk_uuid": uuid,
            "topic_name": topic,
            "status": status,
            "operations": counts[topic, status],
        }
        for topic in sorted({topic for topic, _ in counts})
        for status in STATUSES
    ]
    if not rows:
        return
    if connection.dialect.name == "mysql":
        # The key's topic is caseless there, as the operations' is: topics differing only in
        # case share a row, as they share a group when the operations are counted.
        merged = mysql.insert(operation_tally)
        statement: Any = merged.on_duplicate_key_update(
            operations=operation_tally.c.operations + merged.inserted.operations
        )
    else:
        statement = insert(operation_tally)
    await connection.execute(statement, rows)


_KEY = and_(
    operation_tally.c.bulk_uuid == bindparam("key_bulk"),
    operation_tally.c.topic_name == bindparam("key_topic"),
    operation_tally.c.status == bindparam("key_status"),
)


async def tally(
    connection: AsyncConnection, added: Iterable[Key] = (), removed: Iterable[Key] = ()
) -> None:
    """Count operations `added` with their key and no longer `removed` ones (an operation
    changing status is removed with its old key, added with its new one), in the caller's
    transaction."""
    changes = Counter(added)
    changes.subtract(removed)
    rows = [
        {"key_bulk": uuid, "key_topic": topic, "key_status": status, "change": n}
        for (uuid, topic, status), n in sorted(changes.items())
        if n
    ]
    if rows:
        await connection.execute(
            update(operation_tally)
            .where(_KEY)
            .values(operations=operation_tally.c.operations + bindparam("change")),
            rows,
        )
