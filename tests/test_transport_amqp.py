"""The `amqp` transport against a real RabbitMQ, with real `bulkops serve` and `bulkops worker`
processes on every store backend: submissions travel through the broker; a stopped broker
delays them but loses nothing; a retry is delivered again after its backoff; the relay finds
operations whose message was lost, and keeps in the outbox what the broker did not confirm.
(A killed worker's deliveries: tests/test_worker_kill.py, on every transport.)

Each test has an exchange and a queue of its own (the `broker` fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import signal
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from sqlalchemy import select

from bulkops.handlers import HandlerRegistry, OperationInput
from bulkops.queue import AmqpTransport
from bulkops.services.payloads import Payloads
from bulkops.services.submission import serialized_data
from bulkops.settings import Settings
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import Result, record_results, retry_operations, utc_now
from bulkops.store.migrate import upgrade
from bulkops.store.queue import enqueue_open_operations, enqueue_operations
from bulkops.store.tables import operation
from bulkops.worker import Executor, Worker
from tests import storage
from tests.brokers import AMQP_URL, Broker
from tests.servers import RunningServer, start_bulkops, start_server
from tests.waiting import eventually, wait_for

pytestmark = pytest.mark.slow

# The topics of tests/handler_fixtures/slow.py and flaky.py (not imported here: importing a
# fixture registers its route in this process).
SLOW_TOPIC = "async.tests.api.slowinterface.handle.post"
HANDLER_MODULES = '["tests.handler_fixtures.slow", "tests.handler_fixtures.flaky"]'
CONCURRENCY = 3


@dataclass
class Store:
    """The test's database, and the files its handlers record their calls in."""

    url: str
    workdir: Path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return storage.query(self.url, sql)

    def count(self, sql: str) -> int:
        return storage.count(self.url, sql)

    def open_operations(self) -> int:
        return self.count("SELECT count(*) FROM bulkops_operation WHERE status = 4")

    def outbox(self) -> int:
        return self.count("SELECT count(*) FROM bulkops_queue_message")

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.workdir / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Store:
    return Store(database_url, tmp_path)


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for server in started:
        server.stop()


def serve(
    store: Store, broker: Broker, servers: list[RunningServer], *options: str, **settings: str
) -> RunningServer:
    server = start_server(
        store.workdir / "server",
        *options,
        DATABASE_URL=store.url,
        HANDLER_MODULES=HANDLER_MODULES,
        DEMO_CUSTOMERS="false",
        **(broker.settings() | settings),
    )
    servers.append(server)
    return server


def start_worker(
    store: Store,
    broker: Broker,
    processes: list[subprocess.Popen[bytes]],
    log_name: str,
    handler_seconds: float = 0.01,
    **settings: str,
) -> subprocess.Popen[bytes]:
    worker_settings = {
        "DATABASE_URL": store.url,
        "HANDLER_MODULES": HANDLER_MODULES,
        "DEMO_CUSTOMERS": "false",
        "WORKER_BATCH_SIZE": "20",
    } | broker.settings()
    environment = {
        "SLOW_HANDLER_CALLS": str(store.workdir / "slow.jsonl"),
        "SLOW_HANDLER_SECONDS": str(handler_seconds),
        "FLAKY_HANDLER_CALLS": str(store.workdir / "flaky.jsonl"),
    }
    command = ["worker", "--concurrency", str(CONCURRENCY)]
    worker = start_bulkops(
        command, store.workdir, store.workdir / log_name, worker_settings | settings, environment
    )
    processes.append(worker)
    return worker


def submit(server: RunningServer, route: str, items: list[dict[str, Any]]) -> str:
    with server.admin_client() as client:
        response = client.post(f"/rest/async/bulk/V1/tests/{route}", json=items)
    assert response.status_code == 202, response.text
    assert not response.json()["errors"]
    return response.json()["bulk_uuid"]


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def slow_starts(store: Store) -> dict[int, list[dict[str, Any]]]:
    """The slow handler's calls of each operation, in the order they started."""
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    starts = [r for r in store.records("slow.jsonl") if r["event"] == "start"]
    for record in sorted(starts, key=lambda record: record["time"]):
        calls[record["operation"]].append(record)
    return calls


def assert_each_completed_once(store: Store, operations: int) -> None:
    """Every operation complete, its slow handler run once, and the outbox empty."""
    statuses = store.query("SELECT status, count(*) FROM bulkops_operation GROUP BY status")
    assert statuses == [(1, operations)]
    assert store.outbox() == 0
    assert all(len(calls) == 1 for calls in slow_starts(store).values())


