"""HTTP requests sent as written: paths are not normalised (`..` reaches the server), headers
go out as given (Host included) or not at all. httpx normalises URLs and adds headers."""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class RawClient:
    """One keep-alive connection to a server, opened again whenever the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> RawResponse:
        kept = self._connection
        self._connection = None
        if kept is not None:
            try:
                return self._exchange(kept, method, target, headers, body)
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed the idle connection (as after a request it could not
                # parse): the request is sent again on a new one, as HTTP clients do.
                kept.close()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self._exchange(connection, method, target, headers, body)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> RawResponse:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8", "surrogateescape"))
        if body or method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        answer = RawResponse(response.status, response.headers, response.read())
        if not response.will_close:
            self._connection = connection
        else:
            connection.close()
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
