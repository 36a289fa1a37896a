"""`bulkops serve`: its port taken first, then the database migrated and the admin user set,
each said aloud, then the HTTP API on that port."""

from __future__ import annotations

import contextlib
import errno
import socket
from functools import partial
from typing import Any

import typer
import uvicorn

from bulkops.api.deadlines import DeadlineHttpToolsProtocol
from bulkops.auth.service import AccountError, AuthService
from bulkops.cli.migrate import migrate_database
from bulkops.handlers.loading import close_routes, load_routes
from bulkops.metrics.processes import MetricsMultiprocess, shared_metrics
from bulkops.queue.broker import redacted
from bulkops.settings import ConfigurationError, Settings
from bulkops.store.database import Database


def serve(
    host: str = typer.Option(None, help="Interface to listen on", show_default="BULKOPS_HOST"),
    port: int = typer.Option(
        None, min=1, max=65535, help="Port to listen on", show_default="BULKOPS_PORT"
    ),
    run_worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Process operations in each API process too"
    ),
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="API processes sharing the port (one core each)"
    ),
) -> None:
    """Run the HTTP API (migrating the database first), with a worker unless --no-worker."""
    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    # Before anything is written: a second `serve` on a taken port leaves the database be.
    sock = listening_socket(host, port)
    try:
        migrate_database(settings, then=partial(_prepare, settings))
        typer.echo(f"queue: {_queue(settings)}")
        typer.echo(f"processes: {_processes(processes, run_worker)}")
        typer.echo(f"serving on http://{_address(host)}:{port}")
        _run(settings, sock, processes, run_worker)
    finally:
        sock.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (as uvicorn binds its own), for uvicorn to listen on;
    ConfigurationError when the port is taken or the host is not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named TCP, so that the connections it accepts are too: asyncio turns Nagle's algorithm
    # off (TCP_NODELAY) only on sockets that say so. With it on, a response's second write
    # waited for the client's delayed acknowledgement: 40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(_bind_problem(host, port, error)) from error
    sock.set_inheritable(True)  # the processes of --processes listen on it too
    return sock


def _bind_problem(host: str, port: int, error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"BULKOPS_HOST (or --host): cannot resolve {host} ({error.strerror})"
    if error.errno == errno.EADDRINUSE:
        return (
            f"BULKOPS_PORT (or --port): {_address(host)}:{port} is already in use; "
            "stop what listens there, or choose another port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"BULKOPS_HOST (or --host): {host} is not an address of this machine"
    return f"cannot listen on {_address(host)}:{port} ({error.strerror or error})"


def _address(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _prepare(settings: Settings, database: Database) -> None:
    """What the app does as it starts that a wrong setting can fail, done here first so the
    mistake is told in one line; the app then finds it done."""
    await close_routes(load_routes(settings, database))  # the upstreams file, handler modules
    try:
        await AuthService(database, settings).bootstrap_admin()
    except AccountError as error:
        raise ConfigurationError(str(error)) from error


def _queue(settings: Settings) -> str:
    if settings.queue_url == "db":
        return "db (a table of the database)"
    return redacted(settings.queue_url)


def _processes(count: int, run_worker: bool) -> str:
    api = f"{count} API process{'es' if count > 1 else ''}"
    if not run_worker:
        return f"{api}, no worker (`bulkops worker` processes operations)"
    return f"{api}, each with a worker" if count > 1 else f"{api} with a worker"


def _run(settings: Settings, sock: socket.socket, processes: int, run_worker: bool) -> None:
    from bulkops.api.app import create_app

    options: dict[str, Any] = {
        "log_level": "info",
        # One process runs the standard library's event loop, not uvloop: SQLite's reads run
        # on the event loop (`store.sqlite_driver`), a millisecond's step each, and under uvloop
        # some requests then waited many times their share (32 connections, a page-1 search:
        # p99 about 290 ms against a p50 of 39; with asyncio 39 against 36, and 5 % more
        # searches a second). Several processes sharing the socket keep uvloop: asyncio accepts
        # every waiting connection at once, so the first process awake took them all (a second
        # process then added nothing to `/health`), where uvloop's accepts spread them.
        "loop": "asyncio" if processes == 1 else "uvloop",
        # The client's address and scheme from X-Forwarded-For/-Proto, from these proxies only.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_keep_alive": settings.idle_timeout_seconds,
        "http": partial(
            DeadlineHttpToolsProtocol,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        ),
    }
    # uvicorn's own run() stops quietly on Ctrl-C; so does this.
    with contextlib.suppress(KeyboardInterrupt):
        if processes == 1:
            config = uvicorn.Config(
                create_app(settings, run_worker=run_worker, own_process=True), **options
            )
            uvicorn.Server(config).run(sockets=[sock])
            return
        # Several processes need the app by name: each builds its own from the same environment.
        factory = "app_with_worker" if run_worker else "api_only"
        config = uvicorn.Config(
            f"bulkops.cli.supervised:{factory}", factory=True, workers=processes, **options
        )
        with shared_metrics():
            MetricsMultiprocess(config, sockets=[sock]).run()
