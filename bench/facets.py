"""Facets at scale: `GET /V1/bulk/facets` over HTTP beside the plain search of the same
criteria (`GET /V1/bulk`, its count and first page of 20) and beside plain SQL on the same
database: the GROUP BY of the operations, and the sum of the operations' counts by bulk,
topic and status (`bulkops_operation_tally`) where those answer.

    python bench/facets.py [--rows 1000000] [--repeat 7] [--backends sqlite,postgresql,mariadb]
    python bench/facets.py --quick          # 20,000 rows, 3 repeats, the servers that are up

For each backend: a database loaded by `bench/datagen.py` (as `bench/search.py` loads it, in a
database of its own, `--reuse` to keep it), `bulkops serve --no-worker` on it, and for each
shape the median time of each column, after checking that the facets, the search's
`total_count` and the SQL agree. Writes `facets-<backend>-<rows>.json` and `facets.md`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import databases, output
from bench.databases import Backend
from bench.measure import median_ms
from bench.search import chosen_values, prepare
from bench.shapes import Shape
from tests.servers import start_server

BACKENDS = ("sqlite", "postgresql", "mariadb")

Counts = Counter[tuple[Any, ...]]
"""Operations by the facets' values."""


@dataclass(frozen=True)
class FacetShape:
    shape: Shape
    """The criteria (and the plain search's page)."""
    facets: tuple[str, ...]

    def query_string(self) -> str:
        facets = "&".join(f"facets[]={name}" for name in self.facets)
        return f"{self.shape.query_string()}&{facets}"

    def scan_sql(self, backend: Backend) -> tuple[str, list[Any]]:
        """The GROUP BY on the operations (facets of the operation's own columns)."""
        where, parameters = self.shape.where(backend.placeholder, {}, backend.name)
        columns = ", ".join(self.facets)
        sql = f"SELECT {columns}, count(*) FROM bulkops_operation WHERE {where} GROUP BY {columns}"
        return sql, parameters

    def tally_sql(self, backend: Backend) -> tuple[str, list[Any]] | None:
        """The sum of the operations' counts by bulk, topic and status, where they answer."""
        fields = {field for group in self.shape.groups for field, _, _ in group}
        if not set(self.facets) | fields <= {"status", "topic_name", "bulk_uuid"}:
            return None
        where, parameters = self.shape.where(backend.placeholder, {}, backend.name)
        columns = ", ".join(self.facets)
        sql = (
            f"SELECT {columns}, sum(operations) FROM bulkops_operation_tally WHERE {where}"
            f" GROUP BY {columns} HAVING sum(operations) > 0"
        )
        return sql, parameters


def facet_shapes(bulk_uuid: str, topic: str) -> list[FacetShape]:
    status_topic = ("status", "topic_name")
    return [
        FacetShape(Shape("everything", "status x topic, everything", ()), status_topic),
        FacetShape(
            Shape("bulk", "status x topic, one bulk", ((("bulk_uuid", "eq", bulk_uuid),),)),
            status_topic,
        ),
        FacetShape(
            Shape(
                "failed_topic",
                "error_code, one topic's failures",
                ((("topic_name", "eq", topic),), (("status", "in", [2, 3]),)),
            ),
            ("error_code",),
        ),
    ]


def sql_runner(backend: Backend, statement: tuple[str, list[Any]]) -> Callable[[], Counts]:
    connection = backend.connect()
    sql, parameters = statement

    def run() -> Counts:
        cursor = connection.cursor()
        cursor.execute(sql, parameters)
        counts = Counter({tuple(row[:-1]): int(row[-1]) for row in cursor.fetchall()})
        cursor.close()
        connection.commit()
        return counts

    return run


def http_runner(client: httpx.Client, url: str) -> Callable[[], bytes]:
    def run() -> bytes:
        response = client.get(url)
        response.raise_for_status()
        return response.content

    return run


