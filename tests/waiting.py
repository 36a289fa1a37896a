"""Waiting for what other processes do, with a deadline."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


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


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 60) -> None:
    """Within a test's event loop: until `condition` (plain or awaitable) holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        met = condition()
        if inspect.isawaitable(met):
            met = await met
        if met:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
