"""Lists printed by the list commands: a table on a terminal, tab-separated lines otherwise,
or JSON."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

JSON_OPTION = typer.Option(False, "--json", help="Print a JSON array of objects instead")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, list):
        return ",".join(value)
    # One line per row, one cell per column, whatever a name holds.
    return " ".join(str(value).split("\t")).replace("\n", " ")


def print_rows(rows: Sequence[Any], row_type: type, as_json: bool) -> None:
    """Print dataclass instances of `row_type`, a column per field. Times are UTC."""
    if as_json:
        # Naive datetimes are UTC here: JSON says so with +00:00.
        typer.echo(orjson.dumps(list(rows), option=orjson.OPT_NAIVE_UTC).decode())
        return
    columns = [field.name for field in fields(row_type)]
    cells = [[_cell(getattr(row, column)) for column in columns] for row in rows]
    if sys.stdout.isatty():
        table = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False)
        for line in cells:
            # Text, not markup: a name like "[bold]" is printed as it is.
            table.add_row(*map(Text, line))
        Console().print(table)
        return
    for line in [columns, *cells]:
        typer.echo("\t".join(line))
