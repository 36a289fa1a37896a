"""The fixed cost of one request, without a network: the ASGI app called directly for N
searches of one bulk uuid (an indexed equality the database answers at once), timed, and
optionally profiled.

    python bench/request_profile.py [--requests 2000] [--bulks 200] [--profile out.prof]
        [--folded out.folded]

Prints microseconds per request: the whole app, the same search's statements alone on the
app's own engine (the floor), and those statements sent straight to SQLite's module (the
database's own time). `--folded` writes the profile as folded stacks (one line a
stack, `frame;frame;... count`), the text form flame graph tools read.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import cProfile
import pstats
import sqlite3
import tempfile
import time
from collections import defaultdict
from typing import Any

import orjson

from bulkops.api.app import create_app
from bulkops.criteria import parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.settings import Settings
from bulkops.store import search

HOST = b"127.0.0.1"


class Driver:
    """An ASGI server reduced to calling the app: lifespan, then requests one at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start(self) -> None:
        async def receive() -> dict[str, Any]:
            return await self._lifespan.get()

        async def send(message: dict[str, Any]) -> None:
            await self._started.put(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, receive, send))
        await self._lifespan.put({"type": "lifespan.startup"})
        message = await self._started.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(message)

    async def stop(self) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await self._task

    async def request(
        self, method: str, path: str, query: bytes = b"", body: bytes = b"", token: str = ""
    ) -> tuple[int, bytes]:
        headers = [(b"host", HOST), (b"accept", b"application/json")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        if body:
            headers.append((b"content-type", b"application/json"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        received = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:
                await asyncio.Event().wait()  # no disconnect while the app answers
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def _sql(statement: Any, database: Any) -> tuple[str, tuple[Any, ...]]:
    """A statement as SQLite's module takes it: its text and positional parameters."""
    compiled = statement.compile(dialect=database.engine.dialect)
    parameters = compiled.construct_params()
    return compiled.string, tuple(parameters[name] for name in compiled.positiontup)


def per_request(started: float, cpu: float, count: int) -> tuple[float, float]:
    """Microseconds of wall time and of the process's CPU time (its threads' included) per
    request since `started` and `cpu`: on a busy machine the CPU time varies less."""
    return (
        (time.perf_counter() - started) / count * 1e6,
        (time.process_time() - cpu) / count * 1e6,
    )


def folded(profile: cProfile.Profile) -> list[str]:
    """Folded stacks from cProfile's caller graph: each function's own time, on the path of
    its heaviest callers (cProfile keeps callers, not whole stacks: an approximation)."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        short = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
        return f"{short}:{line}:{function}" if short else function

    def path(key: tuple[str, int, str], seen: frozenset[Any]) -> list[str]:
        callers = stats[key][4]
        heaviest = max(
            (c for c in callers if c not in seen and c in stats),
            key=lambda c: callers[c][3],
            default=None,
        )
        own = [name(key)]
        return own if heaviest is None else [*path(heaviest, seen | {key}), *own]

    totals: dict[str, int] = defaultdict(int)
    for key, (_cc, _nc, own_time, _cum, _callers) in stats.items():
        microseconds = round(own_time * 1e6)
        if microseconds:
            totals[";".join(path(key, frozenset()))] += microseconds
    return [f"{stack} {count}" for stack, count in sorted(totals.items())]


async def run(args: argparse.Namespace, workdir: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'bulkops.sqlite3'}",
        admin_username="admin",
        admin_password="Admin123-profile",  # type: ignore[arg-type]
        rate_limit_per_caller="",  # type: ignore[arg-type]
        rate_limit_per_address="",  # type: ignore[arg-type]
    )
    driver = Driver(create_app(settings, run_worker=False))
    await driver.start()
    try:
        status, body = await driver.request(
            "POST",
            "/rest/V1/integration/admin/token",
            body=orjson.dumps({"username": "admin", "password": "Admin123-profile"}),
        )
        token = orjson.loads(body)
        uuids = []
        for _ in range(args.bulks):
            status, body = await driver.request(
                "POST",
                "/rest/default/async/bulk/V1/customers",
                body=orjson.dumps(
                    [
                        {"customer": {"email": f"{n}@example.com"}, "password": "Password1"}
                        for n in range(3)
                    ]
                ),
                token=token,
            )
            if status != 202:
                raise RuntimeError(body)
            uuids.append(orjson.loads(body)["bulk_uuid"])
        queries = [
            (
                "searchCriteria[filter_groups][0][filters][0][field]=bulk_uuid"
                f"&searchCriteria[filter_groups][0][filters][0][value]={u}"
                "&searchCriteria[pageSize]=20"
            ).encode()
            for u in uuids
        ]

        async def searches(count: int) -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            for n in range(count):
                status, body = await driver.request(
                    "GET", "/rest/V1/bulk", queries[n % len(queries)], token=token
                )
                if status != 200:
                    raise RuntimeError(body)
            return per_request(started, cpu, count)

        app = driver.app
        database = app.state.database

        async def floor(count: int) -> tuple[float, float]:
            # The same statements on the same engine, without HTTP, auth or JSON.
            parsed = [
                parse_search_criteria(parse_query_string(q), app.state.settings.page_limits)
                for q in queries
            ]
            started, cpu = time.perf_counter(), time.process_time()
            for n in range(count):
                async with database.read() as connection:
                    await search.search_page(connection, parsed[n % len(parsed)], database.backend)
            return per_request(started, cpu, count)

        # The same statements again, straight to SQLite (its module, no SQLAlchemy): what the
        # database itself takes.
        sqlite = sqlite3.connect(workdir / "bulkops.sqlite3", isolation_level=None)
        statements = []
        for q in queries:
            criteria = parse_search_criteria(parse_query_string(q), app.state.settings.page_limits)
            count = search.count_query(criteria, database.backend)
            matches = search.Matches.of(sqlite.execute(*_sql(count, database)).fetchone())
            page = search.page_query(criteria, database.backend, matches, 20, 0)
            statements.append((_sql(count, database), _sql(page, database)))

        def database_floor(count: int) -> float:
            started = time.perf_counter()
            for n in range(count):
                counted, paged = statements[n % len(statements)]
                sqlite.execute("BEGIN")
                sqlite.execute(*counted).fetchall()
                sqlite.execute(*paged).fetchall()
                sqlite.execute("COMMIT")
            return (time.perf_counter() - started) / count * 1e6

        await searches(200)  # warm: caches, compiled statements
        await floor(200)
        for _ in range(args.rounds):
            app_wall, app_cpu = await searches(args.requests)
            floor_wall, floor_cpu = await floor(args.requests)
            print(
                f"app {app_wall:.0f} us/request ({app_cpu:.0f} us CPU),"
                f" floor {floor_wall:.0f} us/search ({floor_cpu:.0f} us CPU),"
                f" database {database_floor(args.requests):.0f} us/search",
                flush=True,
            )
        if args.profile or args.folded:
            profile = cProfile.Profile()
            profile.enable()
            await searches(args.requests)
            profile.disable()
            if args.profile:
                profile.dump_stats(args.profile)
            if args.folded:
                args.folded.write_text("\n".join(folded(profile)) + "\n")
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    finally:
        await driver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--bulks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="cProfile's output (pstats)")
    parser.add_argument("--folded", type=Path, help="folded stacks, for flame graphs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    main()
