"""Failed operations resubmitted with corrected items: which of a bulk's operations may be,
and the link from each one to the operation that took its item over."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.lifecycle import DEFAULT_RETRY_STATUSES
from bulkops.store.tables import operation
from bulkops.store.types import in_int64

FAILED_STATUSES = DEFAULT_RETRY_STATUSES
"""What may be resubmitted: operations failed (2, retriably; 3, not), as what may be retried."""


# Keys per IN list: every backend takes that many bound parameters.
IN_BATCH = 500


def _batches(keys: Sequence[int]) -> Iterator[Sequence[int]]:
    # IN lists of a bounded length: every backend takes them as bound parameters.
    for start in range(0, len(keys), IN_BATCH):
        yield keys[start : start + IN_BATCH]


async def topics_by_key(
    connection: AsyncConnection, bulk_uuid: str, keys: Sequence[int]
) -> dict[int, str]:
    """The topic of each of the bulk's operations with these keys (those that exist)."""
    found: dict[int, str] = {}
    for batch in _batches(keys):
        query = select(operation.c.operation_key, operation.c.topic_name).where(
            operation.c.bulk_uuid == bulk_uuid, operation.c.operation_key.in_(in_int64(batch))
        )
        for key, topic in await connection.execute(query):
            found[int(key)] = topic
    return found


async def not_resubmittable(
    connection: AsyncConnection, bulk_uuid: str, keys: Sequence[int]
) -> list[int]:
    """The keys among `keys` of operations that are not failed, or were resubmitted already."""
    refused: list[int] = []
    for batch in _batches(keys):
        query = (
            select(operation.c.operation_key)
            .where(
                operation.c.bulk_uuid == bulk_uuid,
                operation.c.operation_key.in_(in_int64(batch)),
                or_(
                    operation.c.status.not_in(in_int64(FAILED_STATUSES)),
                    operation.c.resubmitted_to_bulk.is_not(None),
                ),
            )
            .order_by(operation.c.operation_key)
        )
        refused += (await connection.execute(query)).scalars()
    return sorted(refused)


async def link(
    connection: AsyncConnection,
    bulk_uuid: str,
    links: Sequence[tuple[int, int]],
    new_bulk_uuid: str,
) -> list[int]:
    """Each (old key, new key): the old bulk's operation now says where its item went, if it
    is still failed and was not resubmitted meanwhile (by a request that committed first).
    Answers the old keys that could not be linked so: the caller rolls back."""
    if not links:
        return []
    # In key order: two requests linking the same operations lock them in the same order.
    ordered = sorted(links)
    statement = (
        update(operation)
        .where(
            operation.c.bulk_uuid == bulk_uuid,
            operation.c.operation_key == bindparam("old_key"),
            # Not IN: an executemany takes no list parameter.
            or_(*(operation.c.status == int(status) for status in FAILED_STATUSES)),
            operation.c.resubmitted_to_bulk.is_(None),
        )
        .values(resubmitted_to_bulk=new_bulk_uuid, resubmitted_to_key=bindparam("new_key"))
    )
    await connection.execute(statement, [{"old_key": old, "new_key": new} for old, new in ordered])
    old_keys = [old for old, _ in ordered]
    unlinked: list[int] = []
    for batch in _batches(old_keys):
        query = select(operation.c.operation_key).where(
            operation.c.bulk_uuid == bulk_uuid,
            operation.c.operation_key.in_(in_int64(batch)),
            or_(
                operation.c.resubmitted_to_bulk.is_(None),
                operation.c.resubmitted_to_bulk != new_bulk_uuid,
            ),
        )
        unlinked += (await connection.execute(query)).scalars()
    return sorted(unlinked)
