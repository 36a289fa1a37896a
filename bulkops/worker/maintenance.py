"""The periodic jobs a worker runs besides processing: Magento's cron jobs, and the relay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bulkops.queue.transport import Transport
from bulkops.settings import Settings
from bulkops.store import finished
from bulkops.store.changes import prune_changes
from bulkops.store.database import Database, is_unavailable
from bulkops.store.idempotency import prune_keys
from bulkops.store.lifecycle import (
    BATCH_SIZE,
    cleanup_bulks,
    expired_bulks,
    mark_incomplete_operations,
    utc_now,
)

log = logging.getLogger("bulkops.worker")


def bulk_lifetime(settings: Settings) -> timedelta | None:
    """How long bulks are kept; None (keep them forever) when the setting is 0 or less,
    rather than Magento's reading of 0, which deletes every bulk each minute."""
    if settings.bulk_lifetime_days <= 0:
        return None
    return timedelta(days=settings.bulk_lifetime_days)


class Maintenance:
    def __init__(
        self,
        database: Database,
        transport: Transport,
        interval_seconds: float,
        open_timeout: timedelta,
        lifetime: timedelta | None,
        clock: Callable[[], datetime] = utc_now,
        key_retention: timedelta | None = None,
        change_retention: timedelta | None = None,
    ) -> None:
        self.database = database
        self.transport = transport
        self.interval = interval_seconds
        self.open_timeout = open_timeout
        self.lifetime = lifetime
        self.clock = clock
        self.key_retention = key_retention
        """How long idempotency keys are kept; None: until their bulk is deleted."""
        self.change_retention = change_retention
        """How long the change feed keeps a change; None: for ever."""

    @classmethod
    def from_settings(
        cls, settings: Settings, database: Database, transport: Transport
    ) -> Maintenance:
        return cls(
            database,
            transport,
            interval_seconds=settings.maintenance_interval_seconds,
            open_timeout=timedelta(hours=settings.open_operation_timeout_hours),
            lifetime=bulk_lifetime(settings),
            key_retention=timedelta(hours=settings.idempotency_retention_hours),
            change_retention=timedelta(hours=settings.change_retention_hours),
        )

    async def relay(self) -> None:
        published = await self.transport.relay()
        if published:
            log.info("relay: published %d open operations", published)

    async def run_forever(self) -> None:
        """The jobs now (but the relay, which the worker runs before it starts), then all of
        them every interval."""
        pruning = (self._prune_finished, self._prune_keys, self._prune_changes)
        await self._run((self._mark_incomplete, self._cleanup, *pruning))
        while True:
            await asyncio.sleep(self.interval)
            await self._run((self.relay, self._mark_incomplete, self._cleanup, *pruning))

    async def _run(self, jobs: tuple[Callable[[], Awaitable[None]], ...]) -> None:
        # Each job on its own: one failing does not keep the others from running.
        for job in jobs:
            name = job.__name__.strip("_")
            try:
                await job()
            except Exception as error:
                if is_unavailable(error):
                    self.database.outage.failed(error, f"maintenance job {name}")
                else:
                    log.exception("maintenance job %s failed", name)

    async def _mark_incomplete(self) -> None:
        marked = await mark_incomplete_operations(self.database, self.clock(), self.open_timeout)
        if marked:
            log.warning("marked %d operations open too long as failed (Unknown Error)", marked)

    async def _cleanup(self) -> None:
        # Without a lifetime, bulks submitted with their own retention still expire.
        cleaned = await cleanup_bulks(self.database, expired_bulks(self.clock(), self.lifetime))
        if cleaned.bulks or cleaned.operations:
            log.info(
                "cleanup: deleted %d bulks and %d operations", cleaned.bulks, cleaned.operations
            )

    async def _prune_finished(self) -> None:
        # The dashboard's counters of finished operations: whatever the bulks' lifetime.
        async with self.database.write() as connection:
            await finished.prune(connection, self.clock())

    async def _prune_keys(self) -> None:
        if self.key_retention is None:
            return
        pruned = await prune_keys(self.database, self.clock() - self.key_retention, BATCH_SIZE)
        if pruned:
            log.info("deleted %d idempotency keys past their retention", pruned)

    async def _prune_changes(self) -> None:
        if self.change_retention is None:
            return
        pruned = await prune_changes(
            self.database, self.clock() - self.change_retention, BATCH_SIZE
        )
        if pruned:
            log.info("deleted %d changes of the feed past their retention", pruned)
