"""The `db` transport's queue table: messages for open operations, leased by workers.

A message is leased by moving its `available_at` past the lease and naming its `lease_owner`;
a dead worker's lease simply runs out. Under a broker transport the same table is the
transactional outbox: rows written in the submitter's transaction, published after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.tables import operation, queue_message

_LACKS_MESSAGE = ~exists().where(queue_message.c.operation_id == operation.c.id)


def _messages_for(operations: Select, now: datetime) -> Select:
    return operations.with_only_columns(
        operation.c.id,
        operation.c.topic_name,
        literal(now, queue_message.c.available_at.type),
        literal(0),
    ).where(operation.c.status == OperationStatus.OPEN)


async def _insert_messages(
    connection: AsyncConnection, operations: Select, now: datetime, lacking_only: bool = True
) -> int:
    """Answers how many were inserted; `lacking_only` skips operations that have a message
    (without it, none may have one). Two relays may race to insert the same operation's
    message (each checked it had none before the other committed): the unique operation_id
    keeps one, and the other one is skipped rather than failing its whole transaction."""
    columns = ["operation_id", "topic_name", "available_at", "attempts"]
    messages = _messages_for(operations, now)
    if lacking_only:
        messages = messages.where(_LACKS_MESSAGE)
    statement: Any = insert(queue_message).from_select(columns, messages)
    # SQLite has one writer at a time: its check cannot race.
    if lacking_only and connection.dialect.name == "postgresql":
        statement = (
            postgresql.insert(queue_message)
            .from_select(columns, messages)
            .on_conflict_do_nothing(index_elements=["operation_id"])
        )
    elif lacking_only and connection.dialect.name in ("mysql", "mariadb"):
        # Also skips a message whose operation was deleted meanwhile (its foreign key).
        statement = statement.prefix_with("IGNORE")
    inserted = await connection.execute(statement)
    return inserted.rowcount


async def enqueue_open_operations(
    connection: AsyncConnection, bulk_uuid: str, now: datetime
) -> int:
    """A message for every open operation of the bulk that has none, in the caller's
    transaction."""
    return await _insert_messages(
        connection, select(operation).where(operation.c.bulk_uuid == bulk_uuid), now
    )


async def enqueue_new_bulk(connection: AsyncConnection, bulk_uuid: str, now: datetime) -> int:
    """A message for every open operation of a bulk written in the caller's transaction, so
    that operations and their messages are committed together. None of them can have a
    message yet, so none is looked for."""
    return await _insert_messages(
        connection,
        select(operation).where(operation.c.bulk_uuid == bulk_uuid),
        now,
        lacking_only=False,
    )


async def open_operations_lacking_messages(
    connection: AsyncConnection, after_id: int, limit: int
) -> list[int]:
    """Ids of open operations with no message, in id order after `after_id`."""
    query = (
        select(operation.c.id)
        .where(operation.c.status == OperationStatus.OPEN, operation.c.id > after_id)
        .where(_LACKS_MESSAGE)
        .order_by(operation.c.id)
        .limit(limit)
    )
    return list((await connection.execute(query)).scalars())


async def enqueue_operations(
    connection: AsyncConnection, operation_ids: Sequence[int], now: datetime
) -> int:
    """A message for each of these operations that is open and has none."""
    return await _insert_messages(
        connection, select(operation).where(operation.c.id.in_(operation_ids)), now
    )


async def lease_messages(
    connection: AsyncConnection, owner: str, limit: int, now: datetime, until: datetime
) -> Sequence[Row]:
    """Up to `limit` available messages, oldest first, leased to `owner` until `until`; their
    `attempts` counts this delivery. The caller's write transaction keeps two workers from
    leasing the same message: SQLite has one writer; elsewhere the rows are locked, and rows
    another transaction holds are skipped rather than waited for.

    The operations' rows are locked with their messages (the lock covers every table joined),
    as the worker goes on to mark them started in the same transaction: so a lease never
    waits for a lock and can take part in no deadlock, whatever order others (recording
    results, marking operations failed, cleanup) lock operations and messages in."""
    candidates = (
        await connection.execute(
            select(
                queue_message.c.id,
                queue_message.c.operation_id,
                queue_message.c.topic_name,
                queue_message.c.attempts,
            )
            .join(operation, operation.c.id == queue_message.c.operation_id)
            .where(queue_message.c.available_at <= now)
            .order_by(queue_message.c.available_at, queue_message.c.id)
            .limit(limit)
            # PostgreSQL: FOR NO KEY UPDATE, what the updates that follow take anyway.
            .with_for_update(skip_locked=True, key_share=True)
        )
    ).all()
    if candidates:
        await connection.execute(
            update(queue_message)
            .where(queue_message.c.id.in_([row.id for row in candidates]))
            .values(available_at=until, lease_owner=owner, attempts=queue_message.c.attempts + 1)
        )
    return candidates


async def extend_leases(
    connection: AsyncConnection, owner: str, message_ids: Sequence[int], until: datetime
) -> int:
    """Push the leases `owner` still holds to `until`; answers how many it still held."""
    extended = await connection.execute(
        update(queue_message)
        .where(queue_message.c.id.in_(message_ids), queue_message.c.lease_owner == owner)
        .values(available_at=until)
    )
    return extended.rowcount


async def release_messages(
    connection: AsyncConnection, owner: str, message_ids: Sequence[int], now: datetime
) -> None:
    """Undo `owner`'s leases: the messages are available at once, and the delivery that was
    never processed does not count as an attempt."""
    await connection.execute(
        update(queue_message)
        .where(queue_message.c.id.in_(message_ids), queue_message.c.lease_owner == owner)
        .values(available_at=now, lease_owner=None, attempts=queue_message.c.attempts - 1)
    )


async def requeue_messages(
    connection: AsyncConnection, owner: str, available_at: Sequence[tuple[int, datetime]]
) -> None:
    """Give `owner`'s leased messages back, each to be delivered again at its own time."""
    if not available_at:
        return
    await connection.execute(
        update(queue_message)
        .where(
            queue_message.c.id == bindparam("message_id"),
            queue_message.c.lease_owner == owner,
        )
        .values(available_at=bindparam("at"), lease_owner=None),
        [{"message_id": message_id, "at": at} for message_id, at in available_at],
    )


