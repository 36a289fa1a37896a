"""The database pool's use, per process, kept current as connections come and go."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from bulkops.metrics import instruments
from bulkops.store.database import Database


def watch_pool(database: Database) -> None:
    pool = database.engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return  # a pool that keeps no count (SQLite's in-memory databases)
    instruments.pool_size.set(pool.size())

    # Counted by the events themselves: the pool's own count moves after "checkin" fires.
    event.listen(pool, "checkout", lambda *_: instruments.pool_checked_out.inc())
    event.listen(pool, "checkin", lambda *_: instruments.pool_checked_out.dec())
