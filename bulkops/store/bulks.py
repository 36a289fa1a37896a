"""Bulks and their operations: writing a bulk, and the per-bulk status queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, insert, select
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import OperationStatus
from bulkops.store.bulk_insert import insert_rows
from bulkops.store.tables import bulk, operation
from bulkops.store.tallies import count_new_bulk
from bulkops.store.types import int64_value, storable_text

# An operation's own values, as `insert_bulk_rows` writes them.
OPERATION_COLUMNS = (
    "operation_key",
    "topic_name",
    "serialized_data",
    "result_serialized_data",
    "status",
    "error_code",
    "result_message",
    "order_group",
)


CallbackUrl = str | ScalarSelect[str]


@dataclass(frozen=True, slots=True)
class NewOperation:
    operation_key: int
    topic_name: str
    serialized_data: str | None
    status: OperationStatus = OperationStatus.OPEN
    result_message: str | None = None
    error_code: int | None = None
    result_serialized_data: str | None = None
    order_group: int | None = None


@dataclass(frozen=True, slots=True)
class NewBulk:
    uuid: str
    description: str | None
    user_id: int | None
    user_type: int | None
    start_time: datetime
    operations: Sequence[NewOperation]
    store_code: str = "default"
    expires_at: datetime | None = None
    """Its own retention: deleted once past (None: the lifetime setting decides)."""
    callback_url: CallbackUrl | None = None
    """Where its completion is announced (`bulkops.store.webhooks`), or a query of it (an
    integration's own); None: nowhere."""


async def insert_bulk(connection: AsyncConnection, new_bulk: NewBulk) -> None:
    """The bulk and all its operations, counted (`tallies`), in the caller's transaction."""
    await insert_bulk_rows(connection, new_bulk)
    await count_new_bulk(
        connection, new_bulk.uuid, [(op.topic_name, int(op.status)) for op in new_bulk.operations]
    )


async def insert_bulk_rows(connection: AsyncConnection, new_bulk: NewBulk) -> None:
    """The rows of the bulk and its operations (`insert_rows`), as every revision since
    0010 holds them (migrations are tested with them). Its `operation_count` counts the
    accepted operations only, as Magento's `BulkManagement`
    (module-asynchronous-operations/Model/BulkManagement.php) counts the operations it
    schedules: a client waiting until statuses 1, 2 and 3 reach it finishes."""
    accepted = sum(op.status != OperationStatus.REJECTED for op in new_bulk.operations)
    await connection.execute(
        insert(bulk).values(
            uuid=new_bulk.uuid,
            description=new_bulk.description,
            user_id=new_bulk.user_id,
            user_type=new_bulk.user_type,
            operation_count=accepted,
            operation_rows=len(new_bulk.operations),
            start_time=new_bulk.start_time,
            store_code=new_bulk.store_code,
            # Only when chosen: the table's default otherwise, so that bulks can be written
            # at any revision since 0010 (the migration tests do).
            **({} if new_bulk.expires_at is None else {"expires_at": new_bulk.expires_at}),
            **({} if new_bulk.callback_url is None else {"callback_url": new_bulk.callback_url}),
        )
    )
    await insert_rows(
        connection,
        operation,
        {
            "bulk_uuid": new_bulk.uuid,
            "started_at": None,
            "updated_at": new_bulk.start_time,
            "start_time": new_bulk.start_time,
        },
        OPERATION_COLUMNS,
        [
            (
                op.operation_key,
                op.topic_name,
                op.serialized_data,
                op.result_serialized_data,
                int(op.status),
                op.error_code,
                op.result_message,
                op.order_group,
            )
            for op in new_bulk.operations
        ],
    )


async def find_bulk(connection: AsyncConnection, uuid: str) -> RowMapping | None:
    if not storable_text(uuid):
        return None
    result = await connection.execute(select(bulk).where(bulk.c.uuid == uuid))
    return result.mappings().first()


async def bulk_operations(connection: AsyncConnection, uuid: str) -> Sequence[Row[Any]]:
    if not storable_text(uuid):
        return []
    query = select(operation).where(operation.c.bulk_uuid == uuid).order_by(operation.c.id)
    return (await connection.execute(query)).all()


async def count_operations(connection: AsyncConnection, uuid: str, status: int) -> int:
    """Operations of the bulk with that status (0 for an unknown bulk). A bulk with no
    operation rows counts all its operations as open, as Magento does."""
    if not storable_text(uuid):
        return 0
    count = (
        await connection.execute(
            select(func.count()).where(
                operation.c.bulk_uuid == uuid, operation.c.status == int64_value(status)
            )
        )
    ).scalar_one()
    if count or status != OperationStatus.OPEN:
        return count
    found = await find_bulk(connection, uuid)
    if found is None:
        return 0
    has_rows = (
        await connection.execute(
            select(operation.c.id).where(operation.c.bulk_uuid == uuid).limit(1)
        )
    ).first()
    return 0 if has_rows else found["operation_count"]


async def bulk_topics(connection: AsyncConnection, uuid: str) -> set[str]:
    """The topics of the bulk's operations, each once."""
    query = select(operation.c.topic_name).where(operation.c.bulk_uuid == uuid).distinct()
    return set((await connection.execute(query)).scalars())
