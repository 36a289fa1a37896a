"""A handler that kills its `bulkops worker` process on every delivery: after
BULKOPS_MAX_DELIVERIES deliveries its operation is abandoned (failed, status 2) instead of being
delivered forever, on either transport, and the worker that abandons it goes on working."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests import storage, test_worker
from tests.servers import start_bulkops
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

# The topics of tests/handler_fixtures/fatal.py and noop.py (not imported here: importing
# them registers their routes in this process).
FATAL = "async.tests.api.fatalinterface.run.post"
NOOP = "async.tests.api.noopinterface.run.post"
POISONED = "e0000000-0000-4000-8000-000000000001"
HEALTHY = "e0000000-0000-4000-8000-000000000002"
MAX_DELIVERIES = 2
EXIT_CODE = 70
"""The fatal handler's `os._exit` status."""


def add_bulk(database_url: str, uuid: str, topic: str, size: int) -> None:
    async def run() -> None:
        database = Database(database_url)
        try:
            await upgrade(database)
            items: list[object] = [{"n": n} for n in range(size)]
            await test_worker.add_bulk(database, items, uuid=uuid, topic=topic)
        finally:
            await database.dispose()

    asyncio.run(run())


def statuses(database_url: str, uuid: str) -> list[tuple[int, str | None, int | None]]:
    return storage.query(
        database_url,
        "SELECT status, result_message, error_code FROM bulkops_operation "
        f"WHERE bulk_uuid = '{uuid}' ORDER BY id",
    )


def test_an_operation_that_kills_every_worker_is_abandoned(
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    queue_settings: dict[str, str],
) -> None:
    calls = tmp_path / "calls"
    add_bulk(database_url, POISONED, FATAL, 1)
    settings = {
        "DATABASE_URL": database_url,
        "HANDLER_MODULES": '["tests.handler_fixtures.fatal", "tests.handler_fixtures.noop"]',
        "DEMO_CUSTOMERS": "false",
        "MAX_DELIVERIES": str(MAX_DELIVERIES),
        "LEASE_SECONDS": "1",
        "WORKER_POLL_SECONDS": "0.05",
        # The relay publishes the next bulk (written to the outbox by this test, not by an
        # API process, which would publish it itself) soon after it is committed.
        "MAINTENANCE_INTERVAL_SECONDS": "0.2",
    } | queue_settings

    def abandoned() -> bool:
        return statuses(database_url, POISONED)[0][0] != 4

    workers: list[subprocess.Popen[bytes]] = []
    while not abandoned():
        assert len(workers) <= MAX_DELIVERIES, "delivered past the limit"
        worker = start_bulkops(
            ["worker"],
            tmp_path,
            tmp_path / f"worker-{len(workers)}.log",
            settings,
            {"FATAL_HANDLER_CALLS": str(calls)},
        )
        processes.append(worker)
        workers.append(worker)
        wait_for(
            lambda: worker.poll() is not None or abandoned(),  # noqa: B023 (called at once)
            60,
            "the worker to die or to abandon the operation",
        )

    assert [worker.returncode for worker in workers] == [EXIT_CODE] * MAX_DELIVERIES + [None]
    assert len(calls.read_text().splitlines()) == MAX_DELIVERIES
    assert statuses(database_url, POISONED) == [
        (2, f"The operation was abandoned after {MAX_DELIVERIES} deliveries.", 0)
    ]

    # The worker that abandoned it processes what comes next.
    add_bulk(database_url, HEALTHY, NOOP, 3)
    wait_for(
        lambda: {status for status, _, _ in statuses(database_url, HEALTHY)} == {1},
        60,
        "the surviving worker to process a new bulk",
    )
    survivor = workers[-1]
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=15) == 0
    assert storage.count(database_url, "SELECT count(*) FROM bulkops_queue_message") == 0
