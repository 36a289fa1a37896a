"""Items accepted per second through `POST /rest/V1/async/bulk/...` on the embedded default
(SQLite), beside the floor: the same rows inserted with Python's sqlite3 directly.

    python bench/ingest.py [--bulks 20] [--items 5000]

Each request carries `--items` items of a product-sized payload to a no-op route; the server
runs with `--no-worker`, so only acceptance is measured. The floor inserts, per bulk, the bulk
row, its operation rows and their queue messages in one transaction with `executemany`, the
payloads already serialized. Prints a markdown table with medians per bulk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import start_server

ROUTE = "/rest/default/async/bulk/V1/tests/noop"  # tests/handler_fixtures/noop.py
TOPIC = "async.tests.api.noopinterface.run.post"


def item(n: int) -> dict[str, object]:
    return {"product": {"sku": f"sku-{n}", "name": f"Product {n}", "price": 10.5, "qty": n}}


def through_http(workdir: Path, bulks: int, items: int) -> list[float]:
    server = start_server(
        workdir,
        "--no-worker",
        HANDLER_MODULES='["tests.handler_fixtures.noop"]',
        DEMO_CUSTOMERS="false",
    )
    body = json.dumps([item(n) for n in range(items)]).encode()
    seconds = []
    try:
        with server.admin_client() as client:
            headers = {"Content-Type": "application/json"}
            for _ in range(bulks):
                began = time.perf_counter()
                response = client.post(ROUTE, content=body, headers=headers)
                seconds.append(time.perf_counter() - began)
                assert response.status_code == 202, response.text
                assert not response.json()["errors"]
    finally:
        server.stop()
    return seconds


def floor(workdir: Path, bulks: int, items: int) -> list[float]:
    """The rows `bulkops serve` writes for a bulk, written directly; the file is the schema
    the HTTP run migrated, emptied."""
    connection = sqlite3.connect(workdir / "bulkops.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    for table in ("bulkops_queue_message", "bulkops_operation", "bulkops_bulk"):
        connection.execute(f"DELETE FROM {table}")
    payloads = [
        json.dumps({"entity_id": None, "entity_link": "", "meta_information": json.dumps(item(n))})
        for n in range(items)
    ]
    seconds = []
    for _ in range(bulks):
        began = time.perf_counter()
        bulk_uuid = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO bulkops_bulk (uuid, user_id, user_type, description, operation_count,"
            " start_time, store_code) VALUES (?, 1, 2, ?, ?, ?, 'default')",
            (bulk_uuid, f"Topic {TOPIC}", items, now),
        )
        connection.executemany(
            "INSERT INTO bulkops_operation (bulk_uuid, operation_key, topic_name,"
            " serialized_data, status, updated_at, start_time) VALUES (?, ?, ?, ?, 4, ?, ?)",
            [(bulk_uuid, key, TOPIC, data, now, now) for key, data in enumerate(payloads)],
        )
        connection.execute(
            "INSERT INTO bulkops_queue_message (operation_id, topic_name, available_at,"
            " attempts) SELECT id, topic_name, ?, 0 FROM bulkops_operation WHERE bulk_uuid = ?",
            (now, bulk_uuid),
        )
        connection.execute("COMMIT")
        # The hashes a 202 answers with are part of the floor's work too.
        [hashlib.sha256(data.encode()).hexdigest() for data in payloads]
        seconds.append(time.perf_counter() - began)
    connection.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulks", type=int, default=20)
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        http = statistics.median(through_http(workdir, args.bulks, args.items))
        direct = statistics.median(floor(workdir, args.bulks, args.items))

    print(f"Items accepted, bulks of {args.items}, SQLite, median of {args.bulks} bulks\n")
    print("| setup | seconds per bulk | items/s | vs floor |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in [
        ("sqlite3 directly, same rows (floor)", direct),
        ("bulkops over HTTP (202 answered)", http),
    ]:
        print(f"| {name} | {seconds:.3f} | {args.items / seconds:,.0f} | {seconds / direct:.1f}x |")


if __name__ == "__main__":
    main()
