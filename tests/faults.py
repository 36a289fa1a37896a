"""Faults under load, and what became of every operation a client was told was accepted.

A `Load` submits bulks to the slow handler (tests/handler_fixtures/slow.py, which records each
of its runs and whether its operation was still open) from a few threads, and a `Ledger`
keeps every 202 it got. After the fault and the recovery, the ledger's `Figures` say how many
items were acknowledged, stored, final and duplicated (an item stored twice, or a handler run
for an operation already final): nothing lost is acknowledged == stored == final, and nothing
duplicated is 0. `BULKOPS_TEST_FAULT_ROUNDS` repeats each fault (`make faults`)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests import storage
from tests.servers import RunningServer, start_bulkops
from tests.waiting import wait_for

HANDLER_MODULES = '["tests.handler_fixtures.slow"]'
SUBMIT = "/rest/async/bulk/V1/tests/slow"
FINAL_STATUSES = frozenset({1, 2, 3})
ROUNDS = int(os.environ.get("BULKOPS_TEST_FAULT_ROUNDS", "1"))
# Small loads: the fault has to fall in the middle of them, not to measure anything.
THREADS = 3
BULK_SIZE = 10
PAUSE_SECONDS = 0.1


def service_settings(database_url: str) -> dict[str, str]:
    """BULKOPS_* settings (without the prefix) of the API and worker processes of a fault."""
    return {
        "DATABASE_URL": database_url,
        "HANDLER_MODULES": HANDLER_MODULES,
        "DEMO_CUSTOMERS": "false",
        "WORKER_POLL_SECONDS": "0.1",
        # A dead process's messages come back soon.
        "LEASE_SECONDS": "3",
        "RETRY_BACKOFF_SECONDS": "0.5",
    }


@dataclass(frozen=True)
class Figures:
    acknowledged: int
    """Items of the submissions the client got a 202 for."""
    stored: int
    """Of those, items with an operation in the database."""
    final: int
    """Of those, items whose operation reached a final status."""
    duplicated: int
    """Items stored more than once, plus handler runs for an operation already final."""
    failed_requests: int = 0
    """Submissions refused or cut during the fault (not acknowledged, so nothing owed)."""

    @property
    def lost(self) -> int:
        return self.acknowledged - self.final

    def __str__(self) -> str:
        return (
            f"acknowledged={self.acknowledged} stored={self.stored} final={self.final} "
            f"duplicated={self.duplicated} lost={self.lost} "
            f"failed_requests={self.failed_requests}"
        )


class Ledger:
    """The items a client was told were accepted, checked against the database and the slow
    handler's record of its runs."""

    def __init__(self, database_url: str, runs: Path) -> None:
        self.database_url = database_url
        self.runs = runs
        self._items: dict[str, int] = {}
        self._lock = threading.Lock()

    def acknowledge(self, bulk_uuid: str, items: int) -> None:
        with self._lock:
            self._items[bulk_uuid] = items

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return sum(self._items.values())

    def open_operations(self) -> int:
        return storage.count(
            self.database_url, "SELECT count(*) FROM bulkops_operation WHERE status = 4"
        )

    def wait_until_all_final(self, timeout: float = 180) -> None:
        wait_for(
            lambda: self.open_operations() == 0,
            timeout,
            "every operation to be final",
            progress=self.open_operations,
        )

    def statuses(self) -> set[int]:
        rows = storage.query(self.database_url, "SELECT DISTINCT status FROM bulkops_operation")
        return {status for (status,) in rows}

    def wait_until_processing(self) -> None:
        """Until the worker has run a handler: it is up, and the fault falls on its work."""
        wait_for(lambda: bool(self.handler_runs()), 60, "the worker to process operations")

    def handler_runs(self) -> list[dict[str, Any]]:
        if not self.runs.exists():
            return []
        lines = self.runs.read_text().splitlines()
        return [run for run in map(json.loads, lines) if run["event"] == "start"]

    def figures(self, failed_requests: int = 0) -> Figures:
        with self._lock:
            items = dict(self._items)
        rows = storage.query(
            self.database_url, "SELECT bulk_uuid, operation_key, status FROM bulkops_operation"
        )
        stored: Counter[tuple[str, int]] = Counter()
        final: set[tuple[str, int]] = set()
        for bulk_uuid, key, status in rows:
            item = (str(bulk_uuid), key)
            if key < items.get(item[0], 0):
                stored[item] += 1
                if status in FINAL_STATUSES:
                    final.add(item)
        reruns = sum(run["status"] in FINAL_STATUSES for run in self.handler_runs())
        return Figures(
            acknowledged=sum(items.values()),
            stored=len(stored),
            final=len(final),
            duplicated=sum(count - 1 for count in stored.values()) + reruns,
            failed_requests=failed_requests,
        )


class Load:
    """Threads submitting bulks to whichever server `target` gives at the time, until the
    block ends; every 202 goes to the ledger, every other answer is kept."""

    def __init__(self, ledger: Ledger, target: Callable[[], RunningServer], token: str) -> None:
        self.ledger = ledger
        self.target = target
        self.headers = {"Authorization": f"Bearer {token}"}
        self.refusals: list[tuple[int, Any]] = []
        self.transport_errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._submit) for _ in range(THREADS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def refused(self) -> set[tuple[int, str]]:
        """The distinct answers other than 202."""
        return {(status, str(body)) for status, body in self.refusals}

    @property
    def failed(self) -> int:
        return len(self.refusals) + self.transport_errors.total()

    def wait_acknowledged(self, more: int, what: str, timeout: float = 60) -> None:
        """Until `more` items more than now are acknowledged."""
        goal = self.ledger.acknowledged + more
        wait_for(lambda: self.ledger.acknowledged >= goal, timeout, what)

    def wait_failed(self, more: int, what: str, timeout: float = 60) -> None:
        goal = self.failed + more
        wait_for(lambda: self.failed >= goal, timeout, what)

    def _submit(self) -> None:
        items = [{"n": n} for n in range(BULK_SIZE)]
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.target().base_url + SUBMIT, json=items)
                except httpx.TransportError as error:
                    self.transport_errors[type(error).__name__] += 1
                    self._stop.wait(PAUSE_SECONDS)
                    continue
                if response.status_code == 202:
                    self.ledger.acknowledge(response.json()["bulk_uuid"], len(items))
                else:
                    self.refusals.append((response.status_code, response.json()))
                self._stop.wait(PAUSE_SECONDS)


def start_worker(
    workdir: Path,
    log_name: str,
    settings: Mapping[str, str],
    handler_database_url: str | None = None,
) -> subprocess.Popen[bytes]:
    """A `bulkops worker` with the slow handler, recording its runs in `workdir/runs.jsonl`;
    the handler reads operations' statuses at `handler_database_url` (default: the worker's
    own database URL)."""
    environment = {"SLOW_HANDLER_CALLS": str(workdir / "runs.jsonl")}
    if handler_database_url is not None:
        environment["SLOW_HANDLER_DATABASE_URL"] = handler_database_url
    command = ["worker", "--concurrency", "3"]
    return start_bulkops(command, workdir, workdir / log_name, settings, environment)
