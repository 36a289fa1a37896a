"""An operation's status over its life: started, finished, retried, marked failed when open
too long, deleted with its bulk when old; and the bulk's status derived from them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.criteria import SearchCriteria
from bulkops.errors import InputError
from bulkops.status import BulkStatus, OperationStatus, derive_bulk_status
from bulkops.store.bulk_versions import bump_bulks, bump_bulks_of
from bulkops.store.changes import IN_LIST, record_changes, record_deletions
from bulkops.store.database import Database
from bulkops.store.finished import count_finished
from bulkops.store.queue import delete_messages_of_operations, enqueue_operations
from bulkops.store.rows import AnyRow
from bulkops.store.search import from_clause, where_clause
from bulkops.store.tables import bulk, operation, operation_tally
from bulkops.store.tallies import tally
from bulkops.store.types import in_int64, int64_value, storable_text
from bulkops.store.webhooks import record_completions

UNKNOWN_ERROR = "Unknown Error"
"""Magento's message for an operation that stayed open too long after it started."""

DEFAULT_RETRY_STATUSES = (OperationStatus.RETRIABLY_FAILED, OperationStatus.NOT_RETRIABLY_FAILED)

BATCH_SIZE = 1000
"""Rows per transaction in the periodic jobs: each holds the write lock only briefly."""

Progress = Callable[[int, int], None]
"""Told at the start of a long job, then after each batch, how many items it has done so
far, of how many it counted at its start (items arriving meanwhile can take the first past
the second)."""

_OPEN = OperationStatus.OPEN
_REJECTED = int(OperationStatus.REJECTED)
_RETRIABLY_FAILED = int(OperationStatus.RETRIABLY_FAILED)


def utc_now() -> datetime:
    """UTC, naive, in whole seconds as the Timestamp columns store it."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


async def start_operations(
    connection: AsyncConnection, operation_ids: Sequence[int], now: datetime
) -> Sequence[AnyRow]:
    """Stamp `started_at` on those of the operations that are still open and count their
    delivery, and answer them with what a handler needs (their bulk's user included) and
    their `deliveries`. Operations already final are left out: they must not be processed
    again."""
    await connection.execute(
        update(operation)
        .where(operation.c.id.in_(operation_ids), operation.c.status == _OPEN)
        .values(started_at=now, updated_at=now, deliveries=operation.c.deliveries + 1)
    )
    query = (
        select(
            operation.c.id,
            operation.c.bulk_uuid,
            operation.c.operation_key,
            operation.c.topic_name,
            operation.c.serialized_data,
            operation.c.order_group,
            operation.c.deliveries,
            bulk.c.user_type,
            bulk.c.user_id,
            bulk.c.store_code,
        )
        .join(bulk, bulk.c.uuid == operation.c.bulk_uuid)
        .where(operation.c.id.in_(operation_ids), operation.c.status == _OPEN)
    )
    return (await connection.execute(query)).all()


async def uncount_deliveries(connection: AsyncConnection, operation_ids: Sequence[int]) -> None:
    """These operations' deliveries ended without their worker dying (given back unprocessed,
    or to be retried later): they do not count towards abandoning them."""
    if operation_ids:
        await connection.execute(
            update(operation)
            .where(
                operation.c.id.in_(operation_ids),
                operation.c.status == _OPEN,
                operation.c.deliveries > 0,
            )
            .values(deliveries=operation.c.deliveries - 1)
        )


@dataclass(frozen=True, slots=True)
class Result:
    """An operation's final outcome."""

    operation_id: int
    status: OperationStatus
    result_message: str
    error_code: int | None = None
    result_serialized_data: str | None = None


