"""Operation search at scale, over HTTP end to end, against raw SQL on the same database.

    python bench/search.py [--rows 1000000] [--repeat 7] [--database-url URL] [--keep]
    python bench/search.py --existing URL [--repeat 7]

Loads N operations with a realistic mix (bulks of 1,000, 90 % complete, 3 % not retriably
failed, 60 days of start times) into a new database: a SQLite file by default; with
`--database-url` (`postgresql://...`, `mysql://...` or `mariadb://...`, a database on that
server to connect to) a database of its own created on that server and dropped at the end
(`--keep` keeps it and prints its URL; `--existing URL` runs on one kept earlier). PostgreSQL
is loaded with COPY, MySQL/MariaDB with multi-row INSERTs, SQLite with executemany.

Then starts `bulkops serve` on it and prints, for each search, the median time over HTTP end to
end (token check, count and page, JSON) beside the same count and page read directly with the
backend's own synchronous driver (sqlite3, psycopg, pymysql); the plan the database chooses for
each count and page (EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL,
ANALYZE on MariaDB, EXPLAIN ANALYZE on MySQL); and a search with no page size over every row,
streamed, with the server's peak memory before and after.
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bulkops.criteria import parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.store import search
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests.servers import RunningServer, start_server

TOPICS = [f"async.magento.catalog.api.productrepositoryinterface.save.{m}" for m in ["post", "put"]]
TOPICS += [f"async.V1.topic{n}.POST" for n in range(8)]
STATUSES = [1] * 900 + [2] * 40 + [3] * 30 + [4] * 20 + [5] * 10
BULK_SIZE = 1000
NOW = datetime(2026, 1, 1)

BULK_COLUMNS = ("uuid", "user_id", "user_type", "description", "operation_count", "start_time")
OPERATION_COLUMNS = (
    "bulk_uuid",
    "operation_key",
    "topic_name",
    "serialized_data",
    "status",
    "error_code",
    "result_message",
    "updated_at",
    "start_time",
)
SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}


def serialized_data(operation_id: int) -> str:
    item = json.dumps({"product": {"sku": f"sku-{operation_id}", "price": 10}})
    return json.dumps({"entity_id": None, "entity_link": "", "meta_information": item})


def generate_bulks(rows: int) -> Iterator[tuple[Any, ...]]:
    """A row of `bulkops_bulk` for every 1,000 operations."""
    rng = random.Random(7)
    for bulk_index in range(max(1, -(-rows // BULK_SIZE))):
        bulk_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        start = (NOW - timedelta(seconds=rng.randrange(60 * 86400))).strftime("%Y-%m-%d %H:%M:%S")
        topic = rng.choice(TOPICS)
        size = min(BULK_SIZE, rows - bulk_index * BULK_SIZE)
        yield (bulk_uuid, 1, 2, f"Topic {topic}", size, start)


def generate_operations(rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """The operation rows of each bulk of `generate_bulks`, in the same order."""
    rng = random.Random(8)
    operation_id = 0
    for bulk_uuid, _, _, description, size, start in generate_bulks(rows):
        topic = description.removeprefix("Topic ")
        operations = []
        for key in range(size):
            operation_id += 1
            status = rng.choice(STATUSES)
            failed = status in (2, 3, 5)
            operations.append(
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
        yield operations


@dataclass
class Backend:
    """A database under test, reached by bulkops (`url`) and by its sync driver."""

    url: URL

    @property
    def name(self) -> str:
        backend = self.url.get_backend_name()
        return "mysql" if backend == "mariadb" else backend

    def connect(self) -> Any:
        """A DB-API connection of the backend's synchronous driver."""
        url = self.url
        if self.name == "sqlite":
            return sqlite3.connect(str(url.database), check_same_thread=False)
        if self.name == "postgresql":
            import psycopg

            return psycopg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                dbname=url.database,
            )
        import pymysql

        return pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=url.database,
            charset="utf8mb4",
        )

    @property
    def placeholder(self) -> str:
        return "?" if self.name == "sqlite" else "%s"

    def flavour(self) -> str:
        if self.name != "mysql":
            return self.name
        with closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return "mariadb" if "mariadb" in cursor.fetchone()[0].lower() else "mysql"


