"""The plan each database chooses for the statements of a search: bulkops' own (compiled by
SQLAlchemy for the backend's synchronous driver and captured as they reach it) and Magento's.
EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, ANALYZE on MariaDB."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from bench.databases import Backend
from bench.shapes import Shape, Statement, magento_statements
from bulkops.criteria import parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.store import search

SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}
PREFIXES = {
    "sqlite": "EXPLAIN QUERY PLAN ",
    "postgresql": "EXPLAIN (ANALYZE, BUFFERS) ",
    "mariadb": "ANALYZE ",
    "mysql": "EXPLAIN ANALYZE ",
}


def bulkops_statements(backend: Backend, shape: Shape) -> list[Statement]:
    """The count and the page bulkops runs for a paged search."""
    criteria = parse_search_criteria(parse_query_string(shape.query_string()))
    assert criteria.page_size
    engine = create_engine(
        backend.url.set(drivername=f"{backend.name}+{SYNC_DRIVERS[backend.name]}"),
        poolclass=NullPool,
    )
    captured: list[Statement] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    with engine.connect() as connection:
        found = search.Matches.of(
            connection.execute(search.count_query(criteria, backend.name)).one()
        )
        offset = search.page_offset(criteria.current_page, criteria.page_size)
        query = search.page_query(criteria, backend.name, found, criteria.page_size, offset)
        connection.execute(query).all()
    engine.dispose()
    return captured[-2:]


def explain(backend: Backend, flavour: str, statements: list[Statement]) -> list[str]:
    answers = []
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        for sql, parameters in statements:
            cursor.execute(PREFIXES[flavour] + sql, parameters)
            columns = [column[0] for column in cursor.description]
            answers.append(_format(flavour, columns, cursor.fetchall()))
        cursor.close()
        connection.rollback()
    return answers


def _format(flavour: str, columns: list[str], rows: Sequence[Any]) -> str:
    if flavour == "sqlite":
        return "\n".join(str(row[3]) for row in rows)
    if flavour == "mariadb":
        wanted = ["table", "type", "key", "rows", "r_rows", "filtered", "r_filtered", "Extra"]
        return "\n".join(
            " ".join(f"{key}={row[columns.index(key)]}" for key in wanted if key in columns)
            for row in rows
        )
    return "\n".join(str(row[0]) for row in rows)


def of_shapes(backend: Backend, flavour: str, shapes: list[Shape]) -> dict[str, dict[str, Any]]:
    """{shape key: {"bulkops": [count plan, page plan], "magento": [...]}} for paged shapes."""
    found = {}
    for shape in shapes:
        if not shape.page_size:
            continue
        found[shape.key] = {
            "bulkops": explain(backend, flavour, bulkops_statements(backend, shape)),
            "magento": explain(
                backend, flavour, magento_statements(shape, backend.name, backend.placeholder)
            ),
        }
    return found
