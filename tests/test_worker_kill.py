"""Real `bulkops worker` processes: one killed with SIGKILL in the middle of a large bulk loses
nothing, and no operation is processed again once final; SIGTERM stops a worker gracefully."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulkops.services.submission import serialized_data
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now
from bulkops.store.migrate import upgrade
from bulkops.store.queue import enqueue_open_operations
from tests import storage
from tests.faults import Figures, Ledger
from tests.servers import start_bulkops
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

# The topic of tests/handler_fixtures/slow.py's route (not imported here: importing it
# registers its route in this process).
TOPIC = "async.tests.api.slowinterface.handle.post"
BULK = "d0000000-0000-4000-8000-000000000001"
CONCURRENCY = 3


@dataclass
class Store:
    url: str
    workdir: Path

    @property
    def calls(self) -> Path:
        """What the slow handler saw, a JSON line per call start and end."""
        return self.workdir / "calls.jsonl"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return storage.query(self.url, sql)

    def count(self, sql: str) -> int:
        return storage.count(self.url, sql)

    def records(self) -> list[dict[str, Any]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def worker(
        self, handler_seconds: float, log_name: str, queue: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A `bulkops worker` with the slow handler, on the `db` queue unless `queue` says."""
        settings = {
            "DATABASE_URL": self.url,
            "HANDLER_MODULES": '["tests.handler_fixtures.slow"]',
            "DEMO_CUSTOMERS": "false",
            "LEASE_SECONDS": "3",
            "WORKER_BATCH_SIZE": "20",
            "WORKER_POLL_SECONDS": "0.05",
        } | (queue or {})
        environment = {
            "SLOW_HANDLER_CALLS": str(self.calls),
            "SLOW_HANDLER_SECONDS": str(handler_seconds),
        }
        command = ["worker", "--concurrency", str(CONCURRENCY)]
        return start_bulkops(command, self.workdir, self.workdir / log_name, settings, environment)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Store:
    return Store(database_url, tmp_path)


def add_bulk(store: Store, size: int) -> None:
    async def run() -> None:
        database = Database(store.url)
        try:
            await upgrade(database)
            async with database.write() as connection:
                operations = [
                    NewOperation(key, TOPIC, serialized_data({"n": key})) for key in range(size)
                ]
                await insert_bulk(
                    connection, NewBulk(BULK, None, None, None, utc_now(), operations)
                )
                await enqueue_open_operations(connection, BULK, utc_now())
        finally:
            await database.dispose()

    asyncio.run(run())


def test_a_killed_workers_operations_are_finished_by_another_exactly_once(
    store: Store,
    processes: list[subprocess.Popen[bytes]],
    queue_settings: dict[str, str],
    report_figures: Callable[[Figures], None],
) -> None:
    size = 600
    add_bulk(store, size)
    killed = store.worker(0.03, "killed.log", queue_settings)
    survivor = store.worker(0.03, "survivor.log", queue_settings)
    processes += [killed, survivor]

    def calls_of_killed() -> tuple[set[str], set[str]]:
        """The first worker's calls started, and ended."""
        records = [r for r in store.records() if r["pid"] == killed.pid]
        started = {r["call"] for r in records if r["event"] == "start"}
        return started, {r["call"] for r in records if r["event"] == "end"}

    def killed_in_a_call() -> bool:
        """The first worker has processed some operations and is frozen (SIGSTOP) in the
        middle of another's handler: the kill lands while it holds an operation it started."""
        if len(calls_of_killed()[1]) < 40:
            return False
        os.kill(killed.pid, signal.SIGSTOP)
        started, ended = calls_of_killed()
        if started - ended:
            return True
        os.kill(killed.pid, signal.SIGCONT)
        return False

    wait_for(killed_in_a_call, 30, "the first worker to be in a handler, having run others")
    os.kill(killed.pid, signal.SIGKILL)
    killed_at = time.time()
    killed.wait()
    assert store.count("SELECT count(*) FROM bulkops_operation WHERE status = 4") > size // 4

    def still_open() -> int:
        return store.count("SELECT count(*) FROM bulkops_operation WHERE status = 4")

    wait_for(lambda: still_open() == 0, 30, "the survivor to finish the bulk", progress=still_open)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=15) == 0

    operations = store.query("SELECT id, status, result_serialized_data FROM bulkops_operation")
    assert len(operations) == size and {status for _, status, _ in operations} == {1}
    assert store.count("SELECT count(*) FROM bulkops_queue_message") == 0

    starts = [record for record in store.records() if record["event"] == "start"]
    # No handler ever ran for an operation that was final already.
    assert {record["status"] for record in starts} == {4}
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(starts, key=lambda record: record["time"]):
        calls[record["operation"]].append(record)
    redone = 0
    for operation_id, _, result in operations:
        made = calls[operation_id]
        winner = json.loads(result)
        # The recorded result is the operation's last call: nothing ran after it was final.
        assert made[-1]["call"] == winner["call"]
        if winner["pid"] == killed.pid:
            assert len(made) == 1
        else:
            # Processed twice only if the killed worker had it when it died, and then
            # taken up by the survivor only after that (never by two live workers).
            assert [record["pid"] for record in made[:-1]] in ([], [killed.pid])
            if len(made) == 2:
                assert made[1]["time"] > killed_at
                redone += 1
    assert redone >= 1, "the kill landed between operations"
    ledger = Ledger(store.url, store.calls)
    ledger.acknowledge(BULK, size)
    figures = ledger.figures()
    report_figures(figures)
    assert (figures.final, figures.duplicated) == (size, 0)
    assert peak_concurrency(store.records(), survivor.pid) == CONCURRENCY


def peak_concurrency(records: list[dict[str, Any]], pid: int) -> int:
    """The most calls a process had running at once."""
    running, peak = 0, 0
    for record in sorted((r for r in records if r["pid"] == pid), key=lambda r: r["time"]):
        running += 1 if record["event"] == "start" else -1
        peak = max(peak, running)
    return peak


def test_sigterm_finishes_operations_in_progress_and_gives_back_the_rest(
    store: Store, processes: list[subprocess.Popen[bytes]]
) -> None:
    add_bulk(store, 40)
    worker = store.worker(0.5, "worker.log")
    processes.append(worker)
    wait_for(lambda: len(store.records()) >= 1, 30, "the worker to start an operation")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0

    records = store.records()
    started = {r["operation"] for r in records if r["event"] == "start"}
    ended = {r["operation"] for r in records if r["event"] == "end"}
    assert started == ended and 1 <= len(started) <= CONCURRENCY
    complete = store.query("SELECT id FROM bulkops_operation WHERE status = 1")
    assert {operation_id for (operation_id,) in complete} == ended
    # Every other operation is open, its message available at once, not counted as tried.
    messages = store.query(
        "SELECT count(*), max(lease_owner), max(attempts) FROM bulkops_queue_message"
    )
    assert messages == [(40 - len(ended), None, 0)]
