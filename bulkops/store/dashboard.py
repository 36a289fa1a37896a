"""The console dashboard's reads over every operation: the mix of statuses, what is still
open and since when, and failures by topic. Each reads one index (`(status, id)` or
`(topic_name, status, id)`) rather than the table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.bulk_log import FAILED
from bulkops.store.tables import operation
from bulkops.store.types import folded, in_int64, int64_value


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


async def failures_by_topic(connection: AsyncConnection, limit: int) -> Sequence[Row[Any]]:
    """The topics with the most failed operations: `topic_name` and `failed`. Grouped as the
    topic index holds them (caseless): the index alone answers."""
    failed = func.count().label("failed")
    topic = folded(operation.c.topic_name)
    query = (
        select(func.min(operation.c.topic_name).label("topic_name"), failed)
        .where(operation.c.status.in_(in_int64(FAILED)))
        .group_by(topic)
        .order_by(failed.desc(), topic)
        .limit(limit)
    )
    rows: Sequence[Row[Any]] = (await connection.execute(query)).all()
    return rows
