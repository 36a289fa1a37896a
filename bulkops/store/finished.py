"""Operations made final, counted by minute, topic and status (`bulkops_finished_minute`):
the dashboard's operations finished per minute and failure rate by topic over the last day,
read from at most a day of counter rows rather than from the operations.

Every transaction that makes operations final (results recorded, operations open too long
marked failed) adds them here, so the counts are exactly the transitions committed: a result
recorded twice changes no operation and counts nothing. The process's `/metrics` counter
of finished operations counts the same, once committed. Rejected operations (status 5) are
final from their submission on and never processed: they are not counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.metrics import instruments
from bulkops.status import FAILED
from bulkops.store.database import after_commit
from bulkops.store.tables import finished_minute
from bulkops.store.types import in_int64

KEPT = timedelta(days=7)
"""How long counter rows are kept: the dashboard reads the last day only."""

_KEY = ("minute", "topic_name", "status")
_COUNT = finished_minute.c.finished
_FAILED_COUNT = case((finished_minute.c.status.in_(in_int64(FAILED)), _COUNT), else_=0)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def count_finished(
    connection: AsyncConnection, finished: Iterable[tuple[str, int]], now: datetime
) -> None:
    """Add operations made final at `now`, each given as (topic, final status), in the
    caller's transaction. One upsert adds to each counter in the database itself, so workers
    counting at once lose nothing; the rows go in key order, so that two transactions lock
    the counters they share in the same order and cannot deadlock on them."""
    counts = Counter(finished)
    if not counts:
        return
    minute = minute_of(now)
    rows = [
        {"minute": minute, "topic_name": topic, "status": status, "finished": n}
        for (topic, status), n in sorted(counts.items())
    ]
    await connection.execute(_upsert(connection.dialect.name, rows))
    after_commit(connection, partial(_count_in_process, counts))


def _count_in_process(counts: Counter[tuple[str, int]]) -> None:
    """The same counts in the process's `/metrics` counter, once they are committed."""
    for (topic, status), n in counts.items():
        instruments.finished.labels(topic, str(status)).inc(n)


def _upsert(dialect: str, rows: Sequence[dict[str, Any]]) -> Any:
    if dialect in ("mysql", "mariadb"):
        on_mysql = mysql.insert(finished_minute).values(rows)
        return on_mysql.on_duplicate_key_update(finished=_COUNT + on_mysql.inserted.finished)
    on_conflict = (postgresql if dialect == "postgresql" else sqlite).insert(finished_minute)
    on_conflict = on_conflict.values(rows)
    return on_conflict.on_conflict_do_update(
        index_elements=list(_KEY), set_={"finished": _COUNT + on_conflict.excluded.finished}
    )


@dataclass(frozen=True, slots=True)
class Minute:
    minute: datetime
    finished: int
    failed: int


async def per_minute(connection: AsyncConnection, since: datetime) -> list[Minute]:
    """Operations finished, and of them failed, in each minute from `since` on that has any,
    in time order (the primary key's range)."""
    query = (
        select(finished_minute.c.minute, func.sum(_COUNT), func.sum(_FAILED_COUNT))
        .where(finished_minute.c.minute >= since)
        .group_by(finished_minute.c.minute)
        .order_by(finished_minute.c.minute)
    )
    return [
        Minute(minute, int(finished), int(failed_count))
        for minute, finished, failed_count in await connection.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class TopicFailures:
    topic_name: str
    finished: int
    failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


async def by_topic(connection: AsyncConnection, since: datetime, limit: int) -> list[TopicFailures]:
    """The topics with the most operations failed since `since`, with how many finished:
    those with failures first, by failures, then the busiest."""
    finished, failed = func.sum(_COUNT), func.sum(_FAILED_COUNT)
    query = (
        select(finished_minute.c.topic_name, finished.label("finished"), failed.label("failed"))
        .where(finished_minute.c.minute >= since)
        .group_by(finished_minute.c.topic_name)
        .order_by(failed.desc(), finished.desc(), finished_minute.c.topic_name)
        .limit(limit)
    )
    return [
        TopicFailures(topic, int(finished_count), int(failed_count))
        for topic, finished_count, failed_count in await connection.execute(query)
    ]


async def prune(connection: AsyncConnection, now: datetime) -> int:
    """Delete the counters older than KEPT; answers how many rows."""
    pruned = await connection.execute(
        delete(finished_minute).where(finished_minute.c.minute < minute_of(now - KEPT))
    )
    return pruned.rowcount
