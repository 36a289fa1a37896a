"""The change feed: every change of an operation's status, and every bulk deleted, in the
order a reader can never miss one.

A position taken inside the transaction of a change (an autoincrement, a sequence) becomes
visible in commit order, not in the order it was taken: a reader past position 7 would never
see a 6 committed after it. So changes are written without a position, in the transaction
that makes them, and get one later: `assign_positions` locks the feed's head row (one such
transaction at a time, on every backend), gives the next positions to the rows committed and
still without one, and commits. A row committed after that gets a larger position from the
next such transaction; a reader past a position has seen every smaller one, and will see each
later one once.

Which changes: an operation made final (a result recorded, or marked failed open too long),
reopened by a retry (status 4 again), and a bulk deleted (by its route or past its
retention). Not the acceptance of a bulk (its operations open, status 4; rejected ones, 5):
the 202 answer tells its submitter.

Writers insert their rows last, after the operations, counters and bulks they lock: an insert
into this table takes no lock any other transaction holds, so it adds no lock cycle. Only the
positioning transaction locks the head row, and it locks nothing else a writer holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    SmallInteger,
    bindparam,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.database import Database
from bulkops.store.tables import bulk, change_head, operation, operation_change
from bulkops.store.types import in_int64

HEAD_ID = 1
POSITIONED_AT_ONCE = 5000
"""Rows positioned by one transaction: a backlog is worked off over several reads."""
IN_LIST = 1000
"""Operation ids per statement: well below every backend's limit of bound parameters."""

Owner = tuple[int, int]
"""The user type and id of bulks' submitter; None where every bulk is read."""


@dataclass(frozen=True, slots=True)
class Head:
    last_position: int
    """Every change up to it is positioned and visible."""
    pruned_through: int
    """Changes up to it are deleted past their retention."""
    positioned: int = 0
    """Changes positioned by the transaction that read it."""


async def record_changes(
    connection: AsyncConnection, operation_ids: Sequence[int], now: datetime
) -> None:
    """These operations' statuses changed in the caller's transaction: their new statuses
    go to the feed, once committed."""
    ids = sorted(set(operation_ids))
    for start in range(0, len(ids), IN_LIST):
        chunk = ids[start : start + IN_LIST]
        changed = (
            select(
                operation.c.bulk_uuid,
                operation.c.id,
                operation.c.operation_key,
                operation.c.status,
                bulk.c.user_type,
                bulk.c.user_id,
                literal(now, operation_change.c.changed_at.type),
            )
            .join(bulk, bulk.c.uuid == operation.c.bulk_uuid)
            .where(operation.c.id.in_(in_int64(chunk)))
            .order_by(operation.c.id)
        )
        await connection.execute(_insert_from(changed))


async def record_deletions(
    connection: AsyncConnection, bulk_ids: Sequence[int], now: datetime
) -> None:
    """These bulks are being deleted in the caller's transaction (called before the rows
    go): one change each, without an operation or a status."""
    deleted = (
        select(
            bulk.c.uuid,
            null().cast(Integer),
            null().cast(Integer),
            null().cast(SmallInteger),
            bulk.c.user_type,
            bulk.c.user_id,
            literal(now, operation_change.c.changed_at.type),
        )
        .where(bulk.c.id.in_(in_int64(bulk_ids)))
        .order_by(bulk.c.id)
    )
    await connection.execute(_insert_from(deleted))


def _insert_from(rows: Any) -> Any:
    columns = ("bulk_uuid", "operation_id", "operation_key", "status", "user_type", "user_id")
    return insert(operation_change).from_select([*columns, "changed_at"], rows)


async def assign_positions(connection: AsyncConnection) -> Head:
    """Position the changes committed and not yet positioned (up to `POSITIONED_AT_ONCE`), in
    the order of their ids, after the last position; in the caller's write transaction, which
    holds the head row's lock until it ends. Answers the head."""
    head = (
        await connection.execute(
            select(change_head.c.last_position, change_head.c.pruned_through)
            .where(change_head.c.id == HEAD_ID)
            .with_for_update()
        )
    ).one()
    # Read after the lock is held: every row committed by then is seen.
    waiting = (
        await connection.execute(
            select(operation_change.c.id)
            .where(operation_change.c.position.is_(None))
            .order_by(operation_change.c.id)
            .limit(POSITIONED_AT_ONCE)
        )
    ).scalars()
    rows = [
        {"change_id": change_id, "given": head.last_position + offset}
        for offset, change_id in enumerate(waiting, start=1)
    ]
    if not rows:
        return Head(head.last_position, head.pruned_through)
    await connection.execute(
        update(operation_change)
        .where(operation_change.c.id == bindparam("change_id"))
        .values(position=bindparam("given")),
        rows,
    )
    last = rows[-1]["given"]
    await connection.execute(
        update(change_head).where(change_head.c.id == HEAD_ID).values(last_position=last)
    )
    return Head(last, head.pruned_through, len(rows))


def _owned(owner: Owner | None) -> list[ColumnElement[bool]]:
    if owner is None:
        return []
    return [operation_change.c.user_type == owner[0], operation_change.c.user_id == owner[1]]


async def changes_after(
    connection: AsyncConnection, after: int, limit: int, owner: Owner | None
) -> Sequence[Any]:
    """The positioned changes past `after` (of `owner`'s bulks), in position order."""
    query = (
        select(operation_change)
        .where(operation_change.c.position > after, *_owned(owner))
        .order_by(operation_change.c.position)
        .limit(limit)
    )
    return (await connection.execute(query)).all()


async def has_news(connection: AsyncConnection, after: int, owner: Owner | None) -> bool:
    """Whether a change past `after` may be there to read: one positioned past it, or one
    not positioned yet (both of `owner`'s bulks). A read, for waiting readers to poll."""
    query = (
        select(operation_change.c.id)
        .where(
            or_(operation_change.c.position.is_(None), operation_change.c.position > after),
            *_owned(owner),
        )
        .limit(1)
    )
    return (await connection.execute(query)).first() is not None


async def prune_changes(database: Database, before: datetime, batch_size: int) -> int:
    """Delete the changes made before `before`, with every change positioned before them:
    the head's `pruned_through` says from where the feed is whole, set before any row goes
    (a reader past it never misses one). Every change committed is positioned first, however
    many wait: retention keeps up even when no one reads the feed. Answers how many were
    deleted."""
    while True:
        async with database.write() as connection:
            head = await assign_positions(connection)
        if head.positioned < POSITIONED_AT_ONCE:
            break
    async with database.write() as connection:
        head = await assign_positions(connection)
        through = (
            await connection.execute(
                select(func.max(operation_change.c.position)).where(
                    operation_change.c.changed_at < before
                )
            )
        ).scalar_one()
        if through is None or through <= head.pruned_through:
            return 0
        await connection.execute(
            update(change_head).where(change_head.c.id == HEAD_ID).values(pruned_through=through)
        )
    deleted = 0
    while True:
        async with database.write() as connection:
            ids = (
                await connection.execute(
                    select(operation_change.c.id)
                    .where(operation_change.c.position <= through)
                    .order_by(operation_change.c.position)
                    .limit(batch_size)
                )
            ).scalars()
            gone = await connection.execute(
                delete(operation_change).where(operation_change.c.id.in_(list(ids)))
            )
        deleted += gone.rowcount
        if gone.rowcount < batch_size:
            return deleted
