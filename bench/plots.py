"""The benchmarks' PNG plots, drawn from their saved results (see bench/report.py).

matplotlib is imported only when a plot is drawn, with the Agg backend (no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GROUP_WIDTH = 0.81
"""The share of a group's slot its bars take; the rest separates the groups."""


def _figure(
    rows: int, columns: int, width: float, height: float, **options: Any
) -> tuple[Figure, Any]:
    """A figure and its axes (a 2-D array, even of one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, columns, figsize=(width, height), squeeze=False, **options)


def _save(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def grouped_bars(
    axis: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    value_format: str | None = None,
    horizontal: bool = False,
    alpha: float = 1.0,
    label_type: Literal["edge", "center"] = "edge",
    **ticks: Any,
) -> None:
    """One bar per series in each group, series n in colour `Cn` (so that two calls on one
    axis draw the same series in the same colour). A value of None draws no bar.
    `value_format` (e.g. "{:,.0f}") writes each value on its bar, at its end ("edge") or
    "center"; `ticks` style the group labels (rotation, fontsize...)."""
    width = GROUP_WIDTH / len(series)
    draw = axis.barh if horizontal else axis.bar
    for n, (name, values) in enumerate(series.items()):
        offset = (n - (len(series) - 1) / 2) * width
        positions = [group + offset for group in range(len(groups))]
        heights = [math.nan if v is None else v for v in values]
        bars = draw(positions, heights, width, label=name, color=f"C{n}", alpha=alpha)
        if value_format:
            labels = ["" if v is None else value_format.format(v) for v in values]
            axis.bar_label(bars, labels, label_type=label_type, padding=2, fontsize=7)
    if horizontal:
        axis.set_yticks(range(len(groups)), groups, **ticks)
        axis.invert_yaxis()  # the first group and series on top, as they read in a legend
        axis.grid(axis="x", alpha=0.3)
    else:
        axis.set_xticks(range(len(groups)), groups, **ticks)
        axis.grid(axis="y", alpha=0.3)


def _backend(result: dict[str, Any]) -> str:
    """Its name and version, without a distribution's suffix: "mariadb 10.11.19"."""
    return f"{result['backend']} {result['backend_version'].split('-')[0]}"


def _value_axis(axis: Axes, label: str, horizontal: bool = False) -> None:
    """The bars' values axis: its label, thousands separated, and room past the longest bar
    for its value."""
    from matplotlib.ticker import StrMethodFormatter

    values = axis.xaxis if horizontal else axis.yaxis
    values.set_label_text(label)
    values.set_major_formatter(StrMethodFormatter("{x:,.10g}"))  # 250,000 and 0.5 alike
    if horizontal:
        axis.set_xlim(right=axis.get_xlim()[1] * 1.12)
    else:
        axis.set_ylim(top=axis.get_ylim()[1] * 1.08)


def search(rows: int, results: list[dict[str, Any]], path: Path) -> None:
    """Each shape's three times, one panel per backend, log scale."""
    figure, axes = _figure(len(results), 1, 11, 3.6 * len(results), sharex=True)
    for axis, result in zip(axes[:, 0], results, strict=True):
        shapes = result["shapes"]
        grouped_bars(
            axis,
            [shape["title"] for shape in shapes],
            {
                "bulkops (HTTP)": [s["bulkops_ms"] for s in shapes],
                "floor (SQL)": [s["floor_ms"] for s in shapes],
                "Magento": [s["magento_ms"] for s in shapes],
            },
            rotation=20,
            ha="right",
            fontsize=8,
        )
        axis.set_yscale("log")
        axis.set_ylabel("ms (log)")
        axis.set_title(f"{_backend(result)}, {rows:,} operations")
    axes[0, 0].legend()
    _save(figure, path)


