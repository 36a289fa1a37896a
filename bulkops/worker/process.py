"""A worker process of its own (`bulkops worker`): stops gracefully on SIGTERM or SIGINT, at
once on a second one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bulkops.handlers.loading import close_routes, load_routes
from bulkops.heap import freeze_started_process
from bulkops.settings import Settings
from bulkops.store.connection_problems import connection_problem
from bulkops.store.database import Database, is_unavailable
from bulkops.store.migrate import upgrade
from bulkops.worker.worker import Worker

log = logging.getLogger("bulkops.worker")

STARTUP_RETRY_SECONDS = 2.0
"""Pause between attempts to reach a database that is away at start."""


async def run_worker(settings: Settings, concurrency: int | None, grace_seconds: float) -> None:
    database = Database.from_settings(settings)
    routes = load_routes(settings, database)
    worker: Worker | None = None
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set() and worker is not None:
            worker.force_stop()
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        if not await _prepare(database, stop):
            return
        worker = Worker.from_settings(settings, database, routes, concurrency=concurrency)
        await worker.start()
        freeze_started_process()
        log.info("worker started (%d handlers at once)", concurrency or settings.worker_concurrency)
        await stop.wait()
        log.info("stopping: letting operations in progress finish (%.0f s at most)", grace_seconds)
        await worker.stop(grace_seconds)
        log.info("worker stopped")
    finally:
        await close_routes(routes)
        await database.dispose()


async def _prepare(database: Database, stop: asyncio.Event) -> bool:
    """Bring the schema up to date, waiting for the database as long as it is away (a worker
    started before its database, or during an outage); False: told to stop meanwhile. A
    database that waiting will not bring (one that does not exist, a login refused) raises."""
    while not stop.is_set():
        try:
            await upgrade(database)
        except Exception as error:
            problem = connection_problem(database.url, error)
            if not is_unavailable(error) or (problem is not None and problem.lasting):
                raise
            database.outage.failed(error, "cannot start")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STARTUP_RETRY_SECONDS)
            continue
        database.outage.ended()
        return True
    return False
