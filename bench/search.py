"""Operation search at scale on the embedded default (SQLite), against raw SQL on the same file.

    python bench/search.py [--rows 1000000] [--repeat 7]

Loads N operations with a realistic mix (bulks of 1,000, 90 % complete, 3 % not retriably
failed, 60 days of start times), starts `bulkops serve` on them, and prints a table: median
time of each search over HTTP end to end (token check, count and page, JSON) beside the same
count and page read with Python's sqlite3 directly; then a search with no page size over every
row, streamed, with the server's peak memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests.servers import RunningServer, start_server

TOPICS = [f"async.magento.catalog.api.productrepositoryinterface.save.{m}" for m in ["post", "put"]]
TOPICS += [f"async.V1.topic{n}.POST" for n in range(8)]
STATUSES = [1] * 900 + [2] * 40 + [3] * 30 + [4] * 20 + [5] * 10
BULK_SIZE = 1000


def serialized_data(operation_id: int) -> str:
    item = json.dumps({"product": {"sku": f"sku-{operation_id}", "price": 10}})
    return json.dumps({"entity_id": None, "entity_link": "", "meta_information": item})


def load(path: Path, rows: int) -> str:
    """Fill the store with `rows` operations; answer the uuid of one bulk."""
    database = Database(f"sqlite:///{path}")
    asyncio.run(upgrade(database))
    asyncio.run(database.dispose())
    rng = random.Random(7)
    now = datetime(2026, 1, 1)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    some_bulk = ""
    operation_id = 0
    for bulk_index in range(max(1, rows // BULK_SIZE)):
        bulk_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        some_bulk = some_bulk or bulk_uuid
        start = (now - timedelta(seconds=rng.randrange(60 * 86400))).strftime("%Y-%m-%d %H:%M:%S")
        topic = rng.choice(TOPICS)
        size = min(BULK_SIZE, rows - bulk_index * BULK_SIZE)
        connection.execute(
            "INSERT INTO bulkops_bulk (uuid, user_id, user_type, description, operation_count,"
            " start_time) VALUES (?, 1, 2, ?, ?, ?)",
            (bulk_uuid, f"Topic {topic}", size, start),
        )
        batch = []
        for key in range(size):
            operation_id += 1
            status = rng.choice(STATUSES)
            failed = status in (2, 3, 5)
            batch.append(
                (
                    bulk_uuid,
                    key,
                    topic,
                    None if status == 1 else serialized_data(operation_id),
                    status,
                    0 if failed else None,
                    f"Error for sku-{operation_id}" if failed else None,
                    start,
                    start,
                )
            )
        connection.executemany(
            "INSERT INTO bulkops_operation (bulk_uuid, operation_key, topic_name,"
            " serialized_data, status, error_code, result_message, updated_at, start_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return some_bulk


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the caches and the connection pool
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def peak_rss_mb(server: RunningServer) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def search_shapes(bulk_uuid: str) -> list[tuple[str, str, str, tuple[object, ...]]]:
    """(name, query string, equivalent SQL filter, its parameters)."""

    def eq(field: str, value: str) -> str:
        return (
            f"searchCriteria[filter_groups][0][filters][0][field]={field}"
            f"&searchCriteria[filter_groups][0][filters][0][value]={value}"
            "&searchCriteria[filter_groups][0][filters][0][condition_type]=eq"
        )

    return [
        ("status eq 3, page 1 of 20", eq("status", "3"), "status = ?", (3,)),
        ("bulk_uuid eq X, page 1 of 20", eq("bulk_uuid", bulk_uuid), "bulk_uuid = ?", (bulk_uuid,)),
        ("status eq 5, page 1 of 20", eq("status", "5"), "status = ?", (5,)),
    ]


def raw_page(path: Path, where: str, parameters: tuple[object, ...]) -> Callable[[], object]:
    connection = sqlite3.connect(path, check_same_thread=False)

    def run() -> object:
        total = connection.execute(
            f"SELECT count(*) FROM bulkops_operation WHERE {where}", parameters
        ).fetchone()
        rows = connection.execute(
            f"SELECT * FROM bulkops_operation WHERE {where} ORDER BY id LIMIT 20", parameters
        ).fetchall()
        return total, rows

    return run


def stream_all(client: httpx.Client) -> tuple[int, int]:
    """(bytes received, total_count announced at the end)."""
    received = 0
    tail = b""
    with client.stream("GET", "/rest/V1/bulk?searchCriteria=") as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            received += len(chunk)
            tail = (tail + chunk)[-200:]
    return received, int(tail.rsplit(b'"total_count":', 1)[1].rstrip(b"}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        path = workdir / "bulkops.sqlite3"
        started = time.perf_counter()
        bulk_uuid = load(path, args.rows)
        print(f"loaded {args.rows:,} operations in {time.perf_counter() - started:.1f} s")
        server = start_server(workdir, "--no-worker", DATABASE_URL=f"sqlite+aiosqlite:///{path}")
        try:
            run(server, path, bulk_uuid, args)
        finally:
            server.stop()


def run(server: RunningServer, path: Path, bulk_uuid: str, args: argparse.Namespace) -> None:
    print(f"\n| search ({args.rows:,} operations) | bulkops HTTP ms | raw SQL ms | ratio |")
    print("|---|---:|---:|---:|")
    with server.admin_client() as client:
        for name, query, where, parameters in search_shapes(bulk_uuid):
            url = f"/rest/V1/bulk?{query}&searchCriteria[pageSize]=20"
            check = client.get(url)
            check.raise_for_status()
            assert len(check.json()["items"]) == 20, check.text[:300]
            http_ms = median_ms(lambda url=url: client.get(url).raise_for_status(), args.repeat)
            sql_ms = median_ms(raw_page(path, where, parameters), args.repeat)
            print(f"| {name} | {http_ms:.2f} | {sql_ms:.2f} | {http_ms / sql_ms:.1f}x |")

        rss_before = peak_rss_mb(server)
        started = time.perf_counter()
        received, total = stream_all(client)
        stream_s = time.perf_counter() - started
        rss_after = peak_rss_mb(server)

    raw = sqlite3.connect(path)
    started = time.perf_counter()
    raw_rows = sum(1 for _ in raw.execute("SELECT * FROM bulkops_operation ORDER BY id"))
    raw_s = time.perf_counter() - started
    assert total == raw_rows == args.rows, (total, raw_rows)
    print(
        f"\n| no pageSize, every row | rows | MB sent | seconds | rows/s |"
        f" server peak RSS before → after |\n|---|---:|---:|---:|---:|---|\n"
        f"| bulkops HTTP stream | {total:,} | {received / 1e6:.0f} | {stream_s:.1f} |"
        f" {total / stream_s:,.0f} | {rss_before:.0f} MB → {rss_after:.0f} MB |\n"
        f"| raw SQL, rows read in Python | {raw_rows:,} | - | {raw_s:.1f} |"
        f" {raw_rows / raw_s:,.0f} | - |"
    )


if __name__ == "__main__":
    main()
