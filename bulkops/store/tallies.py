"""Operations counted by bulk, topic and status (`bulkops_operation_tally`), for facets: a
search of many operations is counted from a row per bulk, topic and status instead of a row
per operation.

Every transaction that adds operations, changes their statuses or deletes them changes the
counts in the same transaction (submissions, results recorded, retries, operations open too
long marked failed, bulks deleted), so they are always exactly the operations committed. Each
change is one upsert adding to the counts in the database itself, its rows in key order, after
the operations' rows are locked and before their bulks' are: the order every writer locks in
(operations, counters, bulks, queue messages). A count that falls to 0 keeps its row until its
bulk goes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.tables import operation_tally
from bulkops.store.upserts import adding

Key = tuple[str, str, int]
"""(bulk uuid, topic, status)."""


async def tally(
    connection: AsyncConnection, added: Iterable[Key] = (), removed: Iterable[Key] = ()
) -> None:
    """Count operations `added` with their key and no longer `removed` ones, in the caller's
    transaction (an operation changing status is removed with its old key, added with its new
    one)."""
    changes = Counter(added)
    changes.subtract(removed)
    rows = [
        {"bulk_uuid": uuid, "topic_name": topic, "status": status, "operations": n}
        for (uuid, topic, status), n in sorted(changes.items())
        if n
    ]
    if rows:
        await connection.execute(
            adding(operation_tally, "operations", connection.dialect.name, rows)
        )