def test_submissions_travel_through_rabbitmq_to_a_separate_worker(
    store: Store,
    broker: Broker,
    servers: list[RunningServer],
    processes: list[subprocess.Popen[bytes]],
) -> None:
    server = serve(store, broker, servers, "--no-worker")
    bulk_uuid = submit(server, "slow", [{"n": n} for n in range(30)])

    # No worker anywhere: the API published the bulk after its commit, and the broker has it.
    def published() -> bool:
        return broker.messages_ready() == 30 and store.outbox() == 0

    wait_for(published, 30, "the bulk's messages to move from the outbox to the queue")
    assert store.open_operations() == 30
    # A message names its operation, topic and attempts so far; the database has the rest.
    message = broker.peek()
    body = json.loads(message.body)
    bulk_operations = store.query(
        f"SELECT id FROM bulkops_operation WHERE bulk_uuid = '{bulk_uuid}'"
    )
    assert (body["operation_id"],) in bulk_operations
    assert body == {"operation_id": body["operation_id"], "topic_name": SLOW_TOPIC, "attempts": 0}
    assert message.routing_key == SLOW_TOPIC
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"

    worker = start_worker(store, broker, processes, "worker.log")
    wait_for(
        lambda: store.open_operations() == 0,
        60,
        "the worker to process the bulk",
        progress=store.open_operations,
    )
    stop(worker)

    assert_each_completed_once(store, 30)
    assert broker.messages_ready() == 0


def test_a_bulk_submitted_while_the_broker_is_stopped_is_processed_once_it_is_back(
    store: Store,
    broker: Broker,
    servers: list[RunningServer],
    processes: list[subprocess.Popen[bytes]],
) -> None:
    server = serve(store, broker, servers, "--no-worker")
    start_worker(store, broker, processes, "worker.log")
    submit(server, "slow", [{"n": n} for n in range(10)])
    wait_for(
        lambda: store.open_operations() == 0,
        60,
        "the first bulk to be processed",
        progress=store.open_operations,
    )
    with broker.stopped():
        submit(server, "slow", [{"n": n} for n in range(20)])
        # Accepted, committed with its messages in the outbox, waiting for the broker.
        assert store.open_operations() == 20
        assert store.outbox() == 20
        # Only the worker is left to publish them once the broker is back.
        server.stop()
        assert "Application shutdown complete." in server.log()
    wait_for(
        lambda: store.open_operations() == 0,
        90,
        "the second bulk to be processed",
        progress=store.open_operations,
    )

    assert_each_completed_once(store, 30)


