"""Operation search at scale: bulkops over HTTP beside the floor (the best SQL for the same
result on the same database) and Magento's shape (its schema, indexes and query, same data).

    python bench/search.py [--rows 1000000] [--repeat 7] [--backends sqlite,postgresql,mariadb]
    python bench/search.py --quick          # 20,000 rows, 3 repeats, the servers that are up

For each backend: a new database (a SQLite file; a database of its own on the PostgreSQL or
MariaDB server of `BULKOPS_TEST_POSTGRESQL_URL` / `BULKOPS_TEST_MARIADB_URL`, local servers by
default) loaded by `bench/datagen.py`, `bulkops serve --no-worker` on it, and for each shape
of `bench/shapes.py` the median time of the three columns, after checking that all three
answer the same count and the same ids. `--reuse` keeps the loaded databases and uses them
again on the next run with the same `--rows`. Writes `search-<backend>-<rows>.json` (with the
machine, the versions and each statement's plan), then the table and plots (`bench/report.py`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import databases, datagen, output, plans, report
from bench.databases import Backend
from bench.measure import median_ms, peak_rss_mb
from bench.shapes import Shape, Statement, floor_statements, magento_statements, search_shapes
from tests.servers import RunningServer, start_server

BACKENDS = ("sqlite", "postgresql", "mariadb")

Answer = tuple[int, list[int]]
"""(total count, ids in order)."""


def statement_runner(backend: Backend, statements: list[Statement]) -> Callable[[], Answer]:
    """The count, then the page, in one read transaction on a connection of its own."""
    connection = backend.connect()

    def run() -> Answer:
        cursor = connection.cursor()
        (count_sql, count_parameters), (page_sql, page_parameters) = statements
        cursor.execute(count_sql, count_parameters)
        count, *bounds = cursor.fetchone()
        count = int(count)  # MySQL sums as DECIMAL
        if count == 0:
            return 0, []
        cursor.execute(page_sql, [*page_parameters, *bounds])
        ids = [row[0] for row in cursor.fetchall()]
        cursor.close()
        connection.commit()
        return count, ids

    return run


def http_runner(client: httpx.Client, shape: Shape) -> Callable[[], bytes]:
    """The search's whole body, received (a client's parsing is not timed)."""
    url = f"/rest/V1/bulk?{shape.query_string()}"

    def run() -> bytes:
        response = client.get(url)
        response.raise_for_status()
        return response.content

    return run


def http_answer(body: bytes) -> Answer:
    found = orjson.loads(body)
    return found["total_count"], [item["id"] for item in found["items"]]


def chosen_values(backend: Backend) -> dict[str, Any]:
    """The values searched for: a bulk of at least 100 operations from the middle of the
    table (a planner walking the primary key finds none of it in the first half), the week
    before the data's end."""
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM bulkops_bulk WHERE operation_count >= 100")
        (bulks,) = cursor.fetchone()
        cursor.execute(
            "SELECT uuid FROM bulkops_bulk WHERE operation_count >= 100"
            f" ORDER BY id LIMIT 1 OFFSET {bulks // 2}"
        )
        (bulk_uuid,) = cursor.fetchone()
        cursor.close()
    first_day = datagen.END - timedelta(days=7)
    return {
        "bulk_uuid": str(bulk_uuid),
        "topic": datagen.TOPICS[4],
        "phrase": datagen.SEARCHED_PHRASE,
        "week": (
            first_day.strftime(datagen.TIME_FORMAT),
            datagen.END.strftime(datagen.TIME_FORMAT),
        ),
    }


