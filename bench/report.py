"""Every benchmark's table and plot, from the results saved in a directory: `search.md` and one
`search-<rows>.png` per data size, `ingest.md` and `ingest.png`, `processing.md` and
`processing.png`, `http.md` and `http.png`, for each benchmark that has results there.

    python bench/report.py [directory]      # bench/results by default

Each benchmark's script ends by writing its own the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import output, plots

Results = list[dict[str, Any]]


def search_markdown(results: Results) -> str:
    by_rows: dict[int, Results] = {}
    for result in results:
        by_rows.setdefault(result["rows"], []).append(result)
    lines = []
    for rows, same_size in by_rows.items():
        lines += [
            f"### {rows:,} operations\n",
            "| search | backend | matches | bulkops (HTTP) ms | floor (SQL) ms"
            " | Magento's shape ms | bulkops / floor | Magento / bulkops |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        titles = [shape["title"] for shape in same_size[0]["shapes"]]
        for title in titles:
            for result in same_size:
                shape = next(s for s in result["shapes"] if s["title"] == title)
                bulkops, floor, magento = (
                    shape[f"{c}_ms"] for c in ("bulkops", "floor", "magento")
                )
                lines.append(
                    f"| {title} | {result['backend']} | {shape['total_count']:,}"
                    f" | {bulkops:,.1f} | {floor:,.1f} | {magento:,.1f}"
                    f" | {output.ratio(bulkops / floor)} | {output.ratio(magento / bulkops)} |"
                )
        memory = [
            f"{r['backend']} {s['server_peak_rss_mb'][0]:.0f} → {s['server_peak_rss_mb'][1]:.0f} MB"
            for r in same_size
            for s in r["shapes"]
            if "server_peak_rss_mb" in s
        ]
        if memory:
            lines.append(
                "\nServer peak memory (VmHWM) before → after the search with no pageSize: "
                + ", ".join(memory)
                + "."
            )
        # each size on its own: a size may have been run with other repeats or backends
        lines += ["", _search_machine(same_size)]
    return "\n".join(lines)


def _search_machine(results: Results) -> str:
    machine = results[0]["machine"]
    versions = ", ".join(f"{r['backend']} {r['backend_version']}" for r in results)
    return (
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM;"
        f" Python {machine['python']}, {versions}; bulkops {machine['bulkops_commit']};"
        f" medians of {results[0]['repeat']} runs after a warm-up.\n"
    )


def ingest_markdown(results: Results) -> str:
    rows = []
    for r in results:
        items, http, direct = (
            r["items_per_bulk"],
            r["bulkops_seconds_per_bulk"],
            r["floor_seconds_per_bulk"],
        )
        rows.append(
            [
                r["backend"],
                f"{items / http:,.0f}",
                f"{items / direct:,.0f}",
                f"{http * 1000:,.0f}",
                f"{direct * 1000:,.0f}",
                output.ratio(http / direct),
            ]
        )
    first = results[0]
    return (
        f"Items accepted, bulks of {first['items_per_bulk']:,}, median of {first['bulks']}"
        " bulks\n\n"
        + output.table(
            [
                "backend",
                "bulkops (HTTP) items/s",
                "floor (SQL) items/s",
                "bulkops ms/bulk",
                "floor ms/bulk",
                "bulkops / floor (time)",
            ],
            rows,
        )
    )


def processing_markdown(results: Results) -> str:
    rows = []
    for r in results:
        floor = r["floor_seconds"]
        if floor:
            rate = f"{r['operations'] / floor:,.0f}"
            rows.append([r["backend"], "aio-pika publish + consume (floor)", rate, "1.00x"])
        for setup in r["setups"]:
            seconds = setup["seconds"]
            versus = output.ratio(seconds / floor) if floor else "n/a"
            rows.append([r["backend"], setup["setup"], f"{r['operations'] / seconds:,.0f}", versus])
    first = results[0]
    return (
        f"Operations completed, no-op handler, {first['operations']:,} operations,"
        f" batches and prefetch of {first['batch_size']}\n\n"
        + output.table(["backend", "setup", "operations/s", "time / floor"], rows, numeric_from=2)
        + order_markdown(results)
    )


def order_markdown(results: Results) -> str:
    """What processing a bulk's items in request order costs against independent items."""
    rows = []
    for r in results:
        by_setup = {
            (o["transport"], o["shape"], o["ordered"]): o["seconds"] for o in r.get("order", [])
        }
        for (transport, shape, ordered), seconds in by_setup.items():
            if ordered:
                independent = by_setup[(transport, shape, False)]
                rows.append(
                    [
                        r["backend"],
                        transport,
                        shape,
                        f"{r['operations'] / independent:,.0f}",
                        f"{r['operations'] / seconds:,.0f}",
                        output.ratio(seconds / independent),
                    ]
                )
    if not rows:
        return ""
    return (
        f"\n\nThe cost of order: {results[0]['operations']:,} operations,"
        f" {results[0]['order_workers']} worker processes\n\n"
        + output.table(
            ["backend", "transport", "bulks", "independent ops/s", "in order ops/s", "time ratio"],
            rows,
            numeric_from=3,
        )
    )


