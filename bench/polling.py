"""Status polling: `GET /V1/bulk/:uuid/status` of a 5,000-operation bulk and of a 5-operation
bulk at 32 connections, the full answer (200) beside the revalidation (`If-None-Match`, 304),
each beside its floor: the same SQL through the same driver and pool, without HTTP.

    python bench/polling.py [--rows 100000] [--backends sqlite,postgresql]
    python bench/polling.py --quick           # 10,000 rows, 2 s per run

For each backend: `--rows` operations of background loaded by `bench/datagen.py`, the two
bulks written by bulkops' own store, `bulkops serve --no-worker`, then wrk on each endpoint
(`--rounds` runs of `--duration` s, interleaved, medians), and the floors as 32 asyncio tasks
running the store's own queries for as long. Prints one table per backend; every figure is
also a ratio to a baseline of the same run: its floor, and `GET /health` (SELECT 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import databases, datagen
from bench.http_load import INSTALL_WRK, Endpoint, cpu_seconds, run_wrk
from bulkops.status import OperationStatus, UserType
from bulkops.store import bulks
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks

SIZES = (5000, 5)
TOPIC = "async.magento.catalog.api.productrepositoryinterface.save.post"
STATUSES = (OperationStatus.COMPLETE,) * 8 + (
    OperationStatus.NOT_RETRIABLY_FAILED,
    OperationStatus.OPEN,
)


def polled_bulk(size: int) -> NewBulk:
    """A bulk in progress: most operations complete, some failed, some open."""
    return NewBulk(
        uuid=str(uuid.uuid4()),
        description=f"Topic {TOPIC}",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=datetime(2030, 1, 1),
        operations=[
            NewOperation(
                key,
                TOPIC,
                f'{{"entity_id":null,"entity_link":"","meta_information":"{{\\"sku\\":\\"{key}\\"}}"}}',
                status,
                result_message=None if status == OperationStatus.OPEN else "Done",
                error_code=None if status != OperationStatus.NOT_RETRIABLY_FAILED else 0,
            )
            for key in range(size)
            for status in [STATUSES[key % len(STATUSES)]]
        ],
    )


@dataclass(frozen=True)
class Figures:
    title: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    response_bytes: int | None = None


def wrk_figures(
    server: RunningServer, endpoints: list[Endpoint], args: argparse.Namespace
) -> list[Figures]:
    for endpoint in endpoints:
        run_wrk(server, endpoint, args, args.warmup)
        settle(server)
    runs: dict[str, list[dict[str, Any]]] = {e.key: [] for e in endpoints}
    for _ in range(args.rounds):
        for endpoint in endpoints:  # interleaved: a drift of the machine hits every one
            runs[endpoint.key].append(run_wrk(server, endpoint, args, args.duration))
            settle(server)
    found = []
    for endpoint in endpoints:
        done = runs[endpoint.key]
        failed = sum(sum(r["errors"].values()) for r in done)
        assert not failed, f"{endpoint.title}: {failed} failed requests"
        found.append(
            Figures(
                endpoint.title,
                statistics.median(r["requests_per_s"] for r in done),
                statistics.median(r["latency_us"]["p50"] for r in done) / 1000,
                statistics.median(r["latency_us"]["p99"] for r in done) / 1000,
                round(statistics.median(r["bytes"] / r["requests"] for r in done)),
            )
        )
    return found


def settle(server: RunningServer, timeout: float = 60.0) -> None:
    """Until the server is idle: requests wrk left in flight (a second each, for the large
    bulk's full answer) would otherwise slow the next run down."""
    deadline = time.monotonic() + timeout
    used = cpu_seconds(server.process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(server.process.pid)
        if now - used < 0.025:  # under a tenth of a core
            return
        used = now


async def floor_figures(
    url: str, title: str, query: Callable[[Database], Awaitable[object]], args: argparse.Namespace
) -> Figures:
    """`query` run by `args.connections` tasks at once for `args.duration` s, `args.rounds`
    times after a warm-up, on a pool as the server's (its default settings); medians."""
    database = Database(url)
    try:
        await _floor_round(database, query, args.connections, args.warmup)
        rounds = [
            await _floor_round(database, query, args.connections, args.duration)
            for _ in range(args.rounds)
        ]
    finally:
        await database.dispose()
    return Figures(
        title,
        statistics.median(r[0] for r in rounds),
        statistics.median(r[1] for r in rounds),
        statistics.median(r[2] for r in rounds),
    )


async def _floor_round(
    database: Database,
    query: Callable[[Database], Awaitable[object]],
    tasks: int,
    seconds: float,
) -> tuple[float, float, float]:
    """Queries per second, p50 and p99 in milliseconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while (started := time.perf_counter()) < deadline:
            await query(database)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    wall = time.perf_counter() - started
    latencies.sort()
    return (
        len(latencies) / wall,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


def status_query(uuid_: str) -> Callable[[Database], Awaitable[object]]:
    """The SQL of a 200: the bulk's row, then its operations."""

    async def run(database: Database) -> object:
        async with database.read() as connection:
            await bulks.find_bulk(connection, uuid_)
            return await bulks.bulk_operations(connection, uuid_)

    return run


def version_query(uuid_: str) -> Callable[[Database], Awaitable[object]]:
    """The SQL of a 304: the bulk's row only."""

    async def run(database: Database) -> object:
        async with database.read() as connection:
            return await bulks.find_bulk(connection, uuid_)

    return run


def tag_of(server: RunningServer, path: str) -> str:
    with server.admin_client() as client:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        tag = answer.headers["etag"]
        again = client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304, again.status_code
    return tag


Row = tuple[Figures, str]
"""Figures and their ratios to the baselines."""


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    with databases.scratch(name, "bulkops_polling_bench", workdir) as backend:
        datagen.load(backend, args.rows)
        url = backend.bulkops_url
        polled = {size: polled_bulk(size) for size in SIZES}
        insert_bulks(url, polled.values())
        server = start_server(workdir / f"{name}-server", "--no-worker", DATABASE_URL=url)
        try:
            health = Endpoint("health", "GET /health (SELECT 1, no token)", "/health", False)
            endpoints = [health]
            for size, bulk in polled.items():
                path = f"/rest/V1/bulk/{bulk.uuid}/status"
                tag = tag_of(server, path)
                endpoints += [
                    Endpoint(f"200-{size}", f"{size:,} operations: 200", path, True),
                    Endpoint(f"304-{size}", f"{size:,} operations: 304", path, True, tag),
                ]
            measured = dict(zip(endpoints, wrk_figures(server, endpoints, args), strict=True))
        finally:
            server.stop()
        baseline = measured[health]
        rows: list[Row] = [(baseline, "baseline")]
        for size, bulk in polled.items():
            floors = {
                "200": floor_figures(
                    url, f"{size:,}: the 200's SQL", status_query(bulk.uuid), args
                ),
                "304": floor_figures(
                    url, f"{size:,}: the 304's SQL", version_query(bulk.uuid), args
                ),
            }
            for kind, measuring in floors.items():
                floor = asyncio.run(measuring)
                served = next(f for e, f in measured.items() if e.key == f"{kind}-{size}")
                rows.append(
                    (
                        served,
                        f"{_ratio(served, floor)} of its floor,"
                        f" {_ratio(served, baseline)} of /health",
                    )
                )
                rows.append((floor, f"{_ratio(floor, baseline)} of /health"))
        return rows


def _ratio(figures: Figures, baseline: Figures) -> str:
    """Requests per second as a fraction of the baseline's."""
    return f"{figures.requests_per_s / baseline.requests_per_s:.2f}"


def table(name: str, rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"{name}: {args.rows:,} operations of background, {args.connections} connections",
        "",
        "| | req/s | p50 ms | p99 ms | bytes | req/s, ratio to the baselines |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for figures, ratio in rows:
        size = "" if figures.response_bytes is None else f"{figures.response_bytes:,}"
        lines.append(
            f"| {figures.title} | {figures.requests_per_s:,.0f} | {figures.p50_ms:.1f}"
            f" | {figures.p99_ms:.1f} | {size} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI: 10,000 rows, 2 s per run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(INSTALL_WRK)
    if args.quick:
        args.rows, args.duration, args.rounds = 10_000, 2.0, 1
    with tempfile.TemporaryDirectory() as workdir:
        for name in databases.answering(args.backends.split(",")):
            print(table(name, run_backend(name, args, Path(workdir)), args), flush=True)
            print(flush=True)


if __name__ == "__main__":
    main()
