"""Operations processed per second by `bulkops worker` processes with a handler that does nothing,
on the embedded default (SQLite), beside the floor: the same statements run with Python's
sqlite3 directly, in one process.

    python bench/processing.py [--operations 20000] [--batch-size 200]

Each row starts from a fresh database holding the operations (bulks of 1,000) and their queue
messages. A worker row's clock starts when the first operation is final (so process start-up
is left out) and stops when none is open; it prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bulkops.settings import Settings
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now
from bulkops.store.migrate import upgrade
from bulkops.store.queue import enqueue_open_operations
from tests.servers import start_bulkops

TOPIC = "async.tests.api.noopinterface.run.post"  # tests/handler_fixtures/noop.py
BULK_SIZE = 1000
PAYLOAD = '{"entity_id":null,"entity_link":"","meta_information":"{\\"sku\\":\\"a\\"}"}'


def fill(path: Path, operations: int) -> None:
    async def run() -> None:
        database = Database(f"sqlite:///{path}")
        try:
            await upgrade(database)
            for first in range(0, operations, BULK_SIZE):
                bulk_uuid = str(uuid.uuid4())
                size = min(BULK_SIZE, operations - first)
                new_bulk = NewBulk(
                    bulk_uuid,
                    None,
                    1,
                    2,
                    utc_now(),
                    [NewOperation(key, TOPIC, PAYLOAD) for key in range(size)],
                )
                async with database.write() as connection:
                    await insert_bulk(connection, new_bulk)
                    await enqueue_open_operations(connection, bulk_uuid, utc_now())
        finally:
            await database.dispose()

    asyncio.run(run())


def open_count(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM bulkops_operation WHERE status = 4").fetchone()[
        0
    ]


def run_workers(path: Path, operations: int, processes: int, batch_size: int) -> float:
    """Seconds from the first operation final to the last, with `processes` workers."""
    settings = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "HANDLER_MODULES": '["tests.handler_fixtures.noop"]',
        "DEMO_CUSTOMERS": "false",
        "WORKER_BATCH_SIZE": str(batch_size),
        "WORKER_POLL_SECONDS": "0.05",
    }
    workers = [
        start_bulkops(["worker"], path.parent, path.parent / f"worker{n}.log", settings)
        for n in range(processes)
    ]
    connection = sqlite3.connect(path)
    try:
        started = _when(lambda: open_count(connection) < operations, timeout=60)
        done_at_start = operations - open_count(connection)
        finished = _when(lambda: open_count(connection) == 0, timeout=600)
    finally:
        connection.close()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
    # Those final at the first look were done in no measured time: the rate is of the rest.
    return (finished - started) * operations / (operations - done_at_start)


def _when(condition: Callable[[], bool], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the workers made no progress")
        time.sleep(0.01)
    return time.monotonic()


def run_floor(path: Path, batch_size: int) -> float:
    """The worker's statements and transactions, batch by batch, with sqlite3 and nothing
    else: lease the messages and start their operations; record the results and delete the
    messages."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    began = time.monotonic()
    while True:
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        connection.execute("BEGIN IMMEDIATE")
        messages = connection.execute(
            "SELECT id, operation_id FROM bulkops_queue_message WHERE available_at <= ?"
            " ORDER BY available_at, id LIMIT ?",
            (now, batch_size),
        ).fetchall()
        if not messages:
            connection.execute("COMMIT")
            break
        message_ids = ",".join(str(m[0]) for m in messages)
        operation_ids = ",".join(str(m[1]) for m in messages)
        connection.execute(
            "UPDATE bulkops_queue_message SET available_at = ?, lease_owner = 'floor',"
            f" attempts = attempts + 1 WHERE id IN ({message_ids})",
            (now,),
        )
        connection.execute(
            "UPDATE bulkops_operation SET started_at = ?, updated_at = ?"
            f" WHERE id IN ({operation_ids}) AND status = 4",
            (now, now),
        )
        rows = connection.execute(
            "SELECT o.id, o.serialized_data, b.user_type FROM bulkops_operation o"
            " JOIN bulkops_bulk b ON b.uuid = o.bulk_uuid"
            f" WHERE o.id IN ({operation_ids}) AND o.status = 4"
        ).fetchall()
        connection.execute("COMMIT")
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "UPDATE bulkops_operation SET status = 1, result_message = ?, error_code = NULL,"
            " result_serialized_data = NULL, serialized_data = NULL, updated_at = ?"
            " WHERE id = ? AND status = 4",
            [("Service execution success x", now, row[0]) for row in rows],
        )
        connection.execute(f"DELETE FROM bulkops_queue_message WHERE id IN ({message_ids})")
        connection.execute("COMMIT")
    elapsed = time.monotonic() - began
    assert open_count(connection) == 0
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=20000)
    parser.add_argument(
        "--batch-size", type=int, default=Settings.model_fields["worker_batch_size"].default
    )
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, run in [
            ("sqlite3 directly, same statements (floor)", lambda p: run_floor(p, args.batch_size)),
            ("1 worker process", lambda p: run_workers(p, args.operations, 1, args.batch_size)),
            ("2 worker processes", lambda p: run_workers(p, args.operations, 2, args.batch_size)),
        ]:
            path = Path(directory) / f"{len(rows)}.sqlite3"
            fill(path, args.operations)
            seconds = run(path)
            rows.append((name, seconds))

    print(f"Operations processed, no-op handler, SQLite, batches of {args.batch_size}\n")
    print("| setup | operations | seconds | operations/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {args.operations} | {seconds:.2f} | {args.operations / seconds:,.0f} |")


if __name__ == "__main__":
    main()
