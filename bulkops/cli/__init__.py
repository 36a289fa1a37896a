"""The `bulkops` command."""

from __future__ import annotations

import asyncio
from functools import partial

import typer
import uvicorn

from bulkops.api.deadlines import DeadlineHttpToolsProtocol
from bulkops.cli import payloads, users, worker
from bulkops.cli.serving import ServerOptions
from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade

app = typer.Typer(
    help="Magento's asynchronous and bulk Web API, for any backend.", no_args_is_help=True
)
app.add_typer(users.admin_app, name="admin")
app.add_typer(users.integration_app, name="integration")
app.add_typer(users.token_app, name="token")
app.add_typer(payloads.payloads_app, name="payloads")


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: BULKOPS_HOST]"),
    port: int = typer.Option(None, help="Port to listen on [default: BULKOPS_PORT]"),
    run_worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Process operations in each API process too"
    ),
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="API processes sharing the port (one core each)"
    ),
) -> None:
    """Run the HTTP API (migrating the database first), with a worker unless --no-worker."""
    from bulkops.api.app import create_app

    settings = Settings()
    options: ServerOptions = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "info",
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
    if processes == 1:
        # Wider types than uvicorn annotates: see ServerOptions.
        uvicorn.run(create_app(settings, run_worker=run_worker), **options)  # type: ignore[arg-type]
        return
    # Several processes need the app by name: each builds its own from the same environment.
    factory = "create_app" if run_worker else "create_api"
    uvicorn.run(f"bulkops.api.app:{factory}", factory=True, workers=processes, **options)  # type: ignore[arg-type]


@app.command()
def migrate() -> None:
    """Bring the database schema up to date, then exit."""

    async def run() -> None:
        database = Database.from_settings(Settings())
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


app.command()(worker.worker)
app.command()(worker.retry)
app.command()(worker.cleanup)
