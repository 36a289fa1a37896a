"""Many large submissions at once to a `bulkops serve` on SQLite whose in-process worker
creates the demo customers meanwhile: every writer waits its turn for the single write lock,
so no submission is refused (503) and every operation completes; none ends failed with the
database's own error as its message.

BULKOPS_CONTENTION_ITEMS sets the items per submission (default 50; 5000 for the full
measure, 24 submissions of 5,000 items)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import storage
from tests.backends import Backend
from tests.servers import RunningServer, start_server
from tests.test_submission import customer
from tests.waiting import wait_for

SUBMISSIONS = 24
ITEMS = int(os.environ.get("BULKOPS_CONTENTION_ITEMS", "50"))


def submit(server: RunningServer, number: int) -> int:
    items = [customer(f"c{number}-{n}@example.com") for n in range(ITEMS)]
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        return client.post("/rest/default/async/bulk/V1/customers", json=items).status_code


def test_concurrent_submissions_all_wait_for_the_lock_and_complete(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name != "sqlite":
        pytest.skip("SQLite's single write lock")
    server = start_server(tmp_path, WORKER_POLL_SECONDS="0.05")
    try:
        with ThreadPoolExecutor(SUBMISSIONS) as pool:
            answers = list(pool.map(lambda n: submit(server, n), range(SUBMISSIONS)))
        assert answers == [202] * SUBMISSIONS

        def still_open() -> int:
            return storage.count(server.database_url, OPEN)

        wait_for(lambda: still_open() == 0, 60, "the worker to finish", 1, progress=still_open)
        statuses = storage.query(server.database_url, STATUSES)
        assert statuses == [(1, None, SUBMISSIONS * ITEMS)]
    finally:
        server.stop()


OPEN = "SELECT count(*) FROM bulkops_operation WHERE status = 4"
STATUSES = (
    "SELECT status, CASE WHEN status = 1 THEN NULL ELSE result_message END, count(*) "
    "FROM bulkops_operation GROUP BY 1, 2"
)
