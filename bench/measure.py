"""Timing and memory: medians of several runs after a warm-up, a process's peak memory."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the caches and the connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024