async def record_results(
    connection: AsyncConnection, results: Iterable[Result], now: datetime
) -> list[int]:
    """Write final statuses, each only if its operation is still open: recording the same
    result twice, or a late result after another, changes nothing. A completed operation
    loses its payload (`serialized_data`), as in Magento; a failed one keeps it for retries.

    The operations still open are locked first, in id order, then written by one statement:
    two workers recording overlapping results (a message delivered twice) lock the rows in the
    same order, so they cannot deadlock, and the operations this transaction makes final are
    known, to be counted (`finished.count_finished`). Answers the ids of the operations it
    made final."""
    first: dict[int, Result] = {}
    for result in results:  # the first of an operation's results is the one recorded
        first.setdefault(result.operation_id, result)
    if not first:
        return []
    locked = await _lock_open(connection, operation.c.id.in_(list(first)))
    ordered = [first[operation_id] for operation_id in sorted(locked)]
    if not ordered:
        return []
    rows = [
        {
            "operation_id": result.operation_id,
            "new_status": int(result.status),
            "new_message": result.result_message,
            "new_error_code": result.error_code,
            "new_result": result.result_serialized_data,
            "drops_payload": result.status == OperationStatus.COMPLETE,
        }
        for result in ordered
    ]
    await connection.execute(
        update(operation)
        .where(operation.c.id == bindparam("operation_id"), operation.c.status == _OPEN)
        .values(
            status=bindparam("new_status"),
            result_message=bindparam("new_message"),
            error_code=bindparam("new_error_code"),
            result_serialized_data=bindparam("new_result"),
            serialized_data=case(
                (bindparam("drops_payload", type_=Boolean), null()),
                else_=operation.c.serialized_data,
            ),
            updated_at=now,
        ),
        rows,
    )
    finals = [(locked[result.operation_id], int(result.status)) for result in ordered]
    await count_finished(connection, [(topic, status) for (_, topic), status in finals], now)
    await tally(
        connection,
        added=[(uuid, topic, status) for (uuid, topic), status in finals],
        removed=[(uuid, topic, _OPEN) for (uuid, topic), _ in finals],
    )
    made_final = [result.operation_id for result in ordered]
    bulks = await bump_bulks_of(connection, made_final)
    await record_completions(connection, bulks, now)
    await record_changes(connection, made_final, now)
    return made_final


async def _lock_open(
    connection: AsyncConnection, selected: ColumnElement[bool], limit: int | None = None
) -> dict[int, tuple[str, str]]:
    """Lock the open operations `selected` (the first `limit`), in id order, until the
    transaction ends, so that no other can make them final meanwhile; answers their bulks and
    topics by id. SQLite's write transaction has the whole database already."""
    query = (
        select(operation.c.id, operation.c.bulk_uuid, operation.c.topic_name)
        .where(selected, operation.c.status == _OPEN)
        .order_by(operation.c.id)
        .limit(limit)
        # PostgreSQL: FOR NO KEY UPDATE, what the update that follows takes anyway.
        .with_for_update(key_share=True)
    )
    return {row.id: (row.bulk_uuid, row.topic_name) for row in await connection.execute(query)}


RETRIABLE_STATUSES = frozenset(DEFAULT_RETRY_STATUSES)


def check_retry_statuses(statuses: Collection[int]) -> None:
    """Only failed operations (2, 3) may be retried. A rejected one (5) failed validation: run
    again unchanged it would reach its handler with input the route refuses."""
    for status in statuses:
        if status == _REJECTED:
            raise InputError(
                "Rejected operations (status %status) failed validation and need new input: "
                "submit the items again instead of retrying them.",
                {"status": status},
            )
        if status not in RETRIABLE_STATUSES:
            raise InputError(
                "Operations with status %status cannot be retried: only failed ones "
                "(status 2 or 3) can.",
                {"status": status},
            )


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Failed operations with the same error: code and message (either may be missing)."""

    error_code: int | None
    result_message: str | None

    def conditions(self) -> list[ColumnElement[bool]]:
        code = None if self.error_code is None else int64_value(self.error_code)
        return [
            operation.c.error_code.is_not_distinct_from(code),
            operation.c.result_message.is_not_distinct_from(self.result_message),
        ]


def _retriable(statuses: Collection[int]) -> list[ColumnElement[bool]]:
    """Operations with one of `statuses` that can run again: completed ones have no payload,
    and those resubmitted with a corrected item run elsewhere."""
    return [
        operation.c.status.in_(in_int64(statuses)),
        operation.c.serialized_data.is_not(None),
        operation.c.resubmitted_to_bulk.is_(None),
    ]


def _retried(
    bulk_uuid: str,
    statuses: Collection[int],
    error_codes: Collection[int] | None,
    error_group: ErrorGroup | None = None,
    operation_ids: Collection[int] | None = None,
) -> list[ColumnElement[bool]]:
    """What selects the operations a retry of the bulk reopens."""
    conditions = [operation.c.bulk_uuid == bulk_uuid, *_retriable(statuses)]
    if error_codes is not None:
        conditions.append(operation.c.error_code.in_(in_int64(error_codes)))
    if error_group is not None:
        conditions += error_group.conditions()
    if operation_ids is not None:
        conditions.append(operation.c.id.in_(in_int64(operation_ids)))
    return conditions


async def retried_topics(
    connection: AsyncConnection,
    bulk_uuid: str,
    statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
    error_codes: Collection[int] | None = None,
    error_group: ErrorGroup | None = None,
    operation_ids: Collection[int] | None = None,
) -> set[str]:
    """The topics of the operations `retry_operations` would reopen: whoever retries needs
    the ACL resource of each one's route."""
    check_retry_statuses(statuses)
    retried = _retried(bulk_uuid, statuses, error_codes, error_group, operation_ids)
    query = select(operation.c.topic_name).where(*retried)
    return set((await connection.execute(query.distinct())).scalars())


