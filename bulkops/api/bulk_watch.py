"""The bulks followed by server-sent events in this process, watched by one poller: however
many listeners, each poll is one read of the versions of every bulk listened to
(`bulkops.store.bulk_versions`), then one count by status of those whose version changed,
handed to each of their listeners. An idle listener costs an entry in a dict and a sleeping
coroutine; no query of its own.

The poller runs while anyone listens, and stops with the last listener."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bulkops.metrics import instruments
from bulkops.status import BulkStatus, derive_bulk_status
from bulkops.store import bulk_log
from bulkops.store.bulk_versions import versions_of
from bulkops.store.bulks import find_bulk
from bulkops.store.database import Database, is_unavailable

log = logging.getLogger("bulkops.api")


@dataclass(frozen=True, slots=True)
class Progress:
    """A bulk's operations counted by status at one of its versions; `status` None: the bulk
    is gone."""

    version: int
    status: BulkStatus | None
    operation_count: int
    counts: dict[int, int]

    @property
    def finished(self) -> bool:
        return self.status in (
            BulkStatus.FINISHED_SUCCESSFULLY,
            BulkStatus.FINISHED_WITH_FAILURE,
            None,
        )


GONE = Progress(version=-1, status=None, operation_count=0, counts={})


class Listener:
    """Told the latest progress of its bulk; only the latest is kept."""

    def __init__(self) -> None:
        self._told = asyncio.Event()
        self._latest: Progress | None = None

    def tell(self, progress: Progress) -> None:
        self._latest = progress
        self._told.set()

    async def next(self, timeout: float) -> Progress | None:
        """The progress told since the last call, or None after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._told.wait(), timeout)
        except TimeoutError:
            return None
        self._told.clear()
        return self._latest


async def read_progress(database: Database, uuid: str) -> Progress:
    """The bulk's progress now, read as the watcher reads it (version first)."""
    async with database.read() as connection:
        found = await find_bulk(connection, uuid)
        if found is None:
            return GONE
        counts = (await bulk_log.status_counts(connection, [uuid]))[uuid]
    return _progress(found["version"], found["operation_count"], counts)


def _progress(version: int, operation_count: int, counts: dict[int, int]) -> Progress:
    status = derive_bulk_status(operation_count, counts)
    return Progress(version, status, operation_count, counts)


class BulkWatch:
    def __init__(self, database: Database, interval: float) -> None:
        self.database = database
        self.interval = interval
        self._listeners: dict[str, set[Listener]] = {}
        self._versions: dict[str, int] = {}
        """The version each watched bulk was last told at."""
        self._poller: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return sum(len(listening) for listening in self._listeners.values())

    @contextmanager
    def listen(self, uuid: str) -> Iterator[Listener]:
        """A listener of the bulk while in the block."""
        listener = Listener()
        self._listeners.setdefault(uuid, set()).add(listener)
        # Read again at the next poll: the newcomer may have read an older version than the
        # one last told.
        self._versions.pop(uuid, None)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_while_listened())
        instruments.event_listeners.inc()
        try:
            yield listener
        finally:
            instruments.event_listeners.dec()
            listening = self._listeners[uuid]
            listening.discard(listener)
            if not listening:
                del self._listeners[uuid]
                self._versions.pop(uuid, None)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def _poll_while_listened(self) -> None:
        try:
            while self._listeners:
                try:
                    await self._poll()
                except Exception as error:
                    if not is_unavailable(error):
                        log.exception("watching bulks for their events failed")
                    # Listeners keep waiting (heartbeats go on): the next poll tells them.
                await asyncio.sleep(self.interval)
        finally:
            self._poller = None

    async def _poll(self) -> None:
        watched = list(self._listeners)
        async with self.database.read() as connection:
            versions = await versions_of(connection, watched)
            changed = [
                uuid
                for uuid in watched
                if uuid not in versions or self._versions.get(uuid) != versions[uuid].version
            ]
            found = [uuid for uuid in changed if uuid in versions]
            counts = await bulk_log.status_counts(connection, found)
        for uuid in changed:
            if uuid in versions:
                row = versions[uuid]
                progress = _progress(row.version, row.operation_count, counts[uuid])
                self._versions[uuid] = row.version
            else:
                progress = GONE
            for listener in self._listeners.get(uuid, ()):
                listener.tell(progress)
