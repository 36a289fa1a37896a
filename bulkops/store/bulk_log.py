"""The console's reads of bulks: the Bulk Actions log (a page of bulks and their counts by
status) and a bulk's failed operations grouped by error.

Every query reads through an index: the log pages on the bulk table (`start_time` or the
caseless `description`, then `id`) with a LIMIT, and counts the operations of the page's
bulks only, on `(bulk_uuid, status)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, not_, or_, select
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import SearchCriteria
from bulkops.status import FAILED, BulkStatus, OperationStatus
from bulkops.store.lifecycle import ErrorGroup
from bulkops.store.search import bulk_where_clause
from bulkops.store.tables import acknowledged_bulk, bulk, operation
from bulkops.store.types import folded, in_int64, int64_value

_DONE = (OperationStatus.COMPLETE, *FAILED)


def _has(statuses: Iterable[int]) -> ColumnElement[bool]:
    """The bulk has an operation with one of these statuses (the `(bulk_uuid, status)` index
    answers it)."""
    return exists().where(
        operation.c.bulk_uuid == bulk.c.uuid, operation.c.status.in_(in_int64(statuses))
    )


def _still_open() -> ColumnElement[bool]:
    """A bulk counted with operations but without their rows has them all open."""
    return or_(_has([OperationStatus.OPEN]), bulk.c.operation_rows == 0)


def status_clause(status: BulkStatus) -> ColumnElement[bool]:
    """The bulks whose derived status (`status.derive_bulk_status`) is `status`."""
    done, still_open = _has(_DONE), _still_open()
    match status:
        case BulkStatus.NOT_STARTED:
            return not_(done)
        case BulkStatus.IN_PROGRESS:
            return and_(done, still_open)
        case BulkStatus.FINISHED_SUCCESSFULLY:
            return and_(done, not_(still_open), not_(_has(FAILED)))
        case BulkStatus.FINISHED_WITH_FAILURE:
            return and_(not_(still_open), _has(FAILED))


SORTS: dict[str, ColumnElement[Any]] = {
    "start_time": bulk.c.start_time,
    "description": folded(bulk.c.description),
}
"""The log's sorts, each served by an index ending with `id` (the tie-breaker)."""


@dataclass(frozen=True, slots=True)
class LogQuery:
    criteria: SearchCriteria
    """Filters on the bulk's fields (`bulk_uuid`, `description`, `start_time`, `user_type`,
    `user_id`), as an operation search spells them."""
    status: BulkStatus | None
    offset: int
    limit: int
    sort: str = "start_time"
    """One of SORTS."""
    ascending: bool = False


async def bulk_page(
    connection: AsyncConnection, query: LogQuery, backend: str
) -> Sequence[RowMapping]:
    """The bulks of the page in the query's order (newest first by default); one more than
    `limit` tells a next page."""
    conditions = [bulk_where_clause(query.criteria, backend)]
    if query.status is not None:
        conditions.append(status_clause(query.status))
    statement = (
        select(bulk)
        .where(*conditions)
        .order_by(
            *(
                column.asc() if query.ascending else column.desc()
                for column in (SORTS[query.sort], bulk.c.id)
            )
        )
        .offset(query.offset)
        .limit(query.limit + 1)
    )
    return (await connection.execute(statement)).mappings().all()


async def status_counts(
    connection: AsyncConnection, uuids: Sequence[str]
) -> dict[str, dict[int, int]]:
    """The operations of each of these bulks counted by status."""
    counts: dict[str, dict[int, int]] = {uuid: {} for uuid in uuids}
    if not uuids:
        return counts
    statement = (
        select(operation.c.bulk_uuid, operation.c.status, func.count())
        .where(operation.c.bulk_uuid.in_(uuids))
        .group_by(operation.c.bulk_uuid, operation.c.status)
    )
    for uuid, status, count in await connection.execute(statement):
        counts[uuid][status] = count
    return counts


async def failure_groups(connection: AsyncConnection, uuid: str) -> Sequence[Row[Any]]:
    """The bulk's failed operations grouped by `(error_code, result_message)`, largest first:
    each row has `error_code`, `result_message` and `count`."""
    count = func.count().label("count")
    statement = (
        select(operation.c.error_code, operation.c.result_message, count)
        .where(operation.c.bulk_uuid == uuid, operation.c.status.in_(in_int64(FAILED)))
        .group_by(operation.c.error_code, operation.c.result_message)
        .order_by(count.desc(), operation.c.error_code, operation.c.result_message)
    )
    return (await connection.execute(statement)).all()


def _in_group(uuid: str, group: ErrorGroup) -> list[ColumnElement[bool]]:
    return [
        operation.c.bulk_uuid == uuid,
        operation.c.status.in_(in_int64(FAILED)),
        *group.conditions(),
    ]


async def group_operations(
    connection: AsyncConnection,
    uuid: str,
    group: ErrorGroup,
    limit: int,
) -> Sequence[Row[Any]]:
    """The first `limit` failed operations of one error group, in id order."""
    statement = (
        select(operation).where(*_in_group(uuid, group)).order_by(operation.c.id).limit(limit)
    )
    return (await connection.execute(statement)).all()


async def notifications(
    connection: AsyncConnection, user_type: int, user_id: int, limit: int
) -> Sequence[RowMapping]:
    """The user's own finished bulks whose notification it has not dismissed, newest first:
    Magento's `BulkNotificationManagement::getIgnoredBulksByUser`."""
    statement = (
        select(bulk)
        .where(
            bulk.c.user_type == int64_value(user_type),
            bulk.c.user_id == int64_value(user_id),
            _has(_DONE),
            not_(_still_open()),
            not_(exists().where(acknowledged_bulk.c.bulk_uuid == bulk.c.uuid)),
        )
        .order_by(bulk.c.start_time.desc(), bulk.c.id.desc())
        .limit(limit)
    )
    return (await connection.execute(statement)).mappings().all()


async def acknowledged(connection: AsyncConnection, uuid: str) -> bool:
    found = select(acknowledged_bulk.c.bulk_uuid).where(acknowledged_bulk.c.bulk_uuid == uuid)
    return (await connection.execute(found)).first() is not None


async def acknowledge(connection: AsyncConnection, uuid: str, now: datetime) -> None:
    """Dismisses the bulk's notification (again: nothing changes)."""
    if not await acknowledged(connection, uuid):
        await connection.execute(
            insert(acknowledged_bulk).values(bulk_uuid=uuid, acknowledged_at=now)
        )
