"""A worker process of its own (`bulkops worker`): stops gracefully on SIGTERM or SIGINT, at
once on a second one."""

from __future__ import annotations

import asyncio
import logging
import signal

from bulkops.handlers.loading import close_routes, load_routes
from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from bulkops.worker.worker import Worker

log = logging.getLogger("bulkops.worker")


async def run_worker(settings: Settings, concurrency: int | None, grace_seconds: float) -> None:
    database = Database.from_settings(settings)
    routes = load_routes(settings, database)
    try:
        await upgrade(database)
        worker = Worker.from_settings(settings, database, routes, concurrency=concurrency)
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():
                worker.force_stop()
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        await worker.start()
        log.info("worker started (%d handlers at once)", concurrency or settings.worker_concurrency)
        await stop.wait()
        log.info("stopping: letting operations in progress finish (%.0f s at most)", grace_seconds)
        await worker.stop(grace_seconds)
        log.info("worker stopped")
    finally:
        await close_routes(routes)
        await database.dispose()
