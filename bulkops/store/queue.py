"""The `db` transport's queue table: messages for open operations, leased by workers.

A message is leased by moving its `available_at` past the lease and naming its `lease_owner`;
a dead worker's lease simply runs out. Under a broker transport the same table is the
transactional outbox: rows written in the submitter's transaction, published after commit.

Order: the operations of one order group (by default a bulk's, see `AsyncRoute.order_group`)
are processed one after the other in id order, as Magento's consumer takes a queue's messages
one at a time. Only a group's head, its message with the lowest operation id, may be leased
(or published); the messages behind it wait with `available_at` at BLOCKED, so that leasing
never scans them, and the next one is made due when the head's operation is final. A worker
that leased a head may take the messages behind it with it (`lease_followers`) and process
them in order itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.changes import IN_LIST
from bulkops.store.rows import AnyRow, AnySelect
from bulkops.store.tables import operation, queue_message
from bulkops.store.types import in_int64

BLOCKED = datetime(9999, 1, 1)
"""`available_at` of a message behind the head of its order group: never due by itself."""

_COLUMNS = ["operation_id", "topic_name", "available_at", "attempts", "order_group"]

_LACKS_MESSAGE = ~exists().where(queue_message.c.operation_id == operation.c.id)

_earlier = queue_message.alias("earlier")
_IS_HEAD = or_(
    queue_message.c.order_group.is_(None),
    ~exists().where(
        _earlier.c.order_group == queue_message.c.order_group,
        _earlier.c.operation_id < queue_message.c.operation_id,
    ),
)
"""No message of the same group is for an earlier operation."""


def _due_unless_grouped(order_group: Any, now: datetime) -> Any:
    """A message's `available_at`, by its `order_group` column: `now` for an operation that
    waits for no other, else BLOCKED until it is made its group's head."""
    return case(
        (order_group.is_(None), literal(now, queue_message.c.available_at.type)),
        else_=literal(BLOCKED, queue_message.c.available_at.type),
    )


def _messages_for(operations: AnySelect, now: datetime) -> AnySelect:
    return operations.with_only_columns(
        operation.c.id,
        operation.c.topic_name,
        _due_unless_grouped(operation.c.order_group, now),
        literal(0),
        operation.c.order_group,
    ).where(operation.c.status == OperationStatus.OPEN)


async def _unblock_heads(connection: AsyncConnection, groups: AnySelect, now: datetime) -> int:
    """Make due the head of each of `groups` (a select of order groups) if it waits; answers
    how many were made due."""
    heads = (
        select(func.min(queue_message.c.operation_id))
        .where(queue_message.c.order_group.in_(groups.where(operation.c.order_group.is_not(None))))
        .group_by(queue_message.c.order_group)
    )
    head_ids = list((await connection.execute(heads)).scalars())
    if not head_ids:
        return 0
    unblocked = await connection.execute(
        update(queue_message)
        .where(queue_message.c.operation_id.in_(head_ids), queue_message.c.available_at == BLOCKED)
        .values(available_at=now)
    )
    return unblocked.rowcount


async def unblock_successors(
    connection: AsyncConnection, operation_ids: Sequence[int], now: datetime
) -> int:
    """These operations are final: the next message of each one's group is due. Answers how
    many messages were made due."""
    if not operation_ids:
        return 0
    groups = select(operation.c.order_group).where(operation.c.id.in_(operation_ids))
    return await _unblock_heads(connection, groups, now)