def ingest(results: list[dict[str, Any]], path: Path) -> None:
    """Items accepted per second, bulkops beside the floor, per backend."""
    figure, axes = _figure(1, 1, max(5, 2.5 + 2.2 * len(results)), 4.5)
    axis = axes[0, 0]
    grouped_bars(
        axis,
        [_backend(r) for r in results],
        {
            "bulkops (HTTP)": [
                r["items_per_bulk"] / r["bulkops_seconds_per_bulk"] for r in results
            ],
            "floor (SQL)": [r["items_per_bulk"] / r["floor_seconds_per_bulk"] for r in results],
        },
        value_format="{:,.0f}",
    )
    _value_axis(axis, "items/s (higher is better)")
    first = results[0]
    axis.set_title(
        f"Items accepted per second\nbulks of {first['items_per_bulk']:,} items,"
        f" median of {first['bulks']} bulks",
        fontsize=10,
    )
    axis.legend()
    _save(figure, path)


def processing(results: list[dict[str, Any]], path: Path) -> None:
    """Operations completed per second of each setup, the floor first, per backend."""
    floor = "aio-pika publish + consume (floor)"
    rates: dict[str, dict[str, float]] = {}  # setup -> backend -> operations/s
    for r in results:
        if r["floor_seconds"]:
            rates.setdefault(floor, {})[r["backend"]] = r["operations"] / r["floor_seconds"]
        for setup in r["setups"]:
            rates.setdefault(setup["setup"], {})[r["backend"]] = r["operations"] / setup["seconds"]
    figure, axes = _figure(1, 1, 12, 1.5 + 0.32 * len(rates) * len(results))
    axis = axes[0, 0]
    grouped_bars(
        axis,
        [_backend(r) for r in results],
        {setup: [by.get(r["backend"]) for r in results] for setup, by in rates.items()},
        value_format="{:,.0f}",
        horizontal=True,
    )
    _value_axis(axis, "operations/s (higher is better)", horizontal=True)
    first = results[0]
    axis.set_title(
        f"Operations completed per second, no-op handler\n{first['operations']:,} operations,"
        f" batches and prefetch of {first['batch_size']}",
        fontsize=10,
    )
    # beside the bars, which it would hide inside
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    _save(figure, path)


def http(results: list[dict[str, Any]], path: Path) -> None:
    """Requests per second of each endpoint, and their p50 and p99 latency, per backend."""
    sizes = {r["rows"] for r in results}
    # several data sizes in one directory: each (backend, size) is a group of its own
    groups = [
        _backend(r)
        + f"\n{r.get('server_processes', 1)} API process(es)"
        + ("" if len(sizes) == 1 else f", {r['rows']:,} rows")
        for r in results
    ]
    endpoints = {e["key"]: e["title"] for r in results for e in r["endpoints"]}

    def values(field: str) -> dict[str, list[float | None]]:
        by_key = [{e["key"]: e[field] for e in r["endpoints"]} for r in results]
        return {title: [found.get(key) for found in by_key] for key, title in endpoints.items()}

    figure, axes = _figure(1, 2, max(9, 4 + 3.2 * len(results)), 5.2)
    throughput, latency = axes[0]
    grouped_bars(throughput, groups, values("requests_per_s"), value_format="{:,.0f}")
    _value_axis(throughput, "requests/s (higher is better)")
    first = results[0]
    size = f", {first['rows']:,} rows" if len(sizes) == 1 else ""
    throughput.set_title(
        f"Requests per second\n{first['connections']} concurrent connections (wrk){size}",
        fontsize=10,
    )
    # below the group labels, which take two lines
    throughput.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    # p99 drawn light behind p50: the same endpoint's two bars share a place and a colour
    grouped_bars(latency, groups, values("p99_ms"), value_format="{:,.1f}", alpha=0.35)
    grouped_bars(latency, groups, values("p50_ms"), value_format="{:,.1f}", label_type="center")
    _value_axis(latency, "ms per request (lower is better)")
    latency.set_title(
        "Latency per request\np50 solid (value inside), p99 light (value on top)", fontsize=10
    )
    _save(figure, path)
