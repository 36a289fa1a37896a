"""The database's figures of `/metrics`, read when scraped, through the dashboard's queries
(index-served, under the statement time limit of reads), and kept `cache_seconds` so that
scrapes in a tight loop read the database once in that time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bulkops.store.dashboard import open_operations, queued_messages
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now


@dataclass(frozen=True, slots=True)
class Figures(Collector):
    queue_due: int
    queue_later: int
    queue_blocked: int
    oldest_due_seconds: float
    open_operations: int
    oldest_open_seconds: float

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue = GaugeMetricFamily(
            "bulkops_queue_messages",
            "Messages of the queue table (under RabbitMQ, of the outbox), by state: `due` "
            "waiting for a worker, `later` leased or delayed, `blocked` behind their order "
            "group.",
            labels=["state"],
        )
        queue.add_metric(["due"], self.queue_due)
        queue.add_metric(["later"], self.queue_later)
        queue.add_metric(["blocked"], self.queue_blocked)
        yield queue
        yield GaugeMetricFamily(
            "bulkops_queue_oldest_due_age_seconds",
            "How long the message due longest has been due; 0 when none is.",
            value=self.oldest_due_seconds,
        )
        yield GaugeMetricFamily(
            "bulkops_operations_open",
            "Operations open (accepted, not yet final).",
            value=self.open_operations,
        )
        yield GaugeMetricFamily(
            "bulkops_operations_oldest_open_age_seconds",
            "Age of the bulk of the oldest open operation; 0 when none is open.",
            value=self.oldest_open_seconds,
        )


class CachedFigures:
    """One process's figures, read again once `cache_seconds` old; scrapes arriving while
    they are read wait for that one reading."""

    def __init__(self, database: Database, cache_seconds: float) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self._lock = asyncio.Lock()
        self._figures: Figures | None = None
        self._read_at = 0.0

    async def current(self) -> Figures:
        async with self._lock:
            if self._figures is None or time.monotonic() - self._read_at >= self.cache_seconds:
                self._figures = await self._read()
                self._read_at = time.monotonic()
            return self._figures

    async def _read(self) -> Figures:
        now = utc_now()
        async with self.database.read() as connection:
            queued = await queued_messages(connection, now)
            opened = await open_operations(connection)
        return Figures(
            queue_due=queued.due,
            queue_later=queued.later,
            queue_blocked=queued.blocked,
            oldest_due_seconds=_age(now, queued.oldest_due),
            open_operations=opened.count,
            oldest_open_seconds=_age(now, opened.oldest_start),
        )


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