def measure(
    server: RunningServer, backend: Backend, shapes: list[Shape], repeat: int
) -> list[dict[str, Any]]:
    """Each shape's three columns, checked to agree before they are timed."""
    results = []
    with server.admin_client() as client:
        for shape in shapes:
            runners: dict[str, Callable[[], Any]] = {
                "bulkops": http_runner(client, shape),
                "floor": statement_runner(
                    backend, floor_statements(shape, backend.name, backend.placeholder)
                ),
                "magento": statement_runner(
                    backend, magento_statements(shape, backend.name, backend.placeholder)
                ),
            }
            answers = {column: run() for column, run in runners.items()}
            answers["bulkops"] = http_answer(answers["bulkops"])
            expected = answers["floor"]
            for column, answer in answers.items():
                assert answer == expected, (
                    f"{shape.title}: {column} answers {answer[0]} matches and ids"
                    f" {answer[1][:5]}..., the floor {expected[0]} and {expected[1][:5]}..."
                )
            rss_before = peak_rss_mb(server.process.pid)
            times = {f"{c}_ms": median_ms(run, repeat) for c, run in runners.items()}
            result: dict[str, Any] = {
                "key": shape.key,
                "title": shape.title,
                "query": shape.query_string(),
                "total_count": expected[0],
                "rows_returned": len(expected[1]),
                **times,
            }
            if shape.page_size is None:
                result["server_peak_rss_mb"] = [rss_before, peak_rss_mb(server.process.pid)]
            print(
                f"  {shape.title}: {expected[0]:,} matches; bulkops {times['bulkops_ms']:.1f} ms,"
                f" floor {times['floor_ms']:.1f} ms, Magento {times['magento_ms']:.1f} ms",
                flush=True,
            )
            results.append(result)
    return results


def prepare(
    name: str, rows: int, workdir: Path, reuse: bool, prefix: str = "bulkops_bench"
) -> tuple[Backend, float | None]:
    """The backend's database (`<prefix>_<rows>`) loaded with `rows` operations, and the
    seconds loading took (None when a loaded one was reused); both said on the console."""
    backend, load_seconds = _load_or_reuse(name, rows, workdir, reuse, f"{prefix}_{rows}")
    loaded = "reused" if load_seconds is None else f"loaded in {load_seconds:.0f} s"
    print(f"{backend.flavour()}: {rows:,} operations ({loaded})", flush=True)
    return backend, load_seconds


def _load_or_reuse(
    name: str, rows: int, workdir: Path, reuse: bool, database: str
) -> tuple[Backend, float | None]:
    """The database, and the seconds loading took (None when a loaded one was reused)."""
    if name == "sqlite":
        directory = output.RESULTS / "data" if reuse else workdir
        directory.mkdir(parents=True, exist_ok=True)
        backend = databases.sqlite_backend(directory / f"{database}.sqlite3")
        if reuse and _loaded(backend, rows):
            return backend, None
        Path(str(backend.url.database)).unlink(missing_ok=True)
    else:
        server_url = databases.SERVER_URLS[name]
        backend = databases.database_on(server_url, database)
        if reuse and databases.database_exists(server_url, database) and _loaded(backend, rows):
            return backend, None
        backend = databases.create_database(server_url, database)
    started = time.perf_counter()
    datagen.load(backend, rows)
    return backend, time.perf_counter() - started


def _loaded(backend: Backend, rows: int) -> bool:
    try:
        return backend.scalar("SELECT count(*) FROM magento_operation") == rows
    except Exception:
        return False


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    backend, load_seconds = prepare(name, args.rows, workdir, args.reuse)
    flavour, version = backend.flavour(), backend.version()
    server = start_server(workdir / name, "--no-worker", DATABASE_URL=backend.bulkops_url)
    try:
        shapes = search_shapes(args.rows, **chosen_values(backend))
        results = measure(server, backend, shapes, args.repeat)
        shape_plans = plans.of_shapes(backend, flavour, shapes) if args.plans else {}
    finally:
        server.stop()
        if not args.reuse and name != "sqlite":
            databases.drop_database(databases.SERVER_URLS[name], str(backend.url.database))
    for result in results:
        result["plans"] = shape_plans.get(result["key"], {})
    return output.header("search", flavour, version) | {
        "rows": args.rows,
        "repeat": args.repeat,
        "load_seconds": load_seconds,
        "shapes": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="CI: small, the servers up only")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded databases")
    parser.add_argument("--no-plans", dest="plans", action="store_false")
    parser.add_argument("--output", type=Path, help="default bench/results (quick: .../quick)")
    args = parser.parse_args()
    names = args.backends.split(",")
    if args.quick:
        args.rows, args.repeat = 20_000, 3
        names = databases.answering(names)
    results = output.directory(args.output, args.quick)
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            result = run_backend(name, args, Path(directory))
            output.write_json(results / f"search-{result['backend']}-{args.rows}.json", result)
    report.finish(results, "search")


if __name__ == "__main__":
    main()
