"""How long commands report their progress: a bar on a terminal, a line per batch
otherwise. Both go to stderr: the command's own output stays on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bulkops.store.lifecycle import Progress as ProgressCallback


@contextmanager
def progress(what: str) -> Iterator[ProgressCallback]:
    """A callback for the store's batched jobs, reporting `done/total what`."""
    if not sys.stderr.isatty():

        def report(done: int, total: int) -> None:
            # The count at the start says nothing yet; a line once a batch is done.
            if done:
                typer.echo(f"{done}/{max(done, total)} {what}", err=True)

        yield report
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(done, total))

        yield update
