"""Completion webhooks in the database: the event a bulk's completion writes, the claims of the
workers that deliver them, each attempt's outcome, and the delivery log.

An event is written in the transaction that makes the bulk's last open operation final, after
its bulk's row was updated (`bump_bulks`), so under that row's lock: of two transactions
finishing a bulk's last operations at once, the second sees the first's committed, and only
it finds the bulk complete. A retry reopens the bulk; when it completes again, that is a new
event with a new id. Rows go with their bulk."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import BulkStatus, OperationStatus, derive_bulk_status
from bulkops.store.rows import AnyRow
from bulkops.store.tables import bulk, operation, webhook_delivery

EVENT_TYPE = "bulk.completed"
_FINISHED = (BulkStatus.FINISHED_SUCCESSFULLY, BulkStatus.FINISHED_WITH_FAILURE)
_ERROR_LENGTH = 255
_OPEN = int(OperationStatus.OPEN)


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def completion_payload(
    bulk_uuid: str, operation_count: int, counts: dict[int, int], now: datetime
) -> str:
    """The event's body, as Standard Webhooks shape one: its type, when, and its data (the
    counts by status as `operation-status/:status` answers them)."""
    data = {
        "bulk_uuid": bulk_uuid,
        "status": int(derive_bulk_status(operation_count, counts)),
        "operation_count": operation_count,
        "operations_by_status": {str(int(s)): counts.get(s, 0) for s in OperationStatus},
        "finished_at": _time(now),
    }
    event = {"type": EVENT_TYPE, "timestamp": now.isoformat() + "Z", "data": data}
    return orjson.dumps(event).decode()


async def record_completions(
    connection: AsyncConnection, bulk_uuids: Collection[str], now: datetime
) -> int:
    """An event for each of these bulks (whose operations the caller's transaction changed,
    and whose rows it holds) that has a callback URL and is now finished; answers how many."""
    if not bulk_uuids:
        return 0
    targets = (
        await connection.execute(
            select(bulk.c.uuid, bulk.c.callback_url, bulk.c.operation_count).where(
                bulk.c.uuid.in_(sorted(bulk_uuids)), bulk.c.callback_url.is_not(None)
            )
        )
    ).all()
    events = []
    for target in targets:
        # Most results leave operations open: one step of an index says so, before any count.
        still_open = await connection.execute(
            select(operation.c.id)
            .where(operation.c.bulk_uuid == target.uuid, operation.c.status == _OPEN)
            .limit(1)
        )
        if still_open.first() is not None:
            continue
        found = await connection.execute(
            select(operation.c.status, func.count())
            .where(operation.c.bulk_uuid == target.uuid)
            .group_by(operation.c.status)
        )
        counts = {int(status): n for status, n in found.all()}
        if derive_bulk_status(target.operation_count, counts) not in _FINISHED:
            continue
        events.append(
            {
                "event_id": f"msg_{uuid.uuid4().hex}",
                "bulk_uuid": target.uuid,
                "url": target.callback_url,
                "payload": completion_payload(target.uuid, target.operation_count, counts, now),
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    if events:
        await connection.execute(insert(webhook_delivery), events)
    return len(events)


_CLAIMED = (
    webhook_delivery.c.id,
    webhook_delivery.c.event_id,
    webhook_delivery.c.url,
    webhook_delivery.c.payload,
    webhook_delivery.c.attempts,
    webhook_delivery.c.created_at,
)


async def claim_due(
    connection: AsyncConnection, owner: str, limit: int, now: datetime, until: datetime
) -> Sequence[AnyRow]:
    """Up to `limit` pending deliveries due at `now`, claimed by `owner` until `until`: no one
    else attempts them meanwhile (rows another transaction holds are skipped, as the queue's
    leases skip them); a dead worker's claim simply runs out."""
    due = (
        await connection.execute(
            select(*_CLAIMED)
            .where(
                webhook_delivery.c.next_attempt_at <= now,
                webhook_delivery.c.state == DeliveryState.PENDING.value,
            )
            .order_by(webhook_delivery.c.next_attempt_at, webhook_delivery.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if due:
        await connection.execute(
            update(webhook_delivery)
            .where(webhook_delivery.c.id.in_([row.id for row in due]))
            .values(next_attempt_at=until, lease_owner=owner)
        )
    return due


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome: delivered, or when to try again (None: never, failed)."""

    delivery_id: int
    at: datetime
    status_code: int | None
    error: str | None
    delivered: bool
    retry_at: datetime | None


async def record_attempts(
    connection: AsyncConnection, owner: str, attempts: Sequence[Attempt]
) -> None:
    """Each attempt's outcome, on its delivery if `owner` still claims it (a claim that ran
    out meanwhile belongs to whoever claimed the row next)."""
    for attempt in sorted(attempts, key=lambda a: a.delivery_id):
        if attempt.delivered:
            state, values = DeliveryState.DELIVERED, {"delivered_at": attempt.at}
        else:
            failed = attempt.retry_at is None
            state, values = DeliveryState.FAILED if failed else DeliveryState.PENDING, {}
        await connection.execute(
            update(webhook_delivery)
            .where(
                webhook_delivery.c.id == attempt.delivery_id,
                webhook_delivery.c.lease_owner == owner,
                webhook_delivery.c.state == DeliveryState.PENDING.value,
            )
            .values(
                state=state.value,
                attempts=webhook_delivery.c.attempts + 1,
                next_attempt_at=None if attempt.delivered else attempt.retry_at,
                lease_owner=None,
                last_attempt_at=attempt.at,
                last_status_code=attempt.status_code,
                last_error=None if attempt.error is None else attempt.error[:_ERROR_LENGTH],
                **values,
            )
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta
    cap: timedelta
    max_attempts: int
    max_age: timedelta


def next_attempt(
    attempts: int, created_at: datetime, now: datetime, policy: RetryPolicy
) -> datetime | None:
    """When to try again after the `attempts`-th attempt failed at `now`; None: never."""
    if attempts >= policy.max_attempts or now - created_at >= policy.max_age:
        return None
    # Doubling past 2**20 passes any cap; beyond, the product would overflow a timedelta.
    delay = min(policy.base * (1 << min(attempts - 1, 20)), policy.cap)
    return now + delay


async def bulk_deliveries(connection: AsyncConnection, bulk_uuid: str) -> list[dict[str, Any]]:
    """The delivery log of a bulk, oldest first, as the API shows it."""
    rows = await connection.execute(
        select(webhook_delivery)
        .where(webhook_delivery.c.bulk_uuid == bulk_uuid)
        .order_by(webhook_delivery.c.id)
    )
    return [
        {
            "id": row.event_id,
            "type": EVENT_TYPE,
            "url": row.url,
            "state": row.state,
            "attempts": row.attempts,
            "created_at": _time(row.created_at),
            "last_attempt_at": _optional_time(row.last_attempt_at),
            "last_status_code": row.last_status_code,
            "last_error": row.last_error,
            "next_attempt_at": (
                _optional_time(row.next_attempt_at)
                if row.state == DeliveryState.PENDING.value
                else None
            ),
            "delivered_at": _optional_time(row.delivered_at),
        }
        for row in rows
    ]


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else _time(moment)
