"""`bulkops worker`, `bulkops retry` and `bulkops cleanup`: processing operations, and the
tools for them once processed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

import typer

from bulkops.cli.progress import progress
from bulkops.errors import InputError
from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.lifecycle import (
    BATCH_SIZE,
    DEFAULT_RETRY_STATUSES,
    cleanup_bulks,
    expired_bulks,
    retry_in_batches,
    utc_now,
)
from bulkops.store.migrate import upgrade
from bulkops.worker import DEFAULT_GRACE_SECONDS
from bulkops.worker.maintenance import bulk_lifetime
from bulkops.worker.process import run_worker

T = TypeVar("T")

STATUS_OPTION = typer.Option(
    [int(status) for status in DEFAULT_RETRY_STATUSES],
    "--status",
    "-s",
    help="Retry the failed operations with this status, 2 or 3; repeat for both",
)
ERROR_CODE_OPTION = typer.Option(
    [], "--error-code", "-e", help="Only those with this error code; repeat for more [default: any]"
)
BATCH_SIZE_OPTION = typer.Option(BATCH_SIZE, min=1, help="Rows per transaction")


def fail(message: str) -> NoReturn:
    """End the command on input it refuses: the message on stderr, exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def on_database(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` on the configured database, migrated first."""

    async def run() -> T:
        database = Database.from_settings(settings)
        try:
            await upgrade(database)
            return await action(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def worker(
    concurrency: int = typer.Option(
        None, min=1, help="Operations handled at once [default: BULKOPS_WORKER_CONCURRENCY]"
    ),
    grace_seconds: float = typer.Option(
        DEFAULT_GRACE_SECONDS,
        min=0,
        help="On SIGTERM or SIGINT, how long operations in progress may take to finish",
    ),
) -> None:
    """Process queued operations, without serving HTTP, until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(Settings(), concurrency, grace_seconds))


def retry(
    bulk_uuid: str = typer.Argument(..., help="The bulk whose operations to retry"),
    status: list[int] = STATUS_OPTION,
    error_code: list[int] = ERROR_CODE_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
) -> None:
    """Queue a bulk's failed operations again (2 and 3 only: rejected items need new input)."""
    settings = Settings()
    try:
        with progress("operations requeued") as report:
            count = on_database(
                settings,
                lambda database: retry_in_batches(
                    database, bulk_uuid, utc_now(), status, error_code or None, batch_size, report
                ),
            )
    except InputError as error:
        fail(str(error))
    if count is None:
        fail(f"Bulk uuid {bulk_uuid} not exist")
    typer.echo(f"requeued {count} operations")


def cleanup(
    older_than_days: float = typer.Option(
        None,
        help="Delete bulks that started more than this many days ago (more than 0)",
        show_default="BULKOPS_BULK_LIFETIME_DAYS",
    ),
    every_bulk: bool = typer.Option(
        False, "--all", help="Delete every bulk, whatever its age (asks first, unless --yes)"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete every bulk without asking"),
    batch_size: int = BATCH_SIZE_OPTION,
) -> None:
    """Delete old bulks with their operations, a batch per transaction. A bulk submitted with
    its own retention (X-Bulk-Retention-Days) is deleted once that has passed, not before,
    unless --all."""
    settings = Settings()
    if every_bulk:
        if older_than_days is not None:
            fail("give --older-than-days or --all, not both")
        if not yes:
            typer.confirm("Delete every bulk and its operations?", abort=True)
        lifetime = None
    elif older_than_days is None:
        lifetime = bulk_lifetime(settings)
        if lifetime is None:
            typer.echo("BULKOPS_BULK_LIFETIME_DAYS is 0: only bulks past their own retention")
    elif older_than_days > 0:
        lifetime = timedelta(days=older_than_days)
    else:
        # BULKOPS_BULK_LIFETIME_DAYS=0 keeps every bulk; 0 days here would delete them all.
        fail("--older-than-days must be more than 0; to delete every bulk, use --all")
    expired = None if every_bulk else expired_bulks(utc_now(), lifetime)
    with progress("bulks deleted") as report:
        cleaned = on_database(
            settings, lambda database: cleanup_bulks(database, expired, batch_size, report)
        )
    typer.echo(f"deleted {cleaned.bulks} bulks and {cleaned.operations} operations")