def facet_counts(body: bytes, facets: tuple[str, ...]) -> Counts:
    return Counter(
        {tuple(c[name] for name in facets): c["count"] for c in orjson.loads(body)["counts"]}
    )


def measure(
    client: httpx.Client, backend: Backend, shape: FacetShape, repeat: int
) -> dict[str, Any]:
    runners: dict[str, Callable[[], Any]] = {
        "facets": http_runner(client, f"/rest/V1/bulk/facets?{shape.query_string()}"),
        "search": http_runner(client, f"/rest/V1/bulk?{shape.shape.query_string()}"),
        "scan": sql_runner(backend, shape.scan_sql(backend)),
    }
    tally = shape.tally_sql(backend)
    if tally is not None:
        runners["tally"] = sql_runner(backend, tally)
    expected = runners["scan"]()
    assert facet_counts(runners["facets"](), shape.facets) == expected, shape.shape.title
    if tally is not None:
        assert runners["tally"]() == expected, shape.shape.title
    total = orjson.loads(runners["search"]())["total_count"]
    assert total == sum(expected.values()), shape.shape.title
    times = {f"{column}_ms": median_ms(run, repeat) for column, run in runners.items()}
    print(
        f"  {shape.shape.title}: {total:,} matches, {len(expected)} counts; "
        + ", ".join(f"{column} {times[f'{column}_ms']:.1f} ms" for column in runners),
        flush=True,
    )
    return {
        "key": shape.shape.key,
        "title": shape.shape.title,
        "query": shape.query_string(),
        "total_count": total,
        "counts": len(expected),
        **times,
    }


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    backend, load_seconds = prepare(name, args.rows, workdir, args.reuse, "bulkops_facets")
    flavour, version = backend.flavour(), backend.version()
    server = start_server(workdir / name, "--no-worker", DATABASE_URL=backend.bulkops_url)
    try:
        chosen = chosen_values(backend)
        with server.admin_client() as client:
            shapes = facet_shapes(chosen["bulk_uuid"], chosen["topic"])
            results = [measure(client, backend, shape, args.repeat) for shape in shapes]
    finally:
        server.stop()
        if not args.reuse and name != "sqlite":
            databases.drop_database(databases.SERVER_URLS[name], str(backend.url.database))
    return output.header("facets", flavour, version) | {
        "rows": args.rows,
        "repeat": args.repeat,
        "load_seconds": load_seconds,
        "shapes": results,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"{result['rows']:,}",
            result["backend"],
            shape["title"],
            f"{shape['total_count']:,}",
            f"{shape['facets_ms']:.1f}",
            f"{shape['search_ms']:.1f}",
            f"{shape['scan_ms']:.1f}",
            f"{shape['tally_ms']:.1f}" if "tally_ms" in shape else "-",
        ]
        for result in results
        for shape in result["shapes"]
    ]
    headers = [
        "rows",
        "backend",
        "facets",
        "matches",
        "HTTP facets ms",
        "HTTP search ms",
        "SQL GROUP BY ms",
        "SQL counts ms",
    ]
    m = results[0]["machine"]
    return output.table(headers, rows, numeric_from=3) + (
        f"\nMedians of {results[0]['repeat']} runs after a warm-up; {m['cpu']},"
        f" {m['cores']} cores; Python {m['python']}; bulkops {m['bulkops_commit']}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="CI: small, the servers up only")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded databases")
    parser.add_argument("--output", type=Path, help="default bench/results (quick: .../quick)")
    args = parser.parse_args()
    names = args.backends.split(",")
    if args.quick:
        args.rows, args.repeat = 20_000, 3
        names = databases.answering(names)
    directory = output.directory(args.output, args.quick)
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            result = run_backend(name, args, Path(workdir))
            output.write_json(directory / f"facets-{result['backend']}-{args.rows}.json", result)
    table = directory / "facets.md"
    table.write_text(markdown(output.load(directory, "facets")))
    print(f"wrote {table}\n{table.read_text()}")


if __name__ == "__main__":
    main()
