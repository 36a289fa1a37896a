"""The `bulkops` command."""

from __future__ import annotations

from importlib.metadata import version

import typer

from bulkops.cli import payloads, users, worker
from bulkops.cli.errors import ExplainingGroup
from bulkops.cli.migrate import migrate
from bulkops.cli.serve import serve

app = typer.Typer(
    cls=ExplainingGroup,
    help="Magento's asynchronous and bulk Web API, for any backend. A wrong setting ends a "
    "command with one line saying what to fix, and exit code 2.",
    no_args_is_help=True,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"bulkops {version('bulkops')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        expose_value=False,
        help="Print the version and exit",
    ),
    debug: bool = typer.Option(
        False,
        "--debug/--no-debug",
        envvar="BULKOPS_DEBUG",
        help="On a wrong setting, show the traceback rather than one line",
    ),
) -> None:
    # The options act where they are read: --version at once, --debug in ExplainingGroup.
    pass


app.command()(serve)
app.command()(migrate)
app.command()(worker.worker)
app.command()(worker.retry)
app.command()(worker.cleanup)
app.add_typer(users.admin_app, name="admin")
app.add_typer(users.integration_app, name="integration")
app.add_typer(users.token_app, name="token")
app.add_typer(payloads.payloads_app, name="payloads")
