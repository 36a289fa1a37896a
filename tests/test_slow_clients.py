"""Clients that send nothing, or trickle a request's head or body, are disconnected once their
deadline passes, while other clients are served: raw sockets against `bulkops serve`."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, start_server

# Far longer than any deadline below: a socket still open then was never going to be closed.
PATIENCE_SECONDS = 60


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        HEADER_TIMEOUT_SECONDS="2",
        BODY_TIMEOUT_SECONDS="2",
        IDLE_TIMEOUT_SECONDS="2",
    )
    yield running
    running.stop()


def connect(server: RunningServer) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(PATIENCE_SECONDS)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def assert_served(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/health", timeout=PATIENCE_SECONDS).status_code == 200


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /hea",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
    ],
    ids=["nothing", "half a request line", "unfinished headers"],
)
def test_an_unfinished_request_head_is_disconnected(server: RunningServer, sent: bytes) -> None:
    with connect(server) as slow:
        slow.sendall(sent)
        assert_served(server)
        assert closed_by_server(slow) == b""
    assert_served(server)


def test_an_unfinished_body_is_disconnected(server: RunningServer) -> None:
    with connect(server) as slow:
        slow.sendall(
            b"POST /rest/V1/integration/admin/token HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"username"'
        )
        assert_served(server)
        assert closed_by_server(slow) == b""
    assert_served(server)
    # The application saw its client go away: no internal error.
    assert "internal error" not in server.log()


def test_a_kept_alive_connection_is_closed_when_idle(server: RunningServer) -> None:
    with connect(server) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert closed_by_server(client).startswith(b"HTTP/1.1 200 ")


def test_two_hundred_idle_sockets_neither_stop_others_nor_stay_open(
    server: RunningServer,
) -> None:
    idle = [connect(server) for _ in range(200)]
    try:
        assert_served(server)
        with selectors.DefaultSelector() as selector:
            for sock in idle:
                selector.register(sock, selectors.EVENT_READ)
            open_sockets = len(idle)
            while open_sockets:
                ready = selector.select(PATIENCE_SECONDS)
                assert ready, f"{open_sockets} idle sockets still open"
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    assert sock.recv(1) == b""
                    selector.unregister(sock)
                    open_sockets -= 1
        assert_served(server)
    finally:
        for sock in idle:
            sock.close()