def test_a_retriable_failure_is_delivered_again_after_its_backoff(
    store: Store,
    broker: Broker,
    servers: list[RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backoff = 2.0
    monkeypatch.setenv("FLAKY_HANDLER_CALLS", str(store.workdir / "flaky.jsonl"))
    # The worker in the API's process this time.
    server = serve(store, broker, servers, RETRY_BACKOFF_SECONDS=str(backoff))
    submit(server, "flaky", [{"failures": 1}, {"failures": 2}, {"failures": 5}])

    def retry_waits_in_outbox() -> bool:
        # Not a row being published (claimed by a process): one waiting for its time.
        waiting = "SELECT count(*) FROM bulkops_queue_message WHERE lease_owner IS NULL"
        return store.count(f"{waiting} AND attempts > 0") > 0

    wait_for(retry_waits_in_outbox, 30, "a retry to wait in the outbox")
    wait_for(
        lambda: store.open_operations() == 0,
        60,
        "the retries to be processed",
        progress=store.open_operations,
    )

    operations = store.query(
        "SELECT id, status, result_message FROM bulkops_operation ORDER BY operation_key"
    )
    (first, _, _), (second, _, _), (third, _, message) = operations
    assert [status for _, status, _ in operations] == [1, 1, 2]
    # The third has had its three attempts: the count travels with its messages.
    assert message == "Not yet (call 3)."
    calls: dict[int, list[float]] = defaultdict(list)
    for record in store.records("flaky.jsonl"):
        calls[record["operation"]].append(record["time"])
    assert {key: len(times) for key, times in calls.items()} == {first: 2, second: 3, third: 3}
    for times in calls.values():
        for attempt, (earlier, later) in enumerate(itertools.pairwise(times)):
            # Times are kept in whole seconds: up to one second early.
            assert later - earlier >= backoff * 2**attempt - 1
    assert store.outbox() == 0


def test_the_relay_publishes_open_operations_whose_message_was_lost(
    store: Store, broker: Broker, processes: list[subprocess.Popen[bytes]]
) -> None:
    # Committed with no message at all, as if the broker had lost it.
    asyncio.run(add_bulk(store.url, 25, enqueue=False))
    assert store.outbox() == 0
    start_worker(store, broker, processes, "worker.log", AMQP_REPUBLISH_AFTER_SECONDS="0")
    wait_for(
        lambda: store.open_operations() == 0,
        60,
        "the relay to find the operations",
        progress=store.open_operations,
    )

    assert_each_completed_once(store, 25)


async def add_bulk(database_url: str, size: int, enqueue: bool) -> None:
    database = Database(database_url)
    try:
        await upgrade(database)
        bulk_uuid = str(uuid.uuid4())
        operations = [
            NewOperation(key, SLOW_TOPIC, serialized_data({"n": key})) for key in range(size)
        ]
        async with database.write() as connection:
            new_bulk = NewBulk(bulk_uuid, None, None, None, utc_now(), operations)
            await insert_bulk(connection, new_bulk)
            if enqueue:
                await enqueue_open_operations(connection, bulk_uuid, utc_now())
    finally:
        await database.dispose()


def amqp_transport(database: Database, broker: Broker, prefetch: int = 10) -> AmqpTransport:
    """The test's broker as a transport of `database`, as a process would use it."""
    return AmqpTransport(
        database,
        broker.settings()["QUEUE_URL"],
        exchange_name=broker.exchange,
        queue_name=broker.queue,
        prefetch=prefetch,
        republish_after=timedelta(hours=1),
        lease_seconds=300,
    )


async def test_the_outbox_keeps_what_the_broker_did_not_take(store: Store, broker: Broker) -> None:
    database = Database(store.url)
    await upgrade(database)
    transport = amqp_transport(database, broker)
    connection = await aio_pika.connect(broker.url)
    try:
        assert await transport.broker.wait_connected(30)
        # The queue goes: none is bound to take the messages, and the broker returns them.
        channel = await connection.channel()
        await channel.queue_delete(broker.queue)
        await add_bulk(store.url, 5, enqueue=True)
        assert await transport.relay() == 0
        assert store.outbox() == 5

        queue = await channel.declare_queue(broker.queue, durable=True)
        await queue.bind(broker.exchange, "async.#")
        assert await transport.relay() == 5
        assert store.outbox() == 0
        assert (await queue.declare()).message_count == 5
    finally:
        await connection.close()
        await transport.close()
        await database.dispose()


async def test_an_operation_delivered_again_while_in_hand_runs_its_handler_once(
    store: Store, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay publishes an operation a second time (its first publication's confirmation
    lost to a broker's restart) while a worker runs it: the worker receives it again, and
    settles that delivery with the first one's outcome."""
    caplog.set_level(logging.INFO, "bulkops.worker")
    started, finish = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def save(operation: OperationInput) -> str:
        calls.append(operation.operation_id)
        started.set()
        await finish.wait()
        return "ok"

    routes = HandlerRegistry()
    routes.route("POST", "/V1/things", service="Tests\\Api\\ThingsInterface::save")(save)
    topic = routes.routes()[0].topic_name()
    database = Database(store.url)
    await upgrade(database)
    bulk_uuid = str(uuid.uuid4())
    async with database.write() as connection:
        operations = [NewOperation(0, topic, serialized_data({}))]
        await insert_bulk(connection, NewBulk(bulk_uuid, None, None, None, utc_now(), operations))
        await enqueue_open_operations(connection, bulk_uuid, utc_now())
    transport = amqp_transport(database, broker)
    worker = Worker(
        database,
        transport,
        Executor(routes, 0, Payloads.from_settings(Settings())),
        concurrency=2,
        batch_size=10,
        poll_seconds=0.05,
        lease_seconds=300,
        max_deliveries=5,
    )
    try:
        await worker.start()
        await started.wait()
        # Its first publication confirmed (the confirmation can come after the delivery).
        await eventually(lambda: store.outbox() == 0)
        async with database.write() as connection:
            assert await enqueue_operations(connection, calls, utc_now()) == 1
        # Published again by this relay, or by the transport's own publisher if an
        # announcement (the broker's connection) is still being served.
        await transport.relay()
        await eventually(lambda: store.outbox() == 0)
        await eventually(lambda: len(calls) > 1 or "delivered again while in hand" in caplog.text)
        finish.set()
        await eventually(lambda: store.open_operations() == 0 and store.outbox() == 0)
    finally:
        finish.set()
        await worker.stop(grace_seconds=5)
        await database.dispose()
    assert store.query("SELECT status FROM bulkops_operation") == [(1,)]
    assert len(calls) == 1
    # Both deliveries were acknowledged: none came back when the worker's connection closed.
    assert await asyncio.to_thread(broker.messages_ready) == 0


async def test_a_worker_that_loses_its_connection_holding_more_than_it_runs_finishes_all(
    store: Store, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection to the broker drops while the worker holds more deliveries than it runs
    at once (the rest wait for a handler): the broker delivers them all again on the new
    channel while their first deliveries are still in hand, filling its prefetch. Every
    operation still ends final, and each handler runs once."""
    caplog.set_level(logging.INFO, "bulkops.worker")
    started, finish = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def save(operation: OperationInput) -> str:
        calls.append(operation.operation_id)
        started.set()
        await finish.wait()
        return "ok"

    routes = HandlerRegistry()
    routes.route("POST", "/V1/things", service="Tests\\Api\\ThingsInterface::save")(save)
    topic = routes.routes()[0].topic_name()
    database = Database(store.url)
    await upgrade(database)
    bulk_uuid = str(uuid.uuid4())
    count, prefetch = 40, 10
    async with database.write() as connection:
        operations = [NewOperation(key, topic, serialized_data({})) for key in range(count)]
        await insert_bulk(connection, NewBulk(bulk_uuid, None, None, None, utc_now(), operations))
        await enqueue_open_operations(connection, bulk_uuid, utc_now())
    transport = amqp_transport(database, broker, prefetch)
    worker = Worker(
        database,
        transport,
        Executor(routes, 0, Payloads.from_settings(Settings())),
        concurrency=2,
        batch_size=prefetch,
        poll_seconds=0.05,
        lease_seconds=300,
        max_deliveries=5,
    )
    direct = dataclasses.replace(broker, url=AMQP_URL, proxy=None)

    async def ready(messages: int) -> bool:
        return await asyncio.to_thread(direct.messages_ready) == messages

    try:
        await worker.start()
        await started.wait()
        # Every message published, a prefetch's worth held by the worker.
        await eventually(lambda: store.outbox() == 0)
        await eventually(lambda: ready(count - prefetch))
        with broker.stopped():
            await eventually(lambda: ready(count))
        # Delivered again to the worker, which still holds their first deliveries.
        await eventually(lambda: ready(count - prefetch))
        finish.set()
        await eventually(lambda: store.open_operations() == 0 and store.outbox() == 0)
    finally:
        finish.set()
        await worker.stop(grace_seconds=5)
        await database.dispose()
    assert store.query("SELECT DISTINCT status FROM bulkops_operation") == [(1,)]
    assert sorted(calls) == sorted(set(calls)) and len(calls) == count
    assert await asyncio.to_thread(direct.messages_ready) == 0


async def test_settling_a_delivery_leaves_the_message_of_a_retry_since(
    store: Store, broker: Broker
) -> None:
    """A delivery's operation was made final by another delivery, then reopened by a retry,
    which gave it a new outbox row, before this delivery is settled (a worker ignores a result
    for an operation final already, without locking it). Settling deletes the row delivered,
    not the retry's: the reopened operation keeps its message."""
    database = Database(store.url)
    await upgrade(database)
    transport = amqp_transport(database, broker)
    try:
        assert await transport.broker.wait_connected(30)
        await add_bulk(store.url, 1, enqueue=True)
        assert await transport.relay() == 1
        await asyncio.wait_for(transport.wait(0), 30)
        async with database.write() as connection:
            (delivery,) = await transport.receive(connection, 10)
        async with database.write() as connection:
            now = utc_now()
            failed = Result(delivery.operation_id, OperationStatus.RETRIABLY_FAILED, "failed")
            assert await record_results(connection, [failed], now) == [delivery.operation_id]
            (bulk_uuid,) = (
                await connection.execute(
                    select(operation.c.bulk_uuid).where(operation.c.id == delivery.operation_id)
                )
            ).scalars()
            assert await retry_operations(connection, bulk_uuid, now) == 1
        (retry_row,) = store.query("SELECT id FROM bulkops_queue_message")
        # The ignored result's transaction goes on: it settles its delivery.
        async with database.write() as connection:
            await transport.settle(connection, [delivery], [])
        await transport.confirm([delivery], [])
        assert store.query("SELECT id FROM bulkops_queue_message") == [retry_row]
        assert store.open_operations() == 1
    finally:
        await transport.close()
        await database.dispose()
