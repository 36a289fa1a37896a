"""Scale-out: two API processes and two workers on a database server. Bulks go to both API
processes at once while one worker is killed with SIGKILL (and, with RabbitMQ, the broker is
stopped and started again); in the end every accepted item is final, has exactly one row, and
the search answers what one process on SQLite answers for the same requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import storage
from tests.backends import Backend
from tests.brokers import Broker
from tests.servers import RunningServer, start_bulkops, start_server
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROUTE = "/rest/default/async/bulk/V1/tests/outcomes"
ONE = "/rest/default/async/V1/tests/outcomes"
HANDLERS = '["tests.handler_fixtures.outcomes"]'
BULKS = 16
BULK_SIZE = 250


def requests() -> list[tuple[str, Any]]:
    """The same sequence for every run: bulks with completing, failing and rejected items,
    and single-item requests."""
    sent: list[tuple[str, Any]] = []
    for index in range(BULKS):
        items: list[Any] = [{"n": index * BULK_SIZE + key} for key in range(BULK_SIZE)]
        items[index] = {"n": "not a number"}
        sent.append((ROUTE, items))
        sent.append((ONE, {"n": 10_000 + index}))
    return sent


class Gate:
    """Holds the requests from `index` on until `open`, and counts the answered ones: the
    faults fall in the middle of the submissions whatever the machine's speed."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.open = threading.Event()
        self.answered = 0
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self.answered += 1


def submit_all(
    servers: Sequence[RunningServer], parallel: bool, gate: Gate | None = None
) -> list[str]:
    """Every request, to the servers in turn (at once when `parallel`, those past the
    `gate` once it opens); answers the bulk uuid of each request, in order."""
    clients = [server.admin_client() for server in servers]

    def send(index: int, path: str, body: Any) -> str:
        if gate is None or index < gate.index:
            bulk_uuid = post(clients[index % len(clients)], path, body)
        else:
            gate.open.wait()
            # On a connection of its own: those kept alive meanwhile were closed as idle.
            with servers[index % len(servers)].admin_client() as client:
                bulk_uuid = post(client, path, body)
        if gate is not None:
            gate.count()
        return bulk_uuid

    try:
        sent = requests()
        if not parallel:
            return [send(index, path, body) for index, (path, body) in enumerate(sent)]
        with ThreadPoolExecutor(len(servers) * 2) as pool:
            futures = [
                pool.submit(send, index, path, body) for index, (path, body) in enumerate(sent)
            ]
            return [future.result() for future in futures]
    finally:
        for client in clients:
            client.close()


def post(client: httpx.Client, path: str, body: Any) -> str:
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]


def search(server: RunningServer, query: str) -> dict[str, Any]:
    with server.admin_client() as client:
        response = client.get(f"/rest/V1/bulk?{query}")
        assert response.status_code == 200, response.text
        return response.json()


def comparable(answer: dict[str, Any], uuids: list[str]) -> dict[str, Any]:
    """A search answer with what differs between runs (ids, uuids, times) replaced by the
    request each operation came from."""
    request_of = {bulk_uuid: index for index, bulk_uuid in enumerate(uuids)}
    items = [
        {
            key: value
            for key, value in item.items()
            if key not in ("id", "bulk_uuid", "extension_attributes")
        }
        | {"request": request_of[item["bulk_uuid"]]}
        for item in answer["items"]
    ]
    # Completed operations lose their payload (as in Magento): their result tells them apart.
    items.sort(key=lambda item: (item["request"], json.dumps(item, sort_keys=True)))
    return {"items": items, "total_count": answer["total_count"]}


QUERIES = [
    "searchCriteria=",
    "searchCriteria[filter_groups][0][filters][0][field]=status"
    "&searchCriteria[filter_groups][0][filters][0][value]=3&searchCriteria[pageSize]=1000",
    "searchCriteria[filter_groups][0][filters][0][field]=result_message"
    "&searchCriteria[filter_groups][0][filters][0][value]=%25refused%25"
    "&searchCriteria[filter_groups][0][filters][0][condition_type]=like",
]


