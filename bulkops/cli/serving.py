"""What `bulkops serve` gives uvicorn.run besides the app.

Typed as uvicorn uses them, which is wider than it annotates them: it calls `http` to make
each connection's protocol (a factory, not only a class), and schedules `timeout_keep_alive`
with the event loop (any number of seconds, not only whole ones). Hence the
`type: ignore[arg-type]` where they are passed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypedDict


class ServerOptions(TypedDict):
    host: str
    port: int
    log_level: str
    proxy_headers: bool
    forwarded_allow_ips: str
    timeout_keep_alive: float
    http: Callable[..., asyncio.Protocol]
