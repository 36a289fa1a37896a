"""Idempotency keys of submissions: the one a caller used, written with its bulk, and the
pruning of those past their retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.database import Database
from bulkops.store.tables import idempotency_key


@dataclass(frozen=True, slots=True)
class KeyScope:
    """A caller's key: keys of different callers never meet."""

    user_type: int
    user_id: int
    key: str

    def conditions(self) -> list[ColumnElement[bool]]:
        return [
            idempotency_key.c.user_type == self.user_type,
            idempotency_key.c.user_id == self.user_id,
            idempotency_key.c.idempotency_key == self.key,
        ]


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    response: str


async def find_key(
    connection: AsyncConnection, scope: KeyScope, used_after: datetime
) -> StoredKey | None:
    """The key's request and answer, if it was used after `used_after` (older ones are
    past their retention: as if never used)."""
    query = select(idempotency_key.c.request_hash, idempotency_key.c.response).where(
        *scope.conditions(), idempotency_key.c.created_at > used_after
    )
    found = (await connection.execute(query)).first()
    return None if found is None else StoredKey(found.request_hash, found.response)


async def insert_key(
    connection: AsyncConnection,
    scope: KeyScope,
    used_after: datetime,
    request_hash: str,
    bulk_uuid: str,
    response: str,
    now: datetime,
) -> None:
    """The key, in the caller's transaction (that of its bulk), in place of any use of it
    past its retention. A key in use raises the driver's IntegrityError (on PostgreSQL and
    MySQL once the transaction that wrote it has ended: the unique index holds this one back
    until then)."""
    await connection.execute(
        delete(idempotency_key).where(
            *scope.conditions(), idempotency_key.c.created_at <= used_after
        )
    )
    await connection.execute(
        insert(idempotency_key).values(
            user_type=scope.user_type,
            user_id=scope.user_id,
            idempotency_key=scope.key,
            request_hash=request_hash,
            bulk_uuid=bulk_uuid,
            response=response,
            created_at=now,
        )
    )


async def prune_keys(database: Database, used_before: datetime, batch_size: int) -> int:
    """Delete keys used at or before `used_before`, `batch_size` per transaction; answers
    how many."""
    pruned = 0
    while True:
        async with database.write() as connection:
            ids = list(
                (
                    await connection.execute(
                        select(idempotency_key.c.id)
                        .where(idempotency_key.c.created_at <= used_before)
                        .order_by(idempotency_key.c.id)
                        .limit(batch_size)
                    )
                ).scalars()
            )
            if ids:
                deleted = await connection.execute(
                    delete(idempotency_key).where(idempotency_key.c.id.in_(ids))
                )
                pruned += deleted.rowcount
        if len(ids) < batch_size:
            return pruned
