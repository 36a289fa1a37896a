"""The socket `bulkops serve` listens on: the connections it accepts send each write at once
(Nagle's algorithm off) on the standard library's event loop, which the server runs. With it
on, a response's second write waited for the client's delayed acknowledgement, 40 ms."""

from __future__ import annotations

import asyncio
import socket

from bulkops.cli.serve import listening_socket


async def test_accepted_connections_send_each_write_at_once() -> None:
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    sock = listening_socket("127.0.0.1", 0)
    server = await loop.create_server(Accepted, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        assert await nodelay != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
