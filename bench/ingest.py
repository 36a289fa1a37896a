"""Items accepted per second through `POST /rest/default/async/bulk/V1/...`, beside the floor:
the same rows inserted directly, on SQLite, PostgreSQL and MariaDB.

    python bench/ingest.py [--bulks 20] [--items 5000] [--backends sqlite,postgresql,mariadb]
    python bench/ingest.py --quick          # 3 bulks of 1,000 items, the servers that are up

Each request carries `--items` items of a product-sized payload to a no-op route
(tests/handler_fixtures/noop.py); the server runs with `--no-worker`, so only acceptance is
measured. The floor writes, per bulk, the bulk row, its operation rows and their queue
messages in one transaction with the backend's synchronous driver (`executemany`), the
payloads already serialized, into the same schema emptied. Each backend gets a database of its
own, dropped afterwards. Times are medians per bulk after one warm-up bulk. Writes
`ingest-<backend>.json`, then `ingest.md` and `ingest.png` of every `ingest-*.json` in the
directory (`bench/report.py`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import databases, output, report
from bench.databases import Backend
from bulkops.services.data_hash import DataHasher, generated_key
from tests.servers import start_server

ROUTE = "/rest/default/async/bulk/V1/tests/noop"  # tests/handler_fixtures/noop.py
TOPIC = "async.tests.api.noopinterface.run.post"
BACKENDS = ("sqlite", "postgresql", "mariadb")
NOOP_SETTINGS = {"HANDLER_MODULES": '["tests.handler_fixtures.noop"]', "DEMO_CUSTOMERS": "false"}


def item(n: int) -> dict[str, object]:
    return {"product": {"sku": f"sku-{n}", "name": f"Product {n}", "price": 10.5, "qty": n}}


def timed_bulks(bulks: int, one_bulk: Any) -> list[float]:
    """Seconds of each of `bulks` calls of `one_bulk`, after one not counted."""
    one_bulk()
    seconds = []
    for _ in range(bulks):
        began = time.perf_counter()
        one_bulk()
        seconds.append(time.perf_counter() - began)
    return seconds


def through_http(backend: Backend, workdir: Path, bulks: int, items: int) -> list[float]:
    server = start_server(workdir, "--no-worker", DATABASE_URL=backend.bulkops_url, **NOOP_SETTINGS)
    body = json.dumps([item(n) for n in range(items)]).encode()
    try:
        with server.admin_client() as client:
            headers = {"Content-Type": "application/json"}

            def one_bulk() -> None:
                response = client.post(ROUTE, content=body, headers=headers)
                assert response.status_code == 202, response.text
                assert not response.json()["errors"]

            return timed_bulks(bulks, one_bulk)
    finally:
        server.stop()


def floor(backend: Backend, bulks: int, items: int) -> list[float]:
    """The rows `bulkops serve` writes for a bulk, written directly into the schema the HTTP
    run migrated, emptied."""
    p = backend.placeholder
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        if backend.name == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")  # as bulkops configures SQLite
            cursor.execute("PRAGMA synchronous=NORMAL")
        for table in ("bulkops_queue_message", "bulkops_operation", "bulkops_bulk"):
            cursor.execute(f"DELETE FROM {table}")
        connection.commit()
        hasher = DataHasher(generated_key().encode())
        payloads = [
            json.dumps(
                {"entity_id": None, "entity_link": "", "meta_information": json.dumps(item(n))}
            )
            for n in range(items)
        ]

        def one_bulk() -> None:
            bulk_uuid = str(uuid.uuid4())
            now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            cursor.execute(
                "INSERT INTO bulkops_bulk (uuid, user_id, user_type, description,"
                f" operation_count, operation_rows, start_time, store_code) VALUES ({p}, 1, 2,"
                f" {p}, {p}, {p}, {p}, 'default')",
                (bulk_uuid, f"Topic {TOPIC}", items, items, now),
            )
            # Placeholders only: pymysql turns such an executemany into multi-row INSERTs.
            cursor.executemany(
                "INSERT INTO bulkops_operation (bulk_uuid, operation_key, topic_name,"
                " serialized_data, status, updated_at, start_time)"
                f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
                [(bulk_uuid, key, TOPIC, data, 4, now, now) for key, data in enumerate(payloads)],
            )
            cursor.execute(
                "INSERT INTO bulkops_queue_message (operation_id, topic_name, available_at,"
                f" attempts) SELECT id, topic_name, {p}, 0 FROM bulkops_operation"
                f" WHERE bulk_uuid = {p}",
                (now, bulk_uuid),
            )
            connection.commit()
            # The hashes a 202 answers with are part of the floor's work too.
            [hasher.hash(data) for data in payloads]

        return timed_bulks(bulks, one_bulk)


def run_backend(name: str, bulks: int, items: int, workdir: Path) -> dict[str, Any]:
    with databases.scratch(name, "bulkops_bench_ingest", workdir) as backend:
        http = statistics.median(through_http(backend, workdir / name, bulks, items))
        direct = statistics.median(floor(backend, bulks, items))
        flavour, version = backend.flavour(), backend.version()
    print(f"{flavour}: bulkops {items / http:,.0f} items/s, floor {items / direct:,.0f} items/s")
    return {
        **output.header("ingest", flavour, version),
        "bulks": bulks,
        "items_per_bulk": items,
        "bulkops_seconds_per_bulk": http,
        "floor_seconds_per_bulk": direct,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulks", type=int, default=20)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="CI: small, the servers up only")
    parser.add_argument("--output", type=Path, help="default bench/results (quick: .../quick)")
    args = parser.parse_args()
    names = args.backends.split(",")
    if args.quick:
        args.bulks, args.items = 3, 1000
        names = databases.answering(names)
    directory = output.directory(args.output, args.quick)
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            result = run_backend(name, args.bulks, args.items, Path(workdir))
            output.write_json(directory / f"ingest-{result['backend']}.json", result)
    report.finish(directory, "ingest")


if __name__ == "__main__":
    main()