def answers(server: RunningServer, uuids: list[str]) -> list[dict[str, Any]]:
    return [comparable(search(server, query), uuids) for query in QUERIES]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The searches after one `bulkops serve` on SQLite processed the requests."""
    server = start_server(
        tmp_path_factory.mktemp("reference"), HANDLER_MODULES=HANDLERS, DEMO_CUSTOMERS="false"
    )
    try:
        uuids = submit_all([server], parallel=False)
        wait_for(
            lambda: open_count(server) == 0,
            120,
            "the reference run to finish",
            progress=lambda: open_count(server),
        )
        return answers(server, uuids)
    finally:
        server.stop()


def open_count(server: RunningServer) -> int:
    return search(
        server,
        "searchCriteria[filter_groups][0][filters][0][field]=status"
        "&searchCriteria[filter_groups][0][filters][0][value]=4&searchCriteria[pageSize]=1",
    )["total_count"]


def test_two_apis_and_two_workers_lose_nothing(
    backend: Backend,
    queue_settings: dict[str, str],
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    reference: list[dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    if backend.name == "sqlite":
        pytest.skip("scale-out needs a database server; SQLite is the reference run")
    amqp = queue_settings["QUEUE_URL"] != "db"
    broker: Broker | None = request.getfixturevalue("broker") if amqp else None
    settings = {
        "DATABASE_URL": database_url,
        "HANDLER_MODULES": HANDLERS,
        "DEMO_CUSTOMERS": "false",
        "LEASE_SECONDS": "3",
        "WORKER_POLL_SECONDS": "0.1",
        "MAINTENANCE_INTERVAL_SECONDS": "1",
    } | queue_settings
    apis = [start_server(tmp_path / f"api{n}", "--no-worker", **settings) for n in range(2)]
    processes += [api.process for api in apis]

    def worker(name: str) -> subprocess.Popen[bytes]:
        started = start_bulkops(
            ["worker", "--concurrency", "8"],
            tmp_path,
            tmp_path / f"{name}.log",
            settings,
            {"OUTCOME_HANDLER_SECONDS": "0.01"},
        )
        processes.append(started)
        return started

    doomed, survivor = worker("doomed"), worker("survivor")
    submitted: list[str] = []
    # Half the requests, then the worker's kill (and the broker's stop), then the rest.
    half = len(requests()) // 2
    gate = Gate(half)
    submitter = threading.Thread(
        target=lambda: submitted.extend(submit_all(apis, parallel=True, gate=gate))
    )
    submitter.start()

    def finished() -> int:
        return storage.count(
            database_url, "SELECT count(*) FROM bulkops_operation WHERE status <> 4"
        )

    try:
        wait_for(lambda: finished() >= 200, 120, "the workers to start processing")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        if broker is None:
            gate.open.set()
        else:
            with broker.stopped():
                # The outbox keeps what is submitted meanwhile.
                gate.open.set()
                wait_for(
                    lambda: gate.answered >= half + 4, 120, "submissions while the broker is down"
                )
    finally:
        gate.open.set()
    submitter.join(timeout=300)
    assert not submitter.is_alive() and len(submitted) == len(requests())

    total = BULKS * (BULK_SIZE + 1)

    def stored_and_open() -> tuple[int, int]:
        return (
            storage.count(database_url, "SELECT count(*) FROM bulkops_operation"),
            open_count(apis[0]),
        )

    wait_for(
        lambda: stored_and_open() == (total, 0),
        180,
        "every operation to be final",
        progress=stored_and_open,
    )
    assert survivor.poll() is None, "the surviving worker died"
    rows_per_item = storage.query(
        database_url,
        "SELECT count(*), count(DISTINCT bulk_uuid), max(operation_key) FROM bulkops_operation",
    )
    assert rows_per_item == [(total, len(requests()), BULK_SIZE - 1)]
    for api in apis:
        assert answers(api, submitted) == reference
