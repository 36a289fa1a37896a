"""The processes of `serve --processes N` counted together: prometheus_client's
multiprocess mode, in a directory of their own, made empty before they start (so nothing of
an earlier run counts) and removed when they have stopped. The variable is set before the
processes start, since prometheus_client reads it as each of them imports it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import multiprocess
from uvicorn.supervisors import Multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics() -> Iterator[None]:
    directory = tempfile.mkdtemp(prefix="bulkops-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """Drop the per-process gauges of a process that ended (its counters still count)."""
    if MULTIPROCESS_DIR in os.environ:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class MetricsMultiprocess(Multiprocess):
    """uvicorn's supervisor, which also forgets the gauges of a process that died (killed,
    it could not itself) when it starts another in its place."""

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                process_ended(pid)