async def _bulk_exists(connection: AsyncConnection, bulk_uuid: str) -> bool:
    if not storable_text(bulk_uuid):
        return False
    found = await connection.execute(select(bulk.c.id).where(bulk.c.uuid == bulk_uuid))
    return found.first() is not None


async def _reopen(
    connection: AsyncConnection, conditions: Collection[ColumnElement[bool]], now: datetime
) -> list[int]:
    """Reopen the operations that match as never started and queue them again; answers
    their ids. They are found first, then locked by their ids in id order (as recording
    results locks them: a locking read through another index would lock its ranges too, and
    deadlock with writers of those), so that the counts (`tallies`) and the change feed get
    exactly the statuses changed."""
    found = await connection.execute(select(operation.c.id).where(*conditions))
    ids = sorted(found.scalars())
    locked: list[AnyRow] = []
    for start in range(0, len(ids), IN_LIST):
        chunk = in_int64(ids[start : start + IN_LIST])
        locked += await connection.execute(
            select(
                operation.c.id, operation.c.bulk_uuid, operation.c.topic_name, operation.c.status
            )
            # Still matching once locked: another may have changed them meanwhile.
            .where(operation.c.id.in_(chunk), *conditions)
            .order_by(operation.c.id)
            .with_for_update(key_share=True)
        )
    reopened = [row.id for row in locked]
    for start in range(0, len(reopened), IN_LIST):
        await connection.execute(
            update(operation)
            .where(operation.c.id.in_(in_int64(reopened[start : start + IN_LIST])))
            .values(
                status=_OPEN,
                result_message=None,
                error_code=None,
                result_serialized_data=None,
                started_at=None,
                updated_at=now,
                deliveries=0,
            )
        )
    await tally(
        connection,
        added=[(row.bulk_uuid, row.topic_name, _OPEN) for row in locked],
        removed=[(row.bulk_uuid, row.topic_name, row.status) for row in locked],
    )
    await bump_bulks(connection, [row.bulk_uuid for row in locked])
    await record_changes(connection, reopened, now)
    # Exactly these, last, as every writer's messages: re-reading the bulk's open operations
    # here would lock (InnoDB's shared locks) those workers hold while they wait for the
    # counts this transaction holds, a deadlock.
    await enqueue_operations(connection, reopened, now)
    return reopened


async def retry_operations(
    connection: AsyncConnection,
    bulk_uuid: str,
    now: datetime,
    statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
    error_codes: Collection[int] | None = None,
    error_group: ErrorGroup | None = None,
    operation_ids: Collection[int] | None = None,
) -> int | None:
    """Reopen the bulk's failed operations with one of `statuses` (2 or 3: an `InputError`
    for any other) and, when given, one of `error_codes`, of `error_group` and of
    `operation_ids` (ids of the operation table), as Magento's retryBulk, and queue them
    again, in the caller's transaction; answers how many, or None for an unknown bulk.

    Only the operations reopened are queued. An open operation whose message was lost gets
    a new one from the transport's relay (`Transport.relay`), which knows when it is lost:
    under a broker, an open operation without an outbox row has its message in the broker."""
    check_retry_statuses(statuses)
    if not await _bulk_exists(connection, bulk_uuid):
        return None
    retried = _retried(bulk_uuid, statuses, error_codes, error_group, operation_ids)
    return len(await _reopen(connection, retried, now))


