"""Keyset paging: page 1 and the deepest page of the operation search with the cursor
(`cursor=`) beside the same pages by number (`currentPage`), over HTTP, each beside its raw
SQL (the page alone, hand-written, through the backend's own driver).

    python bench/keyset.py [--rows 1000000] [--page-size 20] [--backends sqlite,postgresql,mariadb]
    python bench/keyset.py --quick       # 20,000 rows on SQLite, 5 runs

For each backend: `--rows` operations loaded by `bench/datagen.py`, `bulkops serve
--no-worker`, then for two orders (the default, `id`, and `start_time` ascending) the median
of `--repeat` sequential requests of each page after a warm-up. The deepest page is
rows / page size (50,000 at the defaults); its cursor is the one the page before would give.
Each page is timed three ways: over HTTP; the service's own SQL through its pool, without
HTTP (the page and the count of the matches, `total_count`, which every page has alike); and
the page alone by hand through the backend's own driver (row values after the position, or
OFFSET).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx

from bench import databases, datagen
from bench.databases import Backend
from bench.measure import median_ms
from bench.output import table
from bulkops.api import cursors
from bulkops.criteria import parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.store import keyset, search
from bulkops.store.database import Database
from tests.servers import start_server

COLUMNS = (
    "id, operation_key, bulk_uuid, topic_name, serialized_data, result_serialized_data, "
    "status, result_message, error_code, start_time"
)


@dataclass(frozen=True)
class Order:
    title: str
    sort: dict[str, str]
    """The search's sortOrders parameters."""
    columns: tuple[str, ...]
    """The position's columns, in order."""


ORDERS = (
    Order("id (the default)", {}, ("id",)),
    Order(
        "start_time ASC",
        {
            "searchCriteria[sortOrders][0][field]": "start_time",
            "searchCriteria[sortOrders][0][direction]": "ASC",
        },
        ("start_time", "id"),
    ),
)


def _position(backend: Backend, order: Order, offset: int) -> tuple[Any, ...]:
    """The position of the row at `offset` in the order: the last of the page before."""
    ordering = ", ".join(order.columns)
    sql = f"SELECT {ordering} FROM bulkops_operation ORDER BY {ordering} LIMIT 1 OFFSET {offset}"
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        found: tuple[Any, ...] = tuple(cursor.fetchone())
        cursor.close()
    return found


def _cursor(params: dict[str, str], position: tuple[Any, ...]) -> str:
    """The cursor the search would give after `position` (an admin's search: as sent)."""
    query = parse_query_string(str(httpx.QueryParams(params)).encode())
    return cursors.encode(parse_search_criteria(query), position)


async def _store_ms(url: str, params: dict[str, str], repeat: int) -> float:
    """The page as the service reads it (its count and its page, its SQL through its pool),
    without HTTP."""
    query = parse_query_string(str(httpx.QueryParams(params)).encode())
    criteria = parse_search_criteria(query)
    token = cursors.requested(query)
    database = Database(url)
    try:
        position = None if token is None else cursors.decode(criteria, token)

        async def page() -> None:
            async with database.read() as connection:
                if token is None:
                    await search.search_page(connection, criteria, database.backend)
                else:
                    await keyset.keyset_page(connection, criteria, database.backend, position)

        await page()  # warm the pool and the caches
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            await page()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await database.dispose()
    return statistics.median(times)


def _raw_sql_ms(backend: Backend, sql: str, values: tuple[Any, ...], repeat: int) -> float:
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()

        def run() -> None:
            cursor.execute(sql, values)
            cursor.fetchall()

        measured = median_ms(run, repeat)
        cursor.close()
    return measured


def _raw_sql(
    backend: Backend, order: Order, page_size: int, offset: int, position: tuple[Any, ...] | None
) -> tuple[str, tuple[Any, ...]]:
    """The page's SQL by hand: after `position` (row values, the best a database is offered)
    or past `offset` rows."""
    ordering = ", ".join(order.columns)
    base = f"SELECT {COLUMNS} FROM bulkops_operation"
    if position is None:
        sql = f"{base} ORDER BY {ordering} LIMIT {page_size} OFFSET {backend.placeholder}"
        return sql, (offset,)
    marks = ", ".join(backend.placeholder for _ in order.columns)
    return f"{base} WHERE ({ordering}) > ({marks}) ORDER BY {ordering} LIMIT {page_size}", position


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    deepest = args.rows // args.page_size
    offset = (deepest - 1) * args.page_size
    rows: list[list[str]] = []
    with databases.scratch(name, "bulkops_keyset_bench", workdir) as backend:
        datagen.load(backend, args.rows)
        server = start_server(
            workdir / f"{name}-server", "--no-worker", DATABASE_URL=backend.bulkops_url
        )
        try:
            with server.admin_client() as client:
                for order in ORDERS:
                    params = {"searchCriteria[pageSize]": str(args.page_size)} | order.sort
                    position = _position(backend, order, offset - 1)
                    by_number = "searchCriteria[currentPage]"
                    pages = [
                        ("page 1, currentPage", params | {by_number: "1"}, 0, None),
                        (
                            f"page {deepest:,}, currentPage",
                            params | {by_number: str(deepest)},
                            offset,
                            None,
                        ),
                        ("page 1, cursor", params | {"cursor": ""}, 0, None),
                        (
                            f"page {deepest:,}, cursor",
                            params | {"cursor": _cursor(params, position)},
                            offset,
                            position,
                        ),
                    ]
                    for title, query, skipped, after in pages:
                        answer = client.get("/rest/V1/bulk/", params=query)
                        assert answer.status_code == 200, answer.text
                        assert len(answer.json()["items"]) == args.page_size, title

                        def get(query: dict[str, str] = query) -> None:
                            client.get("/rest/V1/bulk/", params=query).raise_for_status()

                        http_ms = median_ms(get, args.repeat)
                        store_ms = asyncio.run(_store_ms(backend.bulkops_url, query, args.repeat))
                        sql, values = _raw_sql(backend, order, args.page_size, skipped, after)
                        sql_ms = _raw_sql_ms(backend, sql, values, args.repeat)
                        rows.append(
                            [
                                order.title,
                                title,
                                f"{http_ms:.1f}",
                                f"{store_ms:.2f}",
                                f"{sql_ms:.2f}",
                            ]
                        )
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="CI: 20,000 rows on SQLite")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat, args.backends = 20_000, 5, "sqlite"
    with tempfile.TemporaryDirectory() as workdir:
        for name in databases.answering(args.backends.split(",")):
            print(
                f"{name}: {args.rows:,} operations, pages of {args.page_size}, medians of "
                f"{args.repeat} sequential requests",
                flush=True,
            )
            print(flush=True)
            found = run_backend(name, args, Path(workdir))
            print(
                table(["order", "page", "HTTP ms", "service's SQL ms", "raw SQL ms"], found, 2),
                flush=True,
            )
            print(flush=True)


if __name__ == "__main__":
    main()
