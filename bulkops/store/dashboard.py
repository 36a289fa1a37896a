"""The console dashboard's reads: the mix of every operation's statuses and what is still open
and since when, each from the `(status, id)` index rather than the table; and the queue
table's messages by when they are due, from its `(available_at, id)` index (see
`bulkops.store.finished` for what finished lately)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.queue import BLOCKED
from bulkops.store.tables import operation, queue_message
from bulkops.store.types import int64_value


async def status_mix(connection: AsyncConnection) -> dict[int, int]:
    """Every operation counted by status."""
    query = select(operation.c.status, func.count()).group_by(operation.c.status)
    return {status: count for status, count in await connection.execute(query)}


@dataclass(frozen=True, slots=True)
class OpenOperations:
    count: int
    oldest_start: datetime | None
    """When the bulk of the oldest open operation started; None when none is open."""


async def open_operations(connection: AsyncConnection) -> OpenOperations:
    query = select(func.count(), func.min(operation.c.start_time)).where(
        operation.c.status == int64_value(OperationStatus.OPEN)
    )
    count, oldest = (await connection.execute(query)).one()
    return OpenOperations(count, oldest)


@dataclass(frozen=True, slots=True)
class QueuedMessages:
    """The queue table's messages (under a broker transport, the outbox's rows)."""

    due: int
    """Due now: waiting for a worker (under a broker, to be published)."""
    oldest_due: datetime | None
    """Since when the message due longest has been due; None when none is."""
    later: int
    """Due later: leased by a worker (under a broker, published and held until their
    operation is final), or a retry's delay."""
    blocked: int
    """Behind an earlier operation of their order group."""


async def queued_messages(connection: AsyncConnection, now: datetime) -> QueuedMessages:
    available_at = queue_message.c.available_at

    async def counted(*where: ColumnElement[bool]) -> tuple[int, datetime | None]:
        query = select(func.count(), func.min(available_at)).where(*where)
        count, oldest = (await connection.execute(query)).one()
        return count, oldest

    due, oldest_due = await counted(available_at <= now)
    later, _ = await counted(available_at > now, available_at < BLOCKED)
    blocked, _ = await counted(available_at == BLOCKED)
    return QueuedMessages(due, oldest_due, later, blocked)