def create_database(server_url: str) -> Backend:
    """A new database on the server of `server_url` (connected to as given)."""
    server = Backend(make_url(server_url))
    name = f"bulkops_bench_{uuid.uuid4().hex[:12]}"
    _administer(server, f"CREATE DATABASE {name}", " CHARACTER SET utf8mb4")
    return Backend(server.url.set(database=name))


def drop_database(backend: Backend, server_url: str) -> None:
    server = Backend(make_url(server_url))
    statement = f"DROP DATABASE IF EXISTS {backend.url.database}"
    _administer(server, statement + (" WITH (FORCE)" if server.name == "postgresql" else ""))


def _administer(server: Backend, statement: str, mysql_suffix: str = "") -> None:
    with closing(server.connect()) as connection:
        if server.name == "postgresql":
            connection.autocommit = True
        else:
            statement += mysql_suffix
        cursor = connection.cursor()
        cursor.execute(statement)
        cursor.close()


def load(backend: Backend, rows: int) -> None:
    """The schema through bulkops' own migrations, then `rows` operations by the fastest
    route of each backend (bulks first, for the operations' foreign key), then fresh
    statistics."""
    asyncio.run(migrate(backend.url.render_as_string(hide_password=False)))
    bulk_insert = _insert("bulkops_bulk", BULK_COLUMNS, backend.placeholder)
    operation_insert = _insert("bulkops_operation", OPERATION_COLUMNS, backend.placeholder)
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        if backend.name == "postgresql":
            with cursor.copy(f"COPY bulkops_bulk ({', '.join(BULK_COLUMNS)}) FROM STDIN") as copy:
                for bulk_row in generate_bulks(rows):
                    copy.write_row(bulk_row)
            columns = ", ".join(OPERATION_COLUMNS)
            with cursor.copy(f"COPY bulkops_operation ({columns}) FROM STDIN") as copy:
                for operation_rows in generate_operations(rows):
                    for row in operation_rows:
                        copy.write_row(row)
        else:
            # pymysql sends an executemany of an INSERT as multi-row INSERTs.
            cursor.executemany(bulk_insert, list(generate_bulks(rows)))
            for operation_rows in generate_operations(rows):
                cursor.executemany(operation_insert, operation_rows)
        connection.commit()
        if backend.name == "postgresql":
            # Statistics, and the visibility map index-only scans need (autovacuum's job).
            connection.autocommit = True
            cursor.execute("VACUUM (ANALYZE) bulkops_bulk, bulkops_operation")
        elif backend.name == "mysql":
            cursor.execute("ANALYZE TABLE bulkops_bulk, bulkops_operation")
            cursor.fetchall()
        else:
            cursor.execute("ANALYZE")
        cursor.close()


async def migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


