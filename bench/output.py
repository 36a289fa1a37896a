"""Where a benchmark's results go: one JSON file per result and a markdown table beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).resolve().parent / "results"


def directory(chosen: Path | None, quick: bool) -> Path:
    """`chosen`, else bench/results (a quick run's in bench/results/quick, so that CI never
    overwrites a full run's)."""
    path = chosen or (RESULTS / "quick" if quick else RESULTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """A markdown table; the columns from `numeric_from` on are right-aligned."""
    align = ["---" if n < numeric_from else "---:" for n in range(len(headers))]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"
