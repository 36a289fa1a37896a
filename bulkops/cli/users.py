"""`bulkops admin ...` and `bulkops integration ...`: the accounts that get tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from bulkops.auth.context import ALL_RESOURCES
from bulkops.auth.passwords import WeakPasswordError
from bulkops.auth.service import (
    AccountError,
    AdminSummary,
    AuthService,
    IntegrationCredentials,
    IntegrationSummary,
)
from bulkops.cli.tables import JSON_OPTION, print_rows
from bulkops.cli.worker import fail, on_database
from bulkops.errors import InputError
from bulkops.handlers.base import HandlerConfigError
from bulkops.handlers.loading import close_routes, load_routes
from bulkops.settings import Settings

T = TypeVar("T")

admin_app = typer.Typer(
    help="Admin users, who sign in with POST /V1/integration/admin/token.", no_args_is_help=True
)
integration_app = typer.Typer(
    help="Integrations: machine clients that sign requests (OAuth 1.0a) or send their access "
    "token as a Bearer token.",
    no_args_is_help=True,
)

token_app = typer.Typer(help="Access tokens of admin users and integrations.", no_args_is_help=True)

PASSWORD_OPTION = typer.Option(
    ...,
    "--password",
    prompt=True,
    confirmation_prompt=True,
    hide_input=True,
    help="At least 7 characters, with letters and digits [default: prompt]",
)
ALL_BULKS_OPTION = typer.Option(
    False,
    "--all-bulks/--own-bulks",
    help="Read every bulk, as admins do, or only the bulks it submitted",
)
RESOURCE_OPTION = typer.Option(
    [],
    "--resource",
    "-r",
    help="An ACL resource it may use, such as "
    "Magento_Logging::system_magento_logging_bulk_operations; repeat for more. Without -r it "
    "may use every resource (Magento_Backend::all). Only resources of this service's routes, "
    "as configured, are accepted",
    show_default="Magento_Backend::all",
)


def _run(action: Callable[[AuthService], Awaitable[T]]) -> T:
    """Run `action` on the configured database (migrated first); account errors exit 1."""

    settings = Settings()
    try:
        return on_database(settings, lambda database: action(AuthService(database, settings)))
    except (AccountError, WeakPasswordError, HandlerConfigError, InputError) as error:
        fail(str(error))


@admin_app.command("create")
def create_admin(username: str, password: str = PASSWORD_OPTION) -> None:
    """Create an admin user."""
    _run(lambda auth: auth.create_admin(username, password))
    typer.echo(f'created admin user "{username}"')


@admin_app.command("passwd")
def set_admin_password(username: str, password: str = PASSWORD_OPTION) -> None:
    """Set an admin user's password; this also reactivates and unlocks the user, and revokes
    its tokens."""
    _run(lambda auth: auth.set_admin_password(username, password))
    typer.echo(f'changed the password of admin user "{username}" and revoked its tokens')


@admin_app.command("list")
def list_admins(as_json: bool = JSON_OPTION) -> None:
    """List the admin users: whether each is active, its failed sign-ins that count towards
    the lockout, and until when it is locked out (times in UTC)."""
    print_rows(_run(lambda auth: auth.list_admins()), AdminSummary, as_json)


@admin_app.command("unlock")
def unlock_admin(username: str) -> None:
    """Forget an admin user's failed sign-ins, so that it can sign in again at once."""
    _run(lambda auth: auth.unlock_admin(username))
    typer.echo(f'unlocked admin user "{username}"')


@admin_app.command("revoke-tokens")
def revoke_admin_tokens(username: str) -> None:
    """Revoke every token of an admin user (it can sign in again)."""
    _run(lambda auth: auth.revoke_admin_tokens(username))
    typer.echo(f'revoked the tokens of admin user "{username}"')


def _echo_credentials(credentials: IntegrationCredentials) -> None:
    # The four values, named as in Magento's admin (System > Integrations).
    typer.echo(f"consumer_key: {credentials.consumer_key}")
    typer.echo(f"consumer_secret: {credentials.consumer_secret}")
    typer.echo(f"access_token: {credentials.access_token}")
    typer.echo(f"access_token_secret: {credentials.access_token_secret}")


@integration_app.command("create")
def create_integration(
    name: str, resources: list[str] = RESOURCE_OPTION, all_bulks: bool = ALL_BULKS_OPTION
) -> None:
    """Create an integration; print its consumer key and secret, its access token (also a
    Bearer token) and the token's secret. It reads only the bulks it submits unless
    --all-bulks."""
    granted = resources or [ALL_RESOURCES]

    async def create(auth: AuthService) -> IntegrationCredentials:
        # The routes this service would serve with the same settings, and their resources.
        routes = load_routes(auth.settings, auth.database)
        await close_routes(routes)
        return await auth.create_integration(name, granted, all_bulks, routes.grantable_resources())

    credentials = _run(create)
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


@integration_app.command("scope")
def set_integration_scope(name: str, all_bulks: bool = ALL_BULKS_OPTION) -> None:
    """Let an integration read every bulk (--all-bulks) or only its own (--own-bulks)."""
    _run(lambda auth: auth.set_integration_scope(name, all_bulks))
    typer.echo(f'integration "{name}" reads {"every bulk" if all_bulks else "its own bulks"}')


@integration_app.command("webhook")
def set_integration_webhook(
    name: str,
    url: str | None = typer.Argument(None, help="An http or https URL; none: no webhook"),
) -> None:
    """Set the callback URL of the integration's bulks submitted without an
    X-Bulk-Callback-Url header: each one's completion is sent there (see
    BULKOPS_WEBHOOK_SECRET); without URL, its bulks have none."""
    _run(lambda auth: auth.set_integration_webhook(name, url))
    typer.echo(f'integration "{name}" has ' + (f"the webhook {url}" if url else "no webhook"))


@integration_app.command("list")
def list_integrations(as_json: bool = JSON_OPTION) -> None:
    """List the integrations: whether each is active or its access token revoked, its ACL
    resources and which bulks it reads (own or all); times in UTC."""
    print_rows(_run(lambda auth: auth.list_integrations()), IntegrationSummary, as_json)


@integration_app.command("revoke")
def revoke_integration(name: str) -> None:
    """Revoke an integration's access token: neither signed requests nor the Bearer token
    work until `reauthorize` gives it a new one."""
    _run(lambda auth: auth.revoke_integration_tokens(name))
    typer.echo(f'revoked the access token of integration "{name}"')


# The earlier name, kept for scripts that use it.
integration_app.command("revoke-tokens", hidden=True)(revoke_integration)


@integration_app.command("reauthorize")
def reauthorize_integration(name: str) -> None:
    """Give an integration a new access token and secret (its consumer key and secret stay),
    revoking the old one; print its credentials."""
    _echo_credentials(_run(lambda auth: auth.reauthorize_integration(name)))


@token_app.command("revoke")
def revoke_token(
    token: str = typer.Option(
        ..., prompt=True, hide_input=True, help="The token [default: prompt]"
    ),
) -> None:
    """Revoke one token, an admin's or an integration's."""
    if not _run(lambda auth: auth.revoke_token(token.strip())):
        typer.echo("error: no such token", err=True)
        raise typer.Exit(1)
    typer.echo("revoked the token")
