"""Where a benchmark's results go: one JSON file per result and a markdown table beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import machine

RESULTS = Path(__file__).resolve().parent / "results"
BACKEND_ORDER = ("sqlite", "postgresql", "mariadb", "mysql")


def directory(chosen: Path | None, quick: bool) -> Path:
    """`chosen`, else bench/results (a quick run's in bench/results/quick, so that CI never
    overwrites a full run's)."""
    path = chosen or (RESULTS / "quick" if quick else RESULTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


def header(benchmark: str, backend: str, version: str, **versions: str) -> dict[str, Any]:
    """The fields every result starts with; `versions` adds the run's own tools to the
    machine's."""
    return {
        "benchmark": benchmark,
        "backend": backend,
        "backend_version": version,
        "machine": machine.describe() | versions,
    }


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")


def load(directory: Path, benchmark: str) -> list[dict[str, Any]]:
    """The benchmark's results saved in `directory`, by data size, then backends in a fixed
    order (a backend not known goes last), then the server's processes."""
    results = [orjson.loads(p.read_bytes()) for p in directory.glob(f"{benchmark}-*.json")]

    def order(result: dict[str, Any]) -> tuple[int, int, str, int]:
        known = result["backend"] in BACKEND_ORDER
        rank = BACKEND_ORDER.index(result["backend"]) if known else len(BACKEND_ORDER)
        return result.get("rows", 0), rank, result["backend"], result.get("server_processes", 1)

    return sorted(results, key=order)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """A markdown table; the columns from `numeric_from` on are right-aligned."""
    align = ["---" if n < numeric_from else "---:" for n in range(len(headers))]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"
