"""HTTP under load: requests per second and latency percentiles of a selective search at 32
concurrent connections, beside trivial endpoints of the same server, measured by wrk.

    python bench/http_load.py [--rows 1000000] [--backends sqlite,postgresql,mariadb] [--reuse]
    python bench/http_load.py --quick            # 20,000 rows, 2 s per endpoint (CI)

For each backend: a database loaded by `bench/datagen.py` (as `bench/search.py` loads it, and
`--reuse` shares its loaded databases), `bulkops serve --no-worker` on it, then wrk (a process
of its own) on each endpoint in turn: a warm-up, then `--rounds` runs of `--duration` seconds,
endpoints interleaved, medians reported. Writes `http-<backend>-<rows>.json` (machine,
versions, every run), then `http.md` and `http.png` of every `http-*.json` in the directory
(`bench/report.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bench import databases, output, report
from bench.search import prepare
from bench.shapes import Shape
from tests.servers import RunningServer, start_server

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
INSTALL_WRK = "wrk is not installed; install it with: apt-get install -y wrk (Debian, Ubuntu)"
SEARCH = Shape("status", "status eq 3, page 1 of 20", ((("status", "eq", 3),),))


@dataclass(frozen=True)
class Endpoint:
    key: str
    title: str
    path: str
    authenticated: bool
    if_none_match: str = ""
    """An ETag to send in `If-None-Match` (bench/polling.py's revalidations)."""


ENDPOINTS = (
    Endpoint("health", "GET /health (SELECT 1, no token)", "/health", False),
    Endpoint("websites", "GET /rest/V1/store/websites (token)", "/rest/V1/store/websites", True),
    Endpoint(
        "search", f"search: {SEARCH.title} (token)", f"/rest/V1/bulk?{SEARCH.query_string()}", True
    ),
)


def wrk_version() -> str:
    # `wrk -v` prints its version line, then its usage, and exits 1
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (run.stdout or run.stderr).splitlines()[0].split(" Copyright")[0]


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time so far of the process and of its live children, the API
    processes of `serve --processes N` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def run_wrk(
    server: RunningServer, endpoint: Endpoint, args: argparse.Namespace, seconds: float
) -> dict[str, Any]:
    """One wrk run; its summary, with the CPU the server and wrk used (% of one core)."""
    environment = dict(
        os.environ, BENCH_AUTHORIZATION="", BENCH_IF_NONE_MATCH=endpoint.if_none_match
    )
    if endpoint.authenticated:
        # in the environment, not on the command line, where any process could read it
        environment["BENCH_AUTHORIZATION"] = f"Bearer {server.admin_token()}"
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={WRK_SCRIPT}",
        server.base_url + endpoint.path,
    ]
    server_cpu = cpu_seconds(server.process.pid)
    wrk_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = orjson.loads(run.stdout.strip().splitlines()[-1])
    summary["requests_per_s"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["server_cpu_percent"] = (cpu_seconds(server.process.pid) - server_cpu) / wall * 100
    summary["wrk_cpu_percent"] = (
        (used.ru_utime + used.ru_stime - wrk_cpu.ru_utime - wrk_cpu.ru_stime) / wall * 100
    )
    return summary


def check(server: RunningServer, endpoint: Endpoint) -> dict[str, Any]:
    """What the endpoint answers once: it must succeed (wrk counts failures, it does not stop)."""
    with server.admin_client() if endpoint.authenticated else server.client() as client:
        response = client.get(endpoint.path)
    response.raise_for_status()
    found = {"response_bytes": len(response.content)}
    if endpoint.key == "search":
        body = response.json()
        found |= {"total_count": body["total_count"], "items": len(body["items"])}
    return found


def measure(server: RunningServer, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = [
        {"key": e.key, "title": e.title, "path": e.path, **check(server, e)} for e in ENDPOINTS
    ]
    for endpoint in ENDPOINTS:
        run_wrk(server, endpoint, args, args.warmup)
    runs: dict[str, list[dict[str, Any]]] = {e.key: [] for e in ENDPOINTS}
    for _ in range(args.rounds):
        for endpoint in ENDPOINTS:  # interleaved: a drift of the machine hits every endpoint
            runs[endpoint.key].append(run_wrk(server, endpoint, args, args.duration))
    for result in results:
        done = runs[result["key"]]
        result |= {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in done),
            "p50_ms": statistics.median(r["latency_us"]["p50"] for r in done) / 1000,
            "p99_ms": statistics.median(r["latency_us"]["p99"] for r in done) / 1000,
            "server_cpu_percent": statistics.median(r["server_cpu_percent"] for r in done),
            "wrk_cpu_percent": statistics.median(r["wrk_cpu_percent"] for r in done),
            "failed_requests": sum(sum(r["errors"].values()) for r in done),
            "runs": done,
        }
        print(
            f"  {result['title']}: {result['requests_per_s']:,.0f} req/s,"
            f" p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms",
            flush=True,
        )
    return results


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """A result for each number of API processes, on one loaded database."""
    backend, load_seconds = prepare(name, args.rows, workdir, args.reuse)
    flavour, version = backend.flavour(), backend.version()
    header = output.header("http", flavour, version, wrk=wrk_version(), httpx=httpx.__version__)
    found = []
    try:
        for processes in args.server_processes:
            print(f"{flavour}: {processes} API process(es)", flush=True)
            server = start_server(
                workdir / f"{name}-{processes}",
                "--no-worker",
                f"--processes={processes}",
                DATABASE_URL=backend.bulkops_url,
            )
            try:
                results = measure(server, args)
            finally:
                server.stop()
            found.append(
                header
                | {
                    "rows": args.rows,
                    "server_processes": processes,
                    "connections": args.connections,
                    "threads": args.threads,
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "load_seconds": load_seconds,
                    "endpoints": results,
                }
            )
    finally:
        if not args.reuse and name != "sqlite":
            databases.drop_database(databases.SERVER_URLS[name], str(backend.url.database))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite", help="e.g. sqlite,postgresql,mariadb")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--server-processes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="API processes of the server (serve --processes), e.g. 1,2",
    )
    parser.add_argument("--quick", action="store_true", help="CI: 20,000 rows, 2 s per endpoint")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded databases")
    parser.add_argument("--output", type=Path, help="default bench/results (quick: .../quick)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(INSTALL_WRK)
    if args.quick:
        args.rows, args.duration, args.warmup, args.rounds = 20_000, 2.0, 1.0, 1
        args.server_processes = [1]
    directory = output.directory(args.output, args.quick)
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.backends.split(","):
            for result in run_backend(name, args, Path(workdir)):
                key = f"{result['backend']}-{args.rows}-{result['server_processes']}p"
                output.write_json(directory / f"http-{key}.json", result)
    report.finish(directory, "http")


if __name__ == "__main__":
    main()
