"""Soak: mixed submissions, searches and retries at 32 connections against `bulkops serve`,
whose worker stays busy with what they submit, for a long while (30 minutes by default).
Reports the errors (any answer but the expected one, or a failed connection: 0 expected),
p50/p99 latency of each kind of request, and the server's memory (RSS) before the load, after
a warm-up and at the end (flat expected).

    python bench/soak.py [--duration 1800] [--backend sqlite] [--connections 32]
    python bench/soak.py --quick                 # 30 s (CI)

Submissions are bulks of demo customers, one in five an email already taken, so that the
worker fails some (Magento's "same email") and retries have something to re-run. Writes
`soak-<backend>-<seconds>s.json` and prints its table.
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
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import output
from tests.backends import Backend
from tests.servers import RunningServer, start_server

SUBMIT = "/rest/default/async/bulk/V1/customers"
BULK_SIZE = 20
TAKEN_EMAILS = [f"taken{n}@example.com" for n in range(50)]
# Of every 10 requests: searches, submissions, retries.
KINDS = ("search",) * 6 + ("submit",) * 3 + ("retry",)
WARM_UP_SHARE = 0.1


def rss_mb(pid: int) -> float:
    """The process's resident memory now (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def customer(email: str) -> dict[str, Any]:
    return {
        "customer": {"email": email, "firstname": "Soak", "lastname": "Test"},
        "password": "Password1",
    }


def search_path(bulks: list[str]) -> str:
    """One of the searches clients make: failed operations, one bulk's, text, a later page."""
    criteria = "searchCriteria[filter_groups][0][filters][0]"
    choice = random.randrange(4)
    if choice == 0:
        query = f"{criteria}[field]=status&{criteria}[value]=3&searchCriteria[pageSize]=20"
    elif choice == 1 and bulks:
        query = f"{criteria}[field]=bulk_uuid&{criteria}[value]={random.choice(bulks)}"
    elif choice == 2:
        query = (
            f"{criteria}[field]=result_message&{criteria}[value]=%25same%25"
            f"&{criteria}[condition_type]=like&searchCriteria[pageSize]=10"
        )
    else:
        page = random.randint(1, 5)
        query = f"searchCriteria[pageSize]=20&searchCriteria[currentPage]={page}"
    return f"/rest/V1/bulk?{query}"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    bulks: list[str] = field(default_factory=list)


async def one_request(client: httpx.AsyncClient, tally: Tally) -> None:
    kind = random.choice(KINDS)
    if kind == "retry" and not tally.bulks:
        kind = "submit"
    if kind == "submit":
        items = [
            customer(random.choice(TAKEN_EMAILS))
            if random.random() < 0.2
            else customer(f"{uuid.uuid4().hex}@example.com")
            for _ in range(BULK_SIZE)
        ]
        request, expected = client.build_request("POST", SUBMIT, json=items), 202
    elif kind == "retry":
        path = f"/rest/V1/bulk/{random.choice(tally.bulks)}/retry"
        request, expected = client.build_request("POST", path, json={"statuses": [2, 3]}), 200
    else:
        request, expected = client.build_request("GET", search_path(tally.bulks)), 200
    started = time.perf_counter()
    try:
        response = await client.send(request)
    except httpx.TransportError as error:
        tally.errors.append(f"{kind}: {error!r}")
        return
    tally.latencies[kind].append((time.perf_counter() - started) * 1000)
    if response.status_code != expected:
        tally.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
    elif kind == "submit":
        tally.bulks.append(response.json()["bulk_uuid"])


async def soak(server: RunningServer, duration: float, connections: int) -> dict[str, Any]:
    tally = Tally()
    memory = {"start": rss_mb(server.process.pid)}
    deadline = time.monotonic() + duration
    warm_until = time.monotonic() + duration * WARM_UP_SHARE
    headers = {"Authorization": f"Bearer {server.admin_token()}"}
    limits = httpx.Limits(max_connections=connections)

    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def connection() -> None:
            while time.monotonic() < deadline:
                await one_request(client, tally)
                if "after_warm_up" not in memory and time.monotonic() >= warm_until:
                    memory["after_warm_up"] = rss_mb(server.process.pid)

        await asyncio.gather(*(connection() for _ in range(connections)))
    memory["end"] = rss_mb(server.process.pid)
    return {
        "duration_seconds": duration,
        "connections": connections,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:10],
        "requests": {
            kind: {
                "count": len(times),
                "p50_ms": round(statistics.median(times), 1),
                "p99_ms": round(statistics.quantiles(times, n=100)[98], 1),
            }
            for kind, times in sorted(tally.latencies.items())
        },
        "rss_mb": {moment: round(value, 1) for moment, value in memory.items()},
    }


def warnings(log: str) -> list[str]:
    """The server's distinct log lines other than uvicorn's (the causes of 5xx answers)."""
    lines = (line for line in log.splitlines() if line and not line.startswith(("INFO", " ")))
    return sorted(set(lines))[:20]


def table(result: dict[str, Any]) -> str:
    rss = result["rss_mb"]
    lines = [
        f"soak on {result['backend']}: {result['duration_seconds']:.0f} s at "
        f"{result['connections']} connections, {result['errors']} errors; server RSS "
        f"{rss['start']} MB at start, {rss.get('after_warm_up', '-')} MB after the warm-up, "
        f"{rss['end']} MB at the end",
        "",
        "| request | count | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for kind, figures in result["requests"].items():
        lines.append(f"| {kind} | {figures['count']} | {figures['p50_ms']} | {figures['p99_ms']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds")
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql", "mariadb"))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="30 s (CI)")
    parser.add_argument("--output", type=Path, help="directory of the result (bench/results)")
    args = parser.parse_args()
    duration = 30.0 if args.quick else args.duration
    backend = Backend(args.backend)
    with tempfile.TemporaryDirectory(prefix="bulkops-soak-") as workdir:
        database_url = backend.create_database(Path(workdir))
        server = start_server(Path(workdir) / "server", DATABASE_URL=database_url)
        try:
            result = output.header("soak", args.backend, "") | asyncio.run(
                soak(server, duration, args.connections)
            )
        finally:
            server.stop()
            backend.drop_database(database_url)
        result["server_warnings"] = warnings(server.log())
    directory = output.directory(args.output, args.quick)
    output.write_json(directory / f"soak-{args.backend}-{duration:.0f}s.json", result)
    print(table(result))
    if result["errors"]:
        print("\n".join(result["first_errors"] + result["server_warnings"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
