"""A bulk's version: a counter on its row, bumped in the transaction of every change of one
of its operations that the per-bulk status routes show (status, message, error code,
payloads), so that their ETags change exactly when their answers may.

A counter rather than an aggregate of the operations (their count and latest `updated_at`):
two changes within the same second, such as a retry failing again with another message,
leave such an aggregate as it was. The increment is one UPDATE of the bulk's row, which every
backend serialises with the row's lock, so concurrent workers never lose one; callers change
operations first and bump their bulks after, in uuid order, so that no two transactions wait
for each other's locks in opposite orders.

Readers must read the version before the operations: then what they read is at least as new
as the version, and an ETag never stands for older answers than the one sent with it."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.rows import AnyRow
from bulkops.store.tables import bulk, operation


async def bump_bulks(connection: AsyncConnection, uuids: Collection[str]) -> None:
    """A new version for each of these bulks, in the caller's transaction."""
    if uuids:
        await connection.execute(
            update(bulk)
            .where(bulk.c.uuid == bindparam("bumped"))
            .values(version=bulk.c.version + 1),
            [{"bumped": uuid} for uuid in sorted(set(uuids))],
        )


async def bump_bulks_of(connection: AsyncConnection, operation_ids: Collection[int]) -> list[str]:
    """A new version for the bulks of these operations (those that still exist); answers
    their uuids."""
    if not operation_ids:
        return []
    found = await connection.execute(
        select(operation.c.bulk_uuid).where(operation.c.id.in_(list(operation_ids))).distinct()
    )
    uuids = list(found.scalars())
    await bump_bulks(connection, uuids)
    return uuids


async def versions_of(connection: AsyncConnection, uuids: Collection[str]) -> dict[str, AnyRow]:
    """The `version` and `operation_count` of those of these bulks that exist, by uuid, in
    one statement per thousand."""
    listed = sorted(set(uuids))
    versions: dict[str, AnyRow] = {}
    for start in range(0, len(listed), 1000):
        found = await connection.execute(
            select(bulk.c.uuid, bulk.c.version, bulk.c.operation_count).where(
                bulk.c.uuid.in_(listed[start : start + 1000])
            )
        )
        versions.update({row.uuid: row for row in found})
    return versions