async def _insert_messages(
    connection: AsyncConnection, operations: AnySelect, now: datetime, lacking_only: bool = True
) -> int:
    """Answers how many were inserted; `lacking_only` skips operations that have a message
    (without it, none may have one). Two relays may race to insert the same operation's
    message (each checked it had none before the other committed): the unique operation_id
    keeps one, and the other one is skipped rather than failing its whole transaction."""
    messages = _messages_for(operations, now)
    if lacking_only:
        messages = messages.where(_LACKS_MESSAGE)
    statement: Any = insert(queue_message).from_select(_COLUMNS, messages)
    # SQLite has one writer at a time: its check cannot race.
    if lacking_only and connection.dialect.name == "postgresql":
        statement = (
            postgresql.insert(queue_message)
            .from_select(_COLUMNS, messages)
            .on_conflict_do_nothing(index_elements=["operation_id"])
        )
    elif lacking_only and connection.dialect.name in ("mysql", "mariadb"):
        # Also skips a message whose operation was deleted meanwhile (its foreign key).
        statement = statement.prefix_with("IGNORE")
    inserted = await connection.execute(statement)
    if inserted.rowcount:
        await _unblock_heads(connection, operations.with_only_columns(operation.c.order_group), now)
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
    """A message for each of these operations that is open and has none; answers how many."""
    inserted = 0
    for start in range(0, len(operation_ids), IN_LIST):
        chunk = in_int64(operation_ids[start : start + IN_LIST])
        inserted += await _insert_messages(
            connection, select(operation).where(operation.c.id.in_(chunk)), now
        )
    return inserted


async def lease_messages(
    connection: AsyncConnection, owner: str, limit: int, now: datetime, until: datetime
) -> Sequence[AnyRow]:
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
            select(*_LEASED)
            .join(operation, operation.c.id == queue_message.c.operation_id)
            # A message behind its group's head is BLOCKED, unless a dead worker's lease on it
            # ran out: then only the head is taken (the subquery locks nothing).
            .where(queue_message.c.available_at <= now, _IS_HEAD)
            .order_by(queue_message.c.available_at, queue_message.c.id)
            .limit(limit)
            # PostgreSQL: FOR NO KEY UPDATE, what the updates that follow take anyway.
            .with_for_update(skip_locked=True, key_share=True)
        )
    ).all()
    await _lease(connection, owner, candidates, until)
    return candidates


_LEASED = (
    queue_message.c.id,
    queue_message.c.operation_id,
    queue_message.c.topic_name,
    queue_message.c.attempts,
    queue_message.c.order_group,
)


async def _lease(
    connection: AsyncConnection, owner: str, messages: Sequence[AnyRow], until: datetime
) -> None:
    if messages:
        await connection.execute(
            update(queue_message)
            .where(queue_message.c.id.in_([row.id for row in messages]))
            .values(available_at=until, lease_owner=owner, attempts=queue_message.c.attempts + 1)
        )


async def lease_followers(
    connection: AsyncConnection,
    owner: str,
    heads: Collection[tuple[int | None, int]],
    limit: int,
    now: datetime,
    until: datetime,
) -> Sequence[AnyRow]:
    """Up to `limit` messages behind the heads that the caller just leased (or received from
    a broker), given as (order group, operation id), each group's in operation order up to
    the first one held elsewhere, leased to `owner`: the caller processes each group's
    messages one after the other. No one else leases these meanwhile (they wait behind a head
    the caller holds), so no row lock is needed."""
    groups = {group for group, _ in heads if group is not None}
    if not groups or limit <= 0:
        return []
    head_ids = [operation_id for group, operation_id in heads if group is not None]
    # Each group's first message held elsewhere (a retried one, or one not yet given back):
    # none past it is taken.
    held = (
        select(
            queue_message.c.order_group,
            func.min(queue_message.c.operation_id).label("operation_id"),
        )
        .where(
            queue_message.c.order_group.in_(groups),
            queue_message.c.available_at > now,
            queue_message.c.available_at != BLOCKED,
            queue_message.c.operation_id.not_in(head_ids),
        )
        .group_by(queue_message.c.order_group)
        .subquery()
    )
    ranked = (
        select(
            *_LEASED,
            func.row_number()
            .over(partition_by=queue_message.c.order_group, order_by=queue_message.c.operation_id)
            .label("position"),
        )
        .outerjoin(held, held.c.order_group == queue_message.c.order_group)
        .where(
            queue_message.c.order_group.in_(groups),
            or_(queue_message.c.available_at <= now, queue_message.c.available_at == BLOCKED),
            or_(held.c.operation_id.is_(None), queue_message.c.operation_id < held.c.operation_id),
        )
        .subquery()
    )
    followers = (
        await connection.execute(
            select(*(ranked.c[column.name] for column in _LEASED))
            .where(ranked.c.position <= limit)
            # A share of the room for every group rather than all of it for the first.
            .order_by(ranked.c.position, ranked.c.operation_id)
            .limit(limit)
        )
    ).all()
    await _lease(connection, owner, followers, until)
    return followers


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
    """Undo `owner`'s leases: the messages are available at once (behind their group's head,
    as they were before), and the delivery that was never processed does not count as an
    attempt."""
    if not message_ids:
        return
    await connection.execute(
        update(queue_message)
        .where(queue_message.c.id.in_(message_ids), queue_message.c.lease_owner == owner)
        .values(
            available_at=_due_unless_grouped(queue_message.c.order_group, now),
            lease_owner=None,
            attempts=queue_message.c.attempts - 1,
        )
    )
    groups = select(operation.c.order_group).where(
        operation.c.id.in_(
            select(queue_message.c.operation_id).where(queue_message.c.id.in_(message_ids))
        )
    )
    await _unblock_heads(connection, groups, now)