def http_markdown(results: Results) -> str:
    lines = [
        "| endpoint | backend | API processes | rows | req/s | p50 ms | p99 ms | server CPU"
        " | wrk CPU | req/s vs /health | req/s vs websites |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        by_key = {e["key"]: e for e in result["endpoints"]}
        for e in result["endpoints"]:
            lines.append(
                f"| {e['title']} | {result['backend']} | {result.get('server_processes', 1)}"
                f" | {result['rows']:,}"
                f" | {e['requests_per_s']:,.0f} | {e['p50_ms']:.1f} | {e['p99_ms']:.1f}"
                f" | {e['server_cpu_percent']:.0f} % | {e['wrk_cpu_percent']:.0f} %"
                f" | {e['requests_per_s'] / by_key['health']['requests_per_s']:.2f}x"
                f" | {e['requests_per_s'] / by_key['websites']['requests_per_s']:.2f}x |"
            )
    first = results[0]
    m = first["machine"]
    lines.append(
        f"\n{first['connections']} connections, {first['threads']} wrk threads,"
        f" {first['duration_s']:g} s per run, median of {first['rounds']} runs after a warm-up;"
        f" {m['cpu']}, {m['cores']} cores shared by wrk and the server; Python {m['python']},"
        f" {m['wrk']}; bulkops {m['bulkops_commit']}. CPU: % of one core during the runs."
    )
    return "\n".join(lines) + "\n"


def _write_search(directory: Path, results: Results) -> list[Path]:
    table = directory / "search.md"
    table.write_text(search_markdown(results))
    written = [table]
    for rows in sorted({r["rows"] for r in results}):
        path = directory / f"search-{rows}.png"
        plots.search(rows, [r for r in results if r["rows"] == rows], path)
        written.append(path)
    return written


def _one_table_one_plot(
    name: str, markdown: Callable[[Results], str], plot: Callable[[Results, Path], None]
) -> Callable[[Path, Results], list[Path]]:
    def write(directory: Path, results: Results) -> list[Path]:
        table, figure = directory / f"{name}.md", directory / f"{name}.png"
        table.write_text(markdown(results))
        plot(results, figure)
        return [table, figure]

    return write


WRITERS: dict[str, Callable[[Path, Results], list[Path]]] = {
    "search": _write_search,
    "ingest": _one_table_one_plot("ingest", ingest_markdown, plots.ingest),
    "processing": _one_table_one_plot("processing", processing_markdown, plots.processing),
    "http": _one_table_one_plot("http", http_markdown, plots.http),
}
"""Each benchmark's writer: the name its result files start with, its table and plot."""


def write(directory: Path, benchmarks: Iterable[str] = tuple(WRITERS)) -> list[Path]:
    """The tables and plots of `benchmarks` (all by default) that have results in
    `directory`, written there; their paths."""
    written = []
    for name in benchmarks:
        results = output.load(directory, name)
        if results:
            written += WRITERS[name](directory, results)
    return written


def finish(directory: Path, benchmark: str) -> None:
    """The end of a benchmark's run: its table and plot from every result in `directory`
    (other backends' from earlier runs too), said on the console with the table."""
    for path in write(directory, [benchmark]):
        print(f"wrote {path}")
    print((directory / f"{benchmark}.md").read_text())


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else output.RESULTS):
        print(f"wrote {path}")
