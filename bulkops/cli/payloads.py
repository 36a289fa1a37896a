"""`bulkops payloads`: operations' stored payloads."""

from __future__ import annotations

import typer

from bulkops.cli.worker import on_database
from bulkops.sealing import SealingKeyError
from bulkops.services.payloads import KEYS_SETTING, Payloads
from bulkops.settings import Settings
from bulkops.store.payloads import BATCH_SIZE, rewrite_payloads

payloads_app = typer.Typer(help="Operations' stored payloads.", no_args_is_help=True)


@payloads_app.command("reseal")
def reseal(
    batch_size: int = typer.Option(BATCH_SIZE, min=1, help="Operations per transaction"),
) -> None:
    """Encrypt every stored payload with the newest key: payloads stored in clear, or with an
    older key, which can then be removed from the setting."""
    settings = Settings()
    sealer = Payloads.from_settings(settings).sealer
    if not sealer.encrypts:
        typer.echo(f"error: {KEYS_SETTING} is not set", err=True)
        raise typer.Exit(1)
    try:
        count = on_database(settings, lambda db: rewrite_payloads(db, sealer.reseal, batch_size))
    except SealingKeyError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"resealed {count} payloads")