def _insert(table: str, columns: Sequence[str], placeholder: str) -> str:
    marks = ", ".join([placeholder] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


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


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    """The searchCriteria filters, as a query string."""
    where: str
    """The same filter in SQL, `{}` for each placeholder."""
    parameters: tuple[object, ...]


def _filter(group: int, field: str, value: str, condition: str) -> str:
    prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
    return f"{prefix}[field]={field}&{prefix}[value]={value}&{prefix}[condition_type]={condition}"


def search_shapes(bulk_uuid: str, day: str) -> list[Shape]:
    """The searches timed; `day` (`YYYY-MM-DD`) is one of the sixty: about 1/60 of the rows."""
    first, last = f"{day} 00:00:00", f"{day} 23:59:59"
    return [
        Shape("status eq 3", _filter(0, "status", "3", "eq"), "status = {}", (3,)),
        Shape(
            "bulk_uuid eq X",
            _filter(0, "bulk_uuid", bulk_uuid, "eq"),
            "bulk_uuid = {}",
            (bulk_uuid,),
        ),
        Shape(
            "start_time from/to (1 day)",
            _filter(0, "start_time", first, "from") + "&" + _filter(1, "start_time", last, "to"),
            "start_time >= {} AND start_time <= {}",
            (first, last),
        ),
        Shape("status eq 5", _filter(0, "status", "5", "eq"), "status = {}", (5,)),
    ]


Statement = tuple[str, Any]
"""SQL and its parameters, exactly as the synchronous driver gets them."""


def naive_statements(backend: Backend, shape: Shape) -> list[Statement]:
    """The count and the page as one would write them by hand."""
    where = shape.where.format(*[backend.placeholder] * len(shape.parameters))
    return [
        (f"SELECT count(*) FROM bulkops_operation WHERE {where}", shape.parameters),
        (f"SELECT * FROM bulkops_operation WHERE {where} ORDER BY id LIMIT 20", shape.parameters),
    ]


def bulkops_statements(backend: Backend, shape: Shape) -> list[Statement]:
    """The count and the page bulkops runs for this search: its own statements, compiled for
    the backend's synchronous driver and captured as they reach the driver."""
    criteria = parse_search_criteria(
        parse_query_string(f"{shape.query}&searchCriteria[pageSize]=20")
    )
    engine = create_engine(
        backend.url.set(drivername=f"{backend.name}+{SYNC_DRIVERS[backend.name]}"),
        poolclass=NullPool,
    )
    captured: list[Statement] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    with engine.connect() as connection:
        found = search.Matches(
            *connection.execute(search.count_query(criteria, backend.name)).one()
        )
        connection.execute(search.page_query(criteria, backend.name, found, 20, 1)).all()
    engine.dispose()
    return captured[-2:]


def raw_runner(backend: Backend, statements: list[Statement]) -> Callable[[], object]:
    """Runs the statements in one read transaction on a connection of its own."""
    connection = backend.connect()

    def run() -> object:
        cursor = connection.cursor()
        answers = []
        for sql, parameters in statements:
            cursor.execute(sql, parameters)
            answers.append(cursor.fetchall())
        cursor.close()
        connection.commit()
        return answers

    return run


def plans(backend: Backend, flavour: str, statements: list[Statement]) -> list[str]:
    """The plan of each statement, each run once behind EXPLAIN (with ANALYZE where the
    database has it)."""
    prefix = {
        "sqlite": "EXPLAIN QUERY PLAN ",
        "postgresql": "EXPLAIN (ANALYZE, BUFFERS) ",
        "mariadb": "ANALYZE ",
        "mysql": "EXPLAIN ANALYZE ",
    }[flavour]
    answers = []
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        for sql, parameters in statements:
            cursor.execute(prefix + sql, parameters)
            columns = [column[0] for column in cursor.description]
            answers.append(_format_plan(flavour, columns, cursor.fetchall()))
        cursor.close()
        connection.rollback()
    return answers


def _format_plan(flavour: str, columns: list[str], rows: Sequence[Any]) -> str:
    if flavour == "sqlite":
        return "\n".join(str(row[3]) for row in rows)
    if flavour == "mariadb":
        wanted = ["table", "type", "key", "rows", "r_rows", "filtered", "r_filtered", "Extra"]
        return "\n".join(
            " ".join(f"{key}={row[columns.index(key)]}" for key in wanted if key in columns)
            for row in rows
        )
    return "\n".join(str(row[0]) for row in rows)


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


def raw_read_all(backend: Backend) -> int:
    """Every row, read in Python through a server-side cursor where the driver has one."""
    with closing(backend.connect()) as connection:
        if backend.name == "postgresql":
            cursor = connection.cursor(name="every_row")
            cursor.itersize = 1000
        elif backend.name == "mysql":
            import pymysql.cursors

            cursor = connection.cursor(pymysql.cursors.SSCursor)
        else:
            cursor = connection.cursor()
        cursor.execute("SELECT * FROM bulkops_operation ORDER BY id")
        count = sum(1 for _ in cursor)
        cursor.close()
        return count


def middle_bulk(backend: Backend) -> tuple[str, str]:
    """The uuid and start day of a bulk from the middle of the table: a search for it finds
    nothing in the first half of the rows (a planner walking the primary key pays for that)."""
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM bulkops_bulk")
        (bulks,) = cursor.fetchone()
        cursor.execute(
            f"SELECT uuid, start_time FROM bulkops_bulk ORDER BY id LIMIT 1 OFFSET {bulks // 2}"
        )
        found, start_time = cursor.fetchone()
        cursor.close()
        return str(found), str(start_time)[:10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", help="a database on the PostgreSQL or MySQL server")
    parser.add_argument("--keep", action="store_true", help="keep the database created")
    parser.add_argument("--existing", help="the URL of a database a --keep run loaded")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        if args.existing:
            backend = Backend(make_url(args.existing))
        elif args.database_url:
            backend = create_database(args.database_url)
        else:
            backend = Backend(make_url(f"sqlite:///{workdir / 'bulkops.sqlite3'}"))
        try:
            if not args.existing:
                started = time.perf_counter()
                load(backend, args.rows)
                print(
                    f"loaded {args.rows:,} operations into {backend.flavour()} in"
                    f" {time.perf_counter() - started:.1f} s"
                )
            server = start_server(
                workdir,
                "--no-worker",
                DATABASE_URL=backend.url.render_as_string(hide_password=False),
            )
            try:
                run(server, backend, args)
            finally:
                server.stop()
        finally:
            if args.database_url and not args.existing:
                if args.keep:
                    print(f"\nkept: {backend.url.render_as_string(hide_password=False)}")
                else:
                    drop_database(backend, args.database_url)


def run(server: RunningServer, backend: Backend, args: argparse.Namespace) -> None:
    flavour = backend.flavour()
    shapes = search_shapes(*middle_bulk(backend))
    rows = raw_read_all(backend) if args.existing else args.rows
    print(f"\n{flavour}: {server.database_url.split('@')[-1]}")
    print(
        f"\n| search ({rows:,} operations), pageSize 20 | bulkops HTTP ms"
        " | raw SQL, bulkops' count and page ms | HTTP / raw"
        " | raw SQL, plain count(*) and ORDER BY id LIMIT 20 ms |"
    )
    print("|---|---:|---:|---:|---:|")
    statements = {shape.name: bulkops_statements(backend, shape) for shape in shapes}
    with server.admin_client() as client:
        for shape in shapes:
            url = f"/rest/V1/bulk?{shape.query}&searchCriteria[pageSize]=20"
            check = client.get(url)
            check.raise_for_status()
            assert len(check.json()["items"]) == 20, check.text[:300]
            http_ms = median_ms(lambda url=url: client.get(url).raise_for_status(), args.repeat)
            same_ms = median_ms(raw_runner(backend, statements[shape.name]), args.repeat)
            naive_ms = median_ms(raw_runner(backend, naive_statements(backend, shape)), args.repeat)
            print(
                f"| {shape.name} | {http_ms:.2f} | {same_ms:.2f} | {http_ms / same_ms:.1f}x"
                f" | {naive_ms:.2f} |"
            )

        print("\nPlans of the count and the page bulkops runs:")
        for shape in shapes[:3]:
            for what, plan in zip(
                ("count", "page"), plans(backend, flavour, statements[shape.name]), strict=True
            ):
                print(
                    f"\n{shape.name}, {what}:\n"
                    + "\n".join(f"    {line}" for line in plan.splitlines())
                )

        rss_before = peak_rss_mb(server)
        started = time.perf_counter()
        received, total = stream_all(client)
        stream_s = time.perf_counter() - started
        rss_after = peak_rss_mb(server)

    started = time.perf_counter()
    raw_rows = raw_read_all(backend)
    raw_s = time.perf_counter() - started
    assert total == raw_rows == rows, (total, raw_rows, rows)
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