async def delete_messages(connection: AsyncConnection, message_ids: Sequence[int]) -> None:
    if message_ids:
        await connection.execute(delete(queue_message).where(queue_message.c.id.in_(message_ids)))


async def delete_messages_of_operations(
    connection: AsyncConnection, operation_ids: Sequence[int]
) -> None:
    if operation_ids:
        await connection.execute(
            delete(queue_message).where(queue_message.c.operation_id.in_(operation_ids))
        )


# Under a broker transport, whose messages live in the broker once published.


async def enqueue_retries(
    connection: AsyncConnection, retries: Sequence[tuple[int, datetime, int]]
) -> None:
    """Put operations back into the outbox to be delivered again later: for each
    (operation id, available at, deliveries so far), a message if the operation is open.
    It replaces any message the operation still has: the one just delivered may not be
    deleted from the outbox yet (its publisher deletes it after the broker's confirmation,
    which can come after the delivery). No other transaction gives these operations a
    message meanwhile: they are started, held by the caller's deliveries."""
    if not retries:
        return
    await delete_messages_of_operations(connection, [retry[0] for retry in retries])
    groups: dict[tuple[datetime, int], list[int]] = {}
    for operation_id, available_at, attempts in retries:
        groups.setdefault((available_at, attempts), []).append(operation_id)
    for (available_at, attempts), operation_ids in groups.items():
        messages = (
            select(
                operation.c.id,
                operation.c.topic_name,
                literal(available_at, queue_message.c.available_at.type),
                literal(attempts, queue_message.c.attempts.type),
            )
            .where(operation.c.id.in_(operation_ids))
            .where(operation.c.status == OperationStatus.OPEN, _LACKS_MESSAGE)
        )
        await connection.execute(
            insert(queue_message).from_select(
                ["operation_id", "topic_name", "available_at", "attempts"], messages
            )
        )


async def unstarted_operations_lacking_messages(
    connection: AsyncConnection, after_id: int, limit: int, changed_before: datetime
) -> list[int]:
    """Ids of open operations not started since they were (re)opened, with no message, and
    unchanged since `changed_before`, in id order after `after_id`: those whose published
    message may have been lost."""
    query = (
        select(operation.c.id)
        .where(operation.c.status == OperationStatus.OPEN, operation.c.id > after_id)
        .where(operation.c.started_at.is_(None), operation.c.updated_at <= changed_before)
        .where(_LACKS_MESSAGE)
        .order_by(operation.c.id)
        .limit(limit)
    )
    return list((await connection.execute(query)).scalars())


async def delete_leased_messages(
    connection: AsyncConnection, owner: str, message_ids: Sequence[int]
) -> None:
    """Delete those of the messages that `owner` still has leased: one replaced meanwhile
    (SQLite may give the replacement the same id) or leased by another owner stays."""
    if message_ids:
        await connection.execute(
            delete(queue_message).where(
                queue_message.c.id.in_(message_ids), queue_message.c.lease_owner == owner
            )
        )
