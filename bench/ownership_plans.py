"""The plans PostgreSQL chooses for the searches of an integration limited to its own bulks:
the count and the page bulkops runs, scoped as the API scopes them, at scale.

    .venv/bin/python -m bench.ownership_plans [--rows 1000000] [--owners 50]

Loads the benchmark's operations (bench/datagen.py) into a scratch database, gives their bulks
to `--owners` integrations in turn, and prints each statement's plan (EXPLAIN ANALYZE), its
time, and whether any table is read whole (a sequential scan)."""

from __future__ import annotations

import argparse
import re
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from bench import databases, datagen
from bench.plans import SYNC_DRIVERS
from bulkops.api.ownership import visible_to
from bulkops.auth.context import UserContext
from bulkops.criteria import parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.status import UserType
from bulkops.store import search

FILTER = "searchCriteria[filter_groups][0][filters][0][{}]={}"


def _query(field: str, value: str) -> str:
    return "&".join(
        FILTER.format(key, value)
        for key, value in (("field", field), ("value", value), ("condition_type", "eq"))
    )


def _statements(backend: databases.Backend, query_string: str, owner: int) -> list[Any]:
    """The count and the page of the owner's search, as compiled and sent by bulkops."""
    user = UserContext(UserType.INTEGRATION, owner, frozenset())
    criteria = visible_to(user, parse_search_criteria(parse_query_string(query_string)))
    assert criteria.page_size
    engine = create_engine(
        backend.url.set(drivername=f"postgresql+{SYNC_DRIVERS['postgresql']}"),
        poolclass=NullPool,
    )
    captured: list[Any] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    with engine.connect() as connection:
        found = search.Matches.of(
            connection.execute(search.count_query(criteria, "postgresql")).one()
        )
        offset = search.page_offset(criteria.current_page, criteria.page_size)
        page = search.page_query(criteria, "postgresql", found, criteria.page_size, offset)
        connection.execute(page).all()
    engine.dispose()
    return captured[-2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--owners", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        databases.scratch("postgresql", "bulkops_ownership_plans", Path(workdir)) as backend,
    ):
        datagen.load(backend, args.rows)
        with closing(backend.connect()) as connection:
            cursor = connection.cursor()
            cursor.execute(
                "UPDATE bulkops_bulk SET user_type = 1, user_id = id %% %s + 1", (args.owners,)
            )
            connection.commit()
            datagen.analyze(backend, connection)
            cursor.execute(
                "SELECT uuid, user_id FROM bulkops_bulk ORDER BY operation_rows DESC LIMIT 1"
            )
            largest, owner = cursor.fetchone()
            searches = {
                "by bulk_uuid (the largest bulk)": _query("bulk_uuid", largest),
                "by status 2": _query("status", "2"),
                "by status 3": _query("status", "3"),
                "by status 3, page 50": _query("status", "3") + "&searchCriteria[currentPage]=50",
                "no filter": "searchCriteria[currentPage]=1",
            }
            for name, query_string in searches.items():
                print(f"## {name}, owner {owner} of {args.owners}, {args.rows} operations")
                for sql, parameters in _statements(
                    backend, query_string + "&searchCriteria[pageSize]=20", owner
                ):
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, parameters)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    took = re.search(r"Execution Time: ([\d.]+) ms", plan)
                    scans = "SEQUENTIAL SCAN" if "Seq Scan" in plan else "indexed"
                    print(f"-- {scans}, {took[1] if took else '?'} ms\n{plan}\n")
            cursor.close()


if __name__ == "__main__":
    main()
