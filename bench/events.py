"""Server-sent events: what idle listeners of `GET /V1/bulk/:uuid/events` cost a server, and how
soon a change reaches them.

    python bench/events.py [--listeners 1000] [--backends sqlite,postgresql]
    python bench/events.py --quick           # 200 listeners, 2 s idle, 5 samples

For each backend: `bulkops serve --no-worker` on a new database, `--listeners` bulks of two
open operations, one listener each (raw HTTP connections of this process, each read as far
as its first event, then idle). The server's resident memory and CPU (% of one core, over
`--idle` s) are measured before the listeners connect and while they idle; then, one bulk at
a time, an operation is made final by the store's own `record_results` and the time from its
commit to its listener's event is taken (`--samples` times). The process's watcher polls
every `BULKOPS_CHANGE_POLL_SECONDS` (0.5 s by default): the latency is about half of it, plus
one read of every listened bulk's version (changes are made at random moments of its period).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from bench import databases
from bench.http_load import cpu_seconds
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation, bulk_operations
from bulkops.store.database import Database
from bulkops.store.lifecycle import Result, record_results, utc_now
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks

TOPIC = "async.magento.catalog.api.productrepositoryinterface.save.post"
WAVE = 50
"""Listeners connecting at once."""


def open_bulk() -> NewBulk:
    return NewBulk(
        uuid=str(uuid.uuid4()),
        description=None,
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=datetime(2030, 1, 1),
        operations=[NewOperation(key, TOPIC, "[]") for key in range(2)],
    )


@dataclass
class Listener:
    """One connection to a bulk's events: the arrival time of each event, in order."""

    uuid: str
    arrived: asyncio.Queue[tuple[str, float]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


async def listen(server: RunningServer, token: str, listener: Listener) -> None:
    address = urlsplit(server.base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        (
            f"GET /rest/V1/bulk/{listener.uuid}/events HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        status = await reader.readline()
        assert b" 200 " in status, status
        # Chunk sizes and headers are other lines: only event names matter here.
        async for line in reader:
            if line.startswith(b"event: "):
                listener.arrived.put_nowait((line[7:].strip().decode(), time.perf_counter()))
    finally:
        writer.close()


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def idle_cpu(pid: int, seconds: float) -> float:
    """% of one core the process used over `seconds`."""
    used = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - used) / seconds * 100


@dataclass(frozen=True)
class Figures:
    backend: str
    listeners: int
    connect_s: float
    rss_before_kib: int
    rss_after_kib: int
    cpu_before: float
    cpu_after: float
    latencies_ms: list[float]


async def measure(name: str, server: RunningServer, url: str, args: argparse.Namespace) -> Figures:
    bulks = [open_bulk() for _ in range(args.listeners)]
    await asyncio.to_thread(insert_bulks, url, bulks)
    token = server.admin_token()
    pid = server.process.pid
    await asyncio.sleep(1)
    rss_before, cpu_before = resident_kib(pid), await idle_cpu(pid, args.idle)

    listeners = [Listener(bulk.uuid) for bulk in bulks]
    started = time.perf_counter()
    # In waves, as clients come: a thousand at once would wait for the pool's connections.
    for start in range(0, len(listeners), WAVE):
        wave = listeners[start : start + WAVE]
        for listener in wave:
            listener.task = asyncio.create_task(listen(server, token, listener))
        for listener in wave:
            name_, _ = await asyncio.wait_for(listener.arrived.get(), 60)
            assert name_ == "progress", name_
    connect_s = time.perf_counter() - started
    await asyncio.sleep(1)
    rss_after, cpu_after = resident_kib(pid), await idle_cpu(pid, args.idle)

    database = Database(url)
    latencies = []
    # Changes at random moments of the watcher's period, not in step with it.
    moments = random.Random(7)
    try:
        for listener in listeners[: args.samples]:
            await asyncio.sleep(moments.uniform(0, 1))
            async with database.read() as connection:
                first = (await bulk_operations(connection, listener.uuid))[0]
            async with database.write() as connection:
                done = Result(first.id, OperationStatus.COMPLETE, "Done")
                await record_results(connection, [done], utc_now())
            committed = time.perf_counter()
            event, arrived = await asyncio.wait_for(listener.arrived.get(), 30)
            assert event == "progress", event
            latencies.append((arrived - committed) * 1000)
    finally:
        await database.dispose()
        for listener in listeners:
            assert listener.task is not None
            listener.task.cancel()
        await asyncio.gather(*(ln.task for ln in listeners if ln.task), return_exceptions=True)
    return Figures(
        name,
        args.listeners,
        connect_s,
        rss_before,
        rss_after,
        cpu_before,
        cpu_after,
        latencies,
    )


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> Figures:
    with databases.scratch(name, "bulkops_events_bench", workdir) as backend:
        url = backend.bulkops_url
        server = start_server(workdir / f"{name}-server", "--no-worker", DATABASE_URL=url)
        try:
            return asyncio.run(measure(name, server, url, args))
        finally:
            server.stop()


def table(rows: list[Figures], args: argparse.Namespace) -> str:
    lines = [
        f"{args.listeners:,} idle listeners, one bulk each; CPU over {args.idle:g} s idle; "
        f"latency over {args.samples} changes (commit to event)",
        "",
        "| backend | connect all, s | RSS before, MiB | RSS with them, MiB | KiB per listener "
        "| CPU before, % | CPU with them, % | latency p50 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        per_listener = (f.rss_after_kib - f.rss_before_kib) / f.listeners
        lines.append(
            f"| {f.backend} | {f.connect_s:.1f} | {f.rss_before_kib / 1024:.0f}"
            f" | {f.rss_after_kib / 1024:.0f} | {per_listener:.1f} | {f.cpu_before:.1f}"
            f" | {f.cpu_after:.1f} | {statistics.median(f.latencies_ms):.0f}"
            f" | {max(f.latencies_ms):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured")
    parser.add_argument("--samples", type=int, default=20, help="changes timed")
    parser.add_argument("--quick", action="store_true", help="CI: 200 listeners, 2 s, 5 samples")
    args = parser.parse_args()
    if args.quick:
        args.listeners, args.idle, args.samples = 200, 2.0, 5
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in databases.answering(args.backends.split(",")):
            rows.append(run_backend(name, args, Path(workdir)))
    print(table(rows, args), flush=True)


if __name__ == "__main__":
    main()