async def retry_in_batches(
    database: Database,
    bulk_uuid: str,
    now: datetime,
    statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
    error_codes: Collection[int] | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> int | None:
    """`retry_operations` for bulks of any size: `batch_size` operations per transaction, in
    id order, each batch queued as it is reopened; `progress` is told at the start and after
    each batch."""
    check_retry_statuses(statuses)
    retried = _retried(bulk_uuid, statuses, error_codes)
    async with database.read() as connection:
        if not await _bulk_exists(connection, bulk_uuid):
            return None
        total = (
            await connection.execute(select(func.count()).select_from(operation).where(*retried))
        ).scalar_one()
    if progress is not None:
        progress(0, total)
    reopened, after = 0, 0
    while True:
        async with database.write() as connection:
            # Past the last batch only: an operation that fails again meanwhile (a worker is
            # running) is not retried twice by one command.
            ids = list(
                (
                    await connection.execute(
                        select(operation.c.id)
                        .where(*retried, operation.c.id > after)
                        .order_by(operation.c.id)
                        .limit(batch_size)
                    )
                ).scalars()
            )
            if not ids:
                return reopened
            reopened += len(await _reopen(connection, [operation.c.id.in_(ids), *retried], now))
        after = ids[-1]
        if progress is not None:
            progress(reopened, total)


def _searched_retriable(criteria: SearchCriteria, backend: str) -> list[ColumnElement[bool]]:
    """The operations a search matches that a retry by search reopens: failed ones (2, 3)."""
    return [where_clause(criteria, backend), *_retriable(DEFAULT_RETRY_STATUSES)]


async def searched_retry_topics(
    connection: AsyncConnection, criteria: SearchCriteria, backend: str
) -> dict[str, int]:
    """How many operations `retry_searched` would reopen, by topic (whoever retries needs
    each one's route resource)."""
    query = (
        select(operation.c.topic_name, func.count())
        .select_from(from_clause(criteria))
        .where(*_searched_retriable(criteria, backend))
        .group_by(operation.c.topic_name)
    )
    return {topic: int(n) for topic, n in await connection.execute(query)}


async def retry_searched(
    database: Database,
    criteria: SearchCriteria,
    topics: Collection[str],
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Reopen and queue again the failed operations the search matches, of these `topics`
    (those whose resources were checked: an operation of another that fails meanwhile is
    left as it is), `batch_size` per transaction in id order, so that memory and each
    transaction stay small whatever the number of matches; answers how many. Each batch
    writes in the order every writer does: operations, counts, bulks, messages."""
    if not topics:
        return 0
    retriable = [
        *_searched_retriable(criteria, database.backend),
        operation.c.topic_name.in_(sorted(topics)),
    ]
    reopened, after = 0, 0
    while True:
        async with database.write() as connection:
            # Past the last batch only: an operation failing again meanwhile (a worker is
            # running) is not retried twice by one request.
            found = await connection.execute(
                select(operation.c.id)
                .select_from(from_clause(criteria))
                .where(*retriable, operation.c.id > int64_value(after))
                .order_by(operation.c.id)
                .limit(batch_size)
            )
            ids = list(found.scalars())
            if not ids:
                return reopened
            again = [operation.c.id.in_(ids), *_retriable(DEFAULT_RETRY_STATUSES)]
            reopened += len(await _reopen(connection, again, now))
        after = ids[-1]


async def mark_incomplete_operations(
    database: Database, now: datetime, timeout: timedelta, batch_size: int = BATCH_SIZE
) -> int:
    """Magento's `bulk_mark_incomplete_operations_as_failed`: operations started more than
    `timeout` ago and still open become retriably failed, `Unknown Error`; their messages go,
    so that no worker takes them up again. Never-started operations are left alone."""
    cutoff = now - timeout
    marked = 0
    while True:
        async with database.write() as connection:
            locked = await _lock_open(connection, operation.c.started_at <= cutoff, batch_size)
            if not locked:
                return marked
            ids = list(locked)
            updated = await connection.execute(
                update(operation)
                .where(operation.c.id.in_(ids), operation.c.status == _OPEN)
                .values(
                    status=_RETRIABLY_FAILED,
                    error_code=0,
                    result_message=UNKNOWN_ERROR,
                    updated_at=now,
                )
            )
            # Rows locked in the order recording results locks them (operations, counters,
            # bulks, then queue messages; webhook events are inserts): two such transactions
            # cannot deadlock.
            await count_finished(
                connection, [(topic, _RETRIABLY_FAILED) for _, topic in locked.values()], now
            )
            await tally(
                connection,
                added=[(uuid, topic, _RETRIABLY_FAILED) for uuid, topic in locked.values()],
                removed=[(uuid, topic, _OPEN) for uuid, topic in locked.values()],
            )
            bulks = await bump_bulks_of(connection, ids)
            await record_completions(connection, bulks, now)
            await record_changes(connection, ids, now)
            await delete_messages_of_operations(connection, ids)
        # Locked, none of them was made final by another transaction meanwhile.
        marked += updated.rowcount


@dataclass(frozen=True, slots=True)
class Cleaned:
    bulks: int
    operations: int


def expired_bulks(now: datetime, lifetime: timedelta | None) -> ColumnElement[bool]:
    """The bulks past their retention at `now`: their own (`expires_at`, chosen when they
    were submitted) or else `lifetime` from their start (None: kept for ever)."""
    own = bulk.c.expires_at <= now
    if lifetime is None:
        return own
    return or_(own, and_(bulk.c.expires_at.is_(None), bulk.c.start_time <= now - lifetime))


async def cleanup_bulks(
    database: Database,
    expired: ColumnElement[bool] | None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Cleaned:
    """Magento's `bulk_cleanup`: delete the `expired` bulks (every bulk when None, else see
    `expired_bulks`), with their operations and messages. Each transaction deletes whole bulks,
    as many as hold about `batch_size` operations (at least one bulk), so that a bulk never
    stays behind with part of its operations: searches count a bulk's operations by its
    `operation_rows`. `progress` is told the bulks deleted, at the start and after each
    transaction.

    Safe with several workers cleaning at once: each batch is read without locks, then
    deleted by primary key, so two cleanups of the same rows take their locks in the same
    order and just wait for each other; the counts are of rows deleted."""
    which = [] if expired is None else [expired]
    if progress is not None:
        async with database.read() as connection:
            query = select(func.count()).select_from(bulk).where(*which)
            total = (await connection.execute(query)).scalar_one()
        progress(0, total)
    cleaned = Cleaned(bulks=0, operations=0)
    while True:
        async with database.write() as connection:
            found = (
                await connection.execute(
                    select(bulk.c.id, bulk.c.uuid, bulk.c.operation_rows)
                    .where(*which)
                    .order_by(bulk.c.id)
                    .limit(batch_size)
                )
            ).all()
            batch = _up_to(found, batch_size)
            if batch:
                deleted = await delete_bulks(connection, [(b.id, b.uuid) for b in batch])
                cleaned = Cleaned(
                    bulks=cleaned.bulks + deleted.bulks,
                    operations=cleaned.operations + deleted.operations,
                )
        if batch and progress is not None:
            progress(cleaned.bulks, total)
        if len(batch) == len(found) < batch_size:
            return cleaned


async def delete_bulks(connection: AsyncConnection, bulks: Sequence[tuple[int, str]]) -> Cleaned:
    """Delete these bulks (id, uuid), their operations first, in the caller's transaction;
    their messages in the database's queue and acknowledgements go with them (cascades). A
    broker's messages stay: the worker that receives one finds no open operation and drops
    it, as a duplicate delivery. Each deletion is a change of the feed."""
    uuids = [uuid for _, uuid in bulks]
    await record_deletions(connection, [row_id for row_id, _ in bulks], utc_now())
    operations = await connection.execute(delete(operation).where(operation.c.bulk_uuid.in_(uuids)))
    # Before the bulks (their cascade would too): the order every writer locks in.
    await connection.execute(delete(operation_tally).where(operation_tally.c.bulk_uuid.in_(uuids)))
    deleted = await connection.execute(
        delete(bulk).where(bulk.c.id.in_([row_id for row_id, _ in bulks]))
    )
    return Cleaned(bulks=deleted.rowcount, operations=operations.rowcount)


def _up_to(bulks: Sequence[AnyRow], operations: int) -> Sequence[AnyRow]:
    """The first bulks, as many as hold `operations` operations together, at least one."""
    total = 0
    for taken, found in enumerate(bulks):
        total += found.operation_rows
        if total >= operations:
            return bulks[: taken + 1]
    return bulks


async def bulk_status(connection: AsyncConnection, bulk_uuid: str) -> BulkStatus | None:
    """The bulk's derived status, or None for an unknown bulk."""
    found = (
        await connection.execute(select(bulk.c.operation_count).where(bulk.c.uuid == bulk_uuid))
    ).first()
    if found is None:
        return None
    counts = await connection.execute(
        select(operation.c.status, func.count())
        .where(operation.c.bulk_uuid == bulk_uuid)
        .group_by(operation.c.status)
    )
    return derive_bulk_status(found.operation_count, {status: n for status, n in counts.all()})
