"""Order within a bulk, with two worker processes, on every store backend and transport: a
bulk's items run one after the other in request order (item 0 of three sign-ups with the same
email wins, every time), an item retried after a backoff holds back those behind it, while
different bulks, the items of an independent route, and the items of different ordering keys
run at the same time. Magento's consumer takes one message at a time in queue order
(Magento/MessageQueue/Model/Consumer... `Magento\\Framework\\MessageQueue\\Consumer::process`)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkops.handlers.customers import DUPLICATE_EMAIL
from tests import storage
from tests.servers import RunningServer, start_bulkops, start_server
from tests.waiting import wait_for

HANDLER_MODULES = '["tests.handler_fixtures.ordered"]'
WORKERS = 2


@pytest.fixture
def api(
    database_url: str, queue_settings: dict[str, str], tmp_path: Path
) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path / "server",
        "--no-worker",
        DATABASE_URL=database_url,
        HANDLER_MODULES=HANDLER_MODULES,
        **queue_settings,
    )
    yield server
    server.stop()


def start_workers(
    database_url: str, queue_settings: dict[str, str], workdir: Path, processes: list[Any]
) -> Path:
    calls = workdir / "calls.jsonl"
    calls.touch()
    settings = {
        "DATABASE_URL": database_url,
        "HANDLER_MODULES": HANDLER_MODULES,
        # Small batches: a bulk's items are leased by both workers, batch after batch.
        "WORKER_BATCH_SIZE": "5",
        "WORKER_POLL_SECONDS": "0.05",
        "RETRY_BACKOFF_SECONDS": "0.2",
    } | queue_settings
    logs = [workdir / f"worker-{number}.log" for number in range(WORKERS)]
    for log in logs:
        processes.append(
            start_bulkops(
                ["worker", "--concurrency", "4"],
                workdir,
                log,
                settings,
                {"ORDER_HANDLER_CALLS": str(calls)},
            )
        )
    # Both take part from the first submission on.
    wait_for(lambda: all("worker started" in log.read_text() for log in logs), 60, "the workers")
    return calls


def submit(server: RunningServer, path: str, items: list[dict[str, Any]]) -> str:
    with server.admin_client() as client:
        response = client.post(f"/rest/async/bulk/V1/{path}", json=items)
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]


def one_after_another(events: list[dict[str, Any]]) -> list[int]:
    """The keys of the calls, asserting that each began after the one before had ended."""
    begun = events[0::2]
    assert [e["event"] for e in events] == ["begin", "end"] * len(begun), events
    assert [e["key"] for e in begun] == [e["key"] for e in events[1::2]], events
    return [e["key"] for e in begun]


def test_a_bulks_items_run_in_request_order_and_bulks_in_parallel(
    api: RunningServer,
    database_url: str,
    queue_settings: dict[str, str],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    calls = start_workers(database_url, queue_settings, tmp_path, processes)
    sign_ups = [
        submit(
            api,
            "customers",
            [
                {"customer": {"email": f"same{n}@example.com", "firstname": f"Item{key}"}}
                for key in range(3)
            ],
        )
        for n in range(6)
    ]
    ordered = [
        submit(
            api,
            "tests/ordered",
            [
                {"n": key, "fail_first": bulk == 0 and key == 7}
                # The first items of two bulks must run at the same time to finish.
                | ({"meet": "bulks", "count": 2} if bulk > 0 and key == 0 else {})
                for key in range(25)
            ],
        )
        for bulk in range(3)
    ]
    independent = submit(
        api,
        "tests/independent",
        [{"n": key} | ({"meet": "independent", "count": 2} if key < 2 else {}) for key in range(6)],
    )
    skus = ["A", "A", "B", "A", "B", "B"]
    keyed = submit(
        api,
        "tests/keyed",
        [
            {"sku": sku} | ({"meet": "keyed", "count": 2} if key in (0, 2) else {})
            for key, sku in enumerate(skus)
        ],
    )

    def still_open() -> int:
        return storage.count(
            database_url, "SELECT count(*) FROM bulkops_operation WHERE status = 4"
        )

    wait_for(lambda: still_open() == 0, 120, "every operation to be processed", progress=still_open)
    for worker in processes:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0

    # Item 0 of each sign-up bulk won, every time; the others found its email taken.
    for bulk_uuid in sign_ups:
        outcomes = storage.query(
            database_url,
            "SELECT operation_key, status, result_message FROM bulkops_operation "
            f"WHERE bulk_uuid = '{bulk_uuid}' ORDER BY operation_key",
        )
        assert [(key, status) for key, status, _ in outcomes] == [(0, 1), (1, 3), (2, 3)]
        assert {message for _, status, message in outcomes if status == 3} == {DUPLICATE_EMAIL}
    assert storage.query(database_url, "SELECT DISTINCT firstname FROM bulkops_demo_customer") == [
        ("Item0",)
    ]

    records = [json.loads(line) for line in calls.read_text().splitlines()]
    assert storage.query(
        database_url,
        "SELECT DISTINCT status FROM bulkops_operation WHERE bulk_uuid NOT IN "
        f"({', '.join(repr(u) for u in sign_ups)})",
    ) == [(1,)]

    def of(bulk_uuid: str, keys: range | list[int] | None = None) -> list[dict[str, Any]]:
        return [r for r in records if r["bulk"] == bulk_uuid and (keys is None or r["key"] in keys)]

    # One after the other in request order; the retried item held back those behind it.
    assert one_after_another(of(ordered[0])) == [*range(8), *range(7, 25)]
    for bulk_uuid in ordered[1:]:
        assert one_after_another(of(bulk_uuid)) == list(range(25))
    # ...while bulks, independent items and other ordering keys ran at the same time.
    met = {(r["bulk"], r["key"]) for r in records if r["event"] == "end" and r["met"]}
    assert {(ordered[1], 0), (ordered[2], 0), (independent, 0), (independent, 1)} <= met
    assert {(keyed, 0), (keyed, 2)} <= met
    for sku in "AB":
        keys = [key for key, of_sku in enumerate(skus) if of_sku == sku]
        assert one_after_another(of(keyed, keys)) == keys
