"""Waiting for what other processes do, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
    progress: Callable[[], object] | None = None,
) -> None:
    """Wait until `condition` holds, failing after `timeout` seconds; with `progress`, after
    `timeout` seconds in which its value did not change (work that advances, however slowly
    on a busy machine, is waited for)."""
    deadline = time.monotonic() + timeout
    seen = progress() if progress else None
    while not condition():
        if progress and (now := progress()) != seen:
            seen, deadline = now, time.monotonic() + timeout
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