async def requeue_messages(
    connection: AsyncConnection, owner: str, requeued: Sequence[tuple[int, datetime, int]]
) -> None:
    """Give `owner`'s leased messages back, each (message id, available at, attempts so far)
    to be delivered again at its own time."""
    if not requeued:
        return
    await connection.execute(
        update(queue_message)
        .where(
            queue_message.c.id == bindparam("message_id"),
            queue_message.c.lease_owner == owner,
        )
        .values(available_at=bindparam("at"), lease_owner=None, attempts=bindparam("tried")),
        [
            {"message_id": message_id, "at": at, "tried": attempts}
            for message_id, at, attempts in requeued
        ],
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
        # A retried operation is the head of its group: the messages behind it stay blocked.
        messages = (
            select(
                operation.c.id,
                operation.c.topic_name,
                literal(available_at, queue_message.c.available_at.type),
                literal(attempts, queue_message.c.attempts.type),
                operation.c.order_group,
            )
            .where(operation.c.id.in_(operation_ids))
            .where(operation.c.status == OperationStatus.OPEN, _LACKS_MESSAGE)
        )
        await connection.execute(insert(queue_message).from_select(_COLUMNS, messages))


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


async def settle_published(
    connection: AsyncConnection, owner: str, message_ids: Sequence[int], republish_at: datetime
) -> None:
    """The broker confirmed these of `owner`'s claimed rows. A row replaced meanwhile (SQLite
    may give the replacement the same id) or claimed by another owner stays. The others are
    deleted, except those of order groups: they stay until their operation is final, due
    again at `republish_at` (see `bulkops.queue.outbox`)."""
    if not message_ids:
        return
    claimed = (queue_message.c.id.in_(message_ids), queue_message.c.lease_owner == owner)
    await connection.execute(
        delete(queue_message).where(*claimed, queue_message.c.order_group.is_(None))
    )
    await connection.execute(
        update(queue_message)
        .where(*claimed, queue_message.c.order_group.is_not(None))
        .values(available_at=republish_at, lease_owner=None)
    )


async def hold_published(
    connection: AsyncConnection, operation_ids: Sequence[int], republish_at: datetime
) -> None:
    """The messages of these operations are still being processed: their groups' rows are
    not due again before `republish_at`."""
    if operation_ids:
        await connection.execute(
            update(queue_message)
            .where(
                queue_message.c.operation_id.in_(operation_ids),
                queue_message.c.order_group.is_not(None),
                queue_message.c.lease_owner.is_(None),
                queue_message.c.available_at != BLOCKED,
            )
            .values(available_at=republish_at)
        )
