"""uvicorn's HTTP protocol (httptools) with read deadlines, so that a client that trickles its
request or sends nothing cannot hold a connection forever.

uvicorn closes a kept-alive connection idle between requests (`timeout_keep_alive`), but has
no deadline while a request's head or body is arriving, nor for a new connection that sends
nothing. Here a connection owes its request line and headers within `header_timeout` of its
opening (or, kept alive, of the request's first byte), and the whole body within
`body_timeout` of the headers; otherwise it is closed (an application still reading the body
sees the client disconnect).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self, *args: Any, header_timeout: float, body_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A new connection's deadline runs from its opening; a kept-alive one's starts here.
        if self.read_deadline is None:
            self._expect(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expect(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._clear()

    def _expect(self, seconds: float) -> None:
        self._clear()
        self.read_deadline = self.loop.call_later(seconds, self._expired)

    def _clear(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _expired(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
