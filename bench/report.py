"""The search results of a directory (`search-*.json`) as a markdown table (`search.md`) and
one PNG plot per data size (`search-<rows>.png`).

    python bench/report.py [directory]      # bench/results by default
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

COLUMNS = (("bulkops_ms", "bulkops (HTTP)"), ("floor_ms", "floor (SQL)"), ("magento_ms", "Magento"))
BACKEND_ORDER = ("sqlite", "postgresql", "mariadb", "mysql")


def load(directory: Path) -> dict[int, list[dict[str, Any]]]:
    """Results by number of rows, backends in a fixed order."""
    by_rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(directory.glob("search-*.json")):
        result = orjson.loads(path.read_bytes())
        by_rows[result["rows"]].append(result)
    for results in by_rows.values():
        results.sort(key=lambda r: BACKEND_ORDER.index(r["backend"]))
    return dict(sorted(by_rows.items()))


def markdown(by_rows: dict[int, list[dict[str, Any]]]) -> str:
    lines = []
    for rows, results in by_rows.items():
        lines += [
            f"### {rows:,} operations\n",
            "| search | backend | matches | bulkops (HTTP) ms | floor (SQL) ms"
            " | Magento's shape ms | bulkops / floor | Magento / bulkops |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        titles = [shape["title"] for shape in results[0]["shapes"]]
        for title in titles:
            for result in results:
                shape = next(s for s in result["shapes"] if s["title"] == title)
                bulkops, floor, magento = (shape[key] for key, _ in COLUMNS)
                lines.append(
                    f"| {title} | {result['backend']} | {shape['total_count']:,}"
                    f" | {bulkops:,.1f} | {floor:,.1f} | {magento:,.1f}"
                    f" | {_ratio(bulkops / floor)} | {_ratio(magento / bulkops)} |"
                )
        memory = [
            f"{r['backend']} {s['server_peak_rss_mb'][0]:.0f} → {s['server_peak_rss_mb'][1]:.0f} MB"
            for r in results
            for s in r["shapes"]
            if "server_peak_rss_mb" in s
        ]
        if memory:
            lines.append(
                "\nServer peak memory (VmHWM) before → after the search with no pageSize: "
                + ", ".join(memory)
                + "."
            )
        lines.append("")
    lines.append(_machine(next(iter(by_rows.values()))))
    return "\n".join(lines)


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _machine(results: list[dict[str, Any]]) -> str:
    machine = results[0]["machine"]
    versions = ", ".join(f"{r['backend']} {r['backend_version']}" for r in results)
    return (
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM;"
        f" Python {machine['python']}, {versions}; bulkops {machine['bulkops_commit']};"
        f" medians of {results[0]['repeat']} runs after a warm-up.\n"
    )


def plot(rows: int, results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(results), 1, figsize=(11, 3.6 * len(results)), squeeze=False, sharex=True
    )
    for axis, result in zip(axes[:, 0], results, strict=True):
        titles = [shape["title"] for shape in result["shapes"]]
        width = 0.27
        for n, (key, label) in enumerate(COLUMNS):
            positions = [i + (n - 1) * width for i in range(len(titles))]
            axis.bar(positions, [s[key] for s in result["shapes"]], width, label=label)
        axis.set_yscale("log")
        axis.set_ylabel("ms (log)")
        version = result["backend_version"].split("-")[0]
        axis.set_title(f"{result['backend']} {version}, {rows:,} operations")
        axis.grid(axis="y", alpha=0.3)
        axis.set_xticks(range(len(titles)), titles, rotation=20, ha="right", fontsize=8)
    axes[0, 0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(directory: Path) -> list[Path]:
    by_rows = load(directory)
    if not by_rows:
        return []
    table = directory / "search.md"
    table.write_text(markdown(by_rows))
    written = [table]
    for rows, results in by_rows.items():
        path = directory / f"search-{rows}.png"
        plot(rows, results, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results"
    ):
        print(f"wrote {path}")
