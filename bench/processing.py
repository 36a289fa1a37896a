"""Operations completed per second with a handler that does nothing: `bulkops worker`
processes on the `db` transport and on RabbitMQ (`amqp`), beside Celery on RabbitMQ recording
each result in the same database, and the floor: publishing and consuming the same number of
messages with aio-pika and nothing else.

    python bench/processing.py [--operations 20000] [--backends sqlite,postgresql,mariadb]
    python bench/processing.py --quick      # 500 operations, 1 process, the servers up

For each backend and setup: a database of its own (dropped afterwards) holding the operations
(bulks of 1,000 whose items are independent, as Celery's tasks are) and their queue (or outbox)
rows; Celery's tasks are published before its
workers start. A worker setup's clock starts when the first operation is final (process
start-up is left out) and stops when none is open. The floor's clock runs from the first
publish to the last acknowledgement. Writes `processing-<backend>.json`, then `processing.md`
and `processing.png` of every `processing-*.json` in the directory (`bench/report.py`).

The cost of order: the same number of operations as one bulk, then as bulks of 10, each with
its items processed in request order (the default) and as an independent route's, by two
`bulkops worker` processes on each transport.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import amqp_floor, databases, output, report
from bench.databases import Backend
from bulkops.handlers import AsyncRoute
from bulkops.settings import Settings
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now
from bulkops.store.migrate import upgrade
from bulkops.store.queue import enqueue_open_operations
from tests.servers import ROOT, start_bulkops

TOPIC = "async.tests.api.noopinterface.run.post"  # tests/handler_fixtures/noop.py
BULK_SIZE = 1000
PAYLOAD = '{"entity_id":null,"entity_link":"","meta_information":"{\\"sku\\":\\"a\\"}"}'
BACKENDS = ("sqlite", "postgresql", "mariadb")
AMQP_URL = os.environ.get("BULKOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BATCH_SIZE = Settings.model_fields["worker_batch_size"].default


ORDER_SHAPES = {"one bulk": None, "bulks of 10": 10}
"""Bulk sizes of the order measurement; None: every operation in one bulk."""
ORDER_WORKERS = 2


async def _noop(_: Any) -> None:
    return None


def _route(ordered: bool) -> AsyncRoute:
    """The no-op route (tests/handler_fixtures/noop.py) as the fill sees it: in request order,
    or independent."""
    return AsyncRoute(
        "POST", "/V1/tests/noop", "Tests\\Api\\NoopInterface::run", _noop, independent=not ordered
    )


def fill(
    backend: Backend, operations: int, bulk_size: int = BULK_SIZE, ordered: bool = False
) -> None:
    """The operations, open, with their queue rows (the outbox under `amqp`)."""
    route = _route(ordered)

    async def run() -> None:
        database = Database(backend.bulkops_url)
        try:
            await upgrade(database)
            for first in range(0, operations, bulk_size):
                size = min(bulk_size, operations - first)
                bulk_uuid = str(uuid.uuid4())
                group = route.order_group(bulk_uuid, {"sku": "a"})
                new_bulk = NewBulk(
                    bulk_uuid,
                    None,
                    1,
                    2,
                    utc_now(),
                    [NewOperation(key, TOPIC, PAYLOAD, order_group=group) for key in range(size)],
                )
                async with database.write() as connection:
                    await insert_bulk(connection, new_bulk)
                    await enqueue_open_operations(connection, new_bulk.uuid, utc_now())
        finally:
            await database.dispose()

    asyncio.run(run())


def operation_ids(backend: Backend) -> list[int]:
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT id FROM bulkops_operation ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def timed_until_done(backend: Backend, operations: int, launched: float) -> float:
    """Seconds from the first operation final to the last, scaled to all `operations`; if
    all were final at the first look (a small run), seconds since the workers were
    `launched` (a `time.monotonic()`), start-up included."""
    with closing(backend.connect()) as connection:

        def still_open() -> int:
            cursor = connection.cursor()
            cursor.execute("SELECT count(*) FROM bulkops_operation WHERE status = 4")
            (count,) = cursor.fetchone()
            cursor.close()
            connection.commit()  # a fresh snapshot for the next look
            return count

        started = _when(lambda: still_open() < operations, timeout=120)
        done_at_start = operations - still_open()
        finished = _when(lambda: still_open() == 0, timeout=1200)
    if done_at_start == operations:
        return finished - launched
    # Those final at the first look were done in no measured time: the rate is of the rest.
    return (finished - started) * operations / (operations - done_at_start)


def _when(condition: Callable[[], bool], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the workers made no progress")
        time.sleep(0.02)
    return time.monotonic()


@contextmanager
def running(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def bulkops_workers(
    backend: Backend, workdir: Path, operations: int, processes: int, transport: str
) -> float:
    settings = {
        "DATABASE_URL": backend.bulkops_url,
        "HANDLER_MODULES": '["tests.handler_fixtures.noop"]',
        "DEMO_CUSTOMERS": "false",
        "WORKER_BATCH_SIZE": str(BATCH_SIZE),
        "WORKER_POLL_SECONDS": "0.05",
    }
    exchange = queue = f"bulkops-bench-{uuid.uuid4().hex[:8]}"
    if transport == "amqp":
        settings |= {"QUEUE_URL": AMQP_URL, "AMQP_EXCHANGE": exchange, "AMQP_QUEUE": queue}
    launched = time.monotonic()
    workers = [
        start_bulkops(["worker"], workdir, workdir / f"worker{n}.log", settings)
        for n in range(processes)
    ]
    try:
        with running(workers):
            return timed_until_done(backend, operations, launched)
    finally:
        if transport == "amqp":
            amqp_floor.delete(AMQP_URL, exchange, queue)


def celery_workers(backend: Backend, workdir: Path, operations: int, processes: int) -> float:
    queue = f"celery-bench-{uuid.uuid4().hex[:8]}"
    environment = os.environ | {
        "PYTHONPATH": str(ROOT),
        "BENCH_CELERY_BROKER": AMQP_URL,
        "BENCH_CELERY_QUEUE": queue,
        "BENCH_CELERY_PREFETCH": str(BATCH_SIZE),
        "BENCH_DATABASE_URL": backend.bulkops_url,
    }
    os.environ.update(environment)  # the app below reads its queue and broker at import
    from bench import celery_noop

    celery_noop.app.conf.update(
        broker_url=AMQP_URL,
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
    )
    with celery_noop.app.producer_or_acquire() as producer:
        for operation_id in operation_ids(backend):
            celery_noop.noop.apply_async((operation_id,), producer=producer)
    # Each worker one process (`solo` pool), as each `bulkops worker` is.
    launched = time.monotonic()
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "bench.celery_noop", "worker"),
                *("--pool", "solo", "-n", f"bench{n}@%h", "-l", "warning"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=workdir,
            env=environment,
            stdout=(workdir / f"celery{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in range(processes)
    ]
    try:
        with running(workers):
            return timed_until_done(backend, operations, launched)
    finally:
        amqp_floor.delete(AMQP_URL, queue, queue)


def setups(amqp: bool, processes: list[int]) -> list[tuple[str, Callable[..., float]]]:
    """(name, measure(backend, workdir, operations)) for each setup of the run."""
    chosen: list[tuple[str, Callable[..., float]]] = []
    transports = ["db", "amqp"] if amqp else ["db"]
    for transport in transports:
        for n in processes:
            chosen.append(
                (
                    f"bulkops {transport}, {n} worker{'s' if n > 1 else ''}",
                    lambda b, w, o, n=n, t=transport: bulkops_workers(b, w, o, n, t),
                )
            )
    if amqp:
        for n in processes:
            chosen.append(
                (
                    f"Celery + RabbitMQ, {n} worker{'s' if n > 1 else ''}",
                    lambda b, w, o, n=n: celery_workers(b, w, o, n),
                )
            )
    return chosen


def run_backend(
    name: str,
    operations: int,
    chosen: list[tuple[str, Callable[..., float]]],
    amqp: bool,
    workdir: Path,
) -> dict[str, Any]:
    rows = []
    for setup, measure in chosen:
        with databases.scratch(name, "bulkops_bench_processing", workdir) as backend:
            fill(backend, operations)
            seconds = measure(backend, workdir, operations)
            flavour, version = backend.flavour(), backend.version()
        print(f"{flavour}, {setup}: {operations / seconds:,.0f} operations/s", flush=True)
        rows.append({"setup": setup, "seconds": seconds})
    order = []
    for transport in ["db", "amqp"] if amqp else ["db"]:
        for shape, bulk_size in ORDER_SHAPES.items():
            for ordered in (False, True):
                with databases.scratch(name, "bulkops_bench_processing", workdir) as backend:
                    fill(backend, operations, bulk_size or operations, ordered)
                    seconds = bulkops_workers(
                        backend, workdir, operations, ORDER_WORKERS, transport
                    )
                kind = "in request order" if ordered else "independent"
                print(
                    f"{flavour}, bulkops {transport}, {shape}, {kind}:"
                    f" {operations / seconds:,.0f} operations/s",
                    flush=True,
                )
                order.append(
                    {"transport": transport, "shape": shape, "ordered": ordered, "seconds": seconds}
                )
    floor = None
    if amqp:
        exchange = queue = f"floor-bench-{uuid.uuid4().hex[:8]}"
        floor = amqp_floor.publish_and_consume(AMQP_URL, exchange, queue, operations, BATCH_SIZE)
        print(f"{flavour}, aio-pika floor: {operations / floor:,.0f} messages/s", flush=True)
    return {
        **output.header("processing", flavour, version),
        "operations": operations,
        "batch_size": BATCH_SIZE,
        "floor_seconds": floor,
        "setups": rows,
        "order_workers": ORDER_WORKERS,
        "order": order,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=20000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--processes", default="1,2", help="worker processes, e.g. 1,2")
    parser.add_argument("--quick", action="store_true", help="CI: small, the servers up only")
    parser.add_argument("--output", type=Path, help="default bench/results (quick: .../quick)")
    args = parser.parse_args()
    names = args.backends.split(",")
    processes = [int(n) for n in args.processes.split(",")]
    if args.quick:
        args.operations, processes = 500, [1]
        names = databases.answering(names)
    amqp = amqp_floor.is_up(AMQP_URL)
    chosen = setups(amqp, processes)
    directory = output.directory(args.output, args.quick)
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            result = run_backend(name, args.operations, chosen, amqp, Path(workdir))
            output.write_json(directory / f"processing-{result['backend']}.json", result)
    report.finish(directory, "processing")


if __name__ == "__main__":
    main()
