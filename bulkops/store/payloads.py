"""Stored payloads rewritten in place: sealed again with the newest key after a rotation."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import bindparam, or_, select, update

from bulkops.store.database import Database
from bulkops.store.tables import operation

BATCH_SIZE = 500
"""Operations per transaction: each holds its locks only briefly."""

PAYLOAD_COLUMNS = ("serialized_data", "result_serialized_data")


async def rewrite_payloads(
    database: Database, rewrite: Callable[[str], str], batch_size: int = BATCH_SIZE
) -> int:
    """Replace every stored payload by `rewrite` of it, in id order, a batch per transaction;
    answers how many payloads changed. A payload changed meanwhile (a worker finished its
    operation) is left as the worker wrote it: each write is conditioned on the value read."""
    changed = 0
    after = 0
    while True:
        async with database.write() as connection:
            rows = (
                await connection.execute(
                    select(operation.c.id, *(operation.c[name] for name in PAYLOAD_COLUMNS))
                    .where(
                        operation.c.id > after,
                        or_(*(operation.c[name].is_not(None) for name in PAYLOAD_COLUMNS)),
                    )
                    .order_by(operation.c.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return changed
            after = rows[-1].id
            for name in PAYLOAD_COLUMNS:
                column = operation.c[name]
                updates = [
                    {"row_id": row.id, "read": stored, "written": written}
                    for row in rows
                    if (stored := getattr(row, name)) is not None
                    and (written := rewrite(stored)) != stored
                ]
                if updates:
                    await connection.execute(
                        update(operation)
                        .where(operation.c.id == bindparam("row_id"), column == bindparam("read"))
                        .values({name: bindparam("written")}),
                        updates,
                    )
                changed += len(updates)
