"""`bulkops admin ...` and `bulkops integration ...`: the accounts that get tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from bulkops.auth.passwords import WeakPasswordError
from bulkops.auth.service import AccountError, AuthService, IntegrationCredentials
from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade

T = TypeVar("T")

admin_app = typer.Typer(
    help="Admin users, who sign in with POST /V1/integration/admin/token.", no_args_is_help=True
)
integration_app = typer.Typer(
    help="Integrations: machine clients that sign requests (OAuth 1.0a) or send their access "
    "token as a Bearer token.",
    no_args_is_help=True,
)

PASSWORD_OPTION = typer.Option(
    ...,
    "--password",
    prompt=True,
    confirmation_prompt=True,
    hide_input=True,
    help="At least 7 characters, with letters and digits [default: prompt]",
)
RESOURCE_OPTION = typer.Option(
    [],
    "--resource",
    "-r",
    help="An ACL resource it may use, such as "
    "Magento_Logging::system_magento_logging_bulk_operations; repeat for more "
    "[default: Magento_Backend::all]",
)


def _run(action: Callable[[AuthService], Awaitable[T]]) -> T:
    """Run `action` on the configured database (migrated first); account errors exit 1."""

    async def run() -> T:
        settings = Settings()
        database = Database.from_settings(settings)
        try:
            await upgrade(database)
            return await action(AuthService(database, settings))
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except (AccountError, WeakPasswordError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@admin_app.command("create")
def create_admin(username: str, password: str = PASSWORD_OPTION) -> None:
    """Create an admin user."""
    _run(lambda auth: auth.create_admin(username, password))
    typer.echo(f'created admin user "{username}"')


@admin_app.command("passwd")
def set_admin_password(username: str, password: str = PASSWORD_OPTION) -> None:
    """Set an admin user's password; this also reactivates and unlocks the user."""
    _run(lambda auth: auth.set_admin_password(username, password))
    typer.echo(f'changed the password of admin user "{username}"')


def _echo_credentials(credentials: IntegrationCredentials) -> None:
    # The four values, named as in Magento's admin (System > Integrations).
    typer.echo(f"consumer_key: {credentials.consumer_key}")
    typer.echo(f"consumer_secret: {credentials.consumer_secret}")
    typer.echo(f"access_token: {credentials.access_token}")
    typer.echo(f"access_token_secret: {credentials.access_token_secret}")


@integration_app.command("create")
def create_integration(name: str, resources: list[str] = RESOURCE_OPTION) -> None:
    """Create an integration; print its consumer key and secret, its access token (also a
    Bearer token) and the token's secret."""
    if resources:
        credentials = _run(lambda auth: auth.create_integration(name, resources))
    else:
        credentials = _run(lambda auth: auth.create_integration(name))
    if not Settings().oauth_secrets_key:
        typer.echo(
            "note: BULKOPS_OAUTH_SECRETS_KEY is not set, so these secrets are stored in clear",
            err=True,
        )
    _echo_credentials(credentials)


@integration_app.command("show")
def show_integration(name: str) -> None:
    """Print an integration's credentials again, as `create` printed them."""
    _echo_credentials(_run(lambda auth: auth.integration_credentials(name)))
