"""How every `bulkops` command ends on a wrong setting: one line on stderr that says what to
fix, and exit code 2 (`--debug`, or BULKOPS_DEBUG=1: the traceback instead)."""

from __future__ import annotations

import re
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from typer.core import TyperGroup

from bulkops.handlers.base import HandlerConfigError
from bulkops.settings import ConfigurationError, Settings
from bulkops.store.connection_problems import connection_problem
from bulkops.store.database import async_url

CONFIGURATION_EXIT = 2
"""A wrong setting, as click's own exit code for a wrong option or argument."""

ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))

_SETTINGS_FIELD = re.compile(r'field "(\w+)"')


def explain(error: BaseException) -> str | None:
    """What to fix, in one line, when `error` comes from a wrong setting; None otherwise."""
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        return "; ".join(_invalid_setting(problem) for problem in error.errors())
    if isinstance(error, SettingsError):
        # A list or an object that is not JSON; pydantic-settings names the field in its text.
        found = _SETTINGS_FIELD.search(str(error))
        name = _variable(found.group(1)) if found else "a BULKOPS_* variable"
        return f'{name}: expected JSON, such as ["a", "b"] or {{"a": 1}} ({error.__cause__})'
    if isinstance(error, ConfigurationError | HandlerConfigError):
        return _one_line(str(error))
    return _database_problem(error)


def _variable(field: str) -> str:
    return f"{ENV_PREFIX}{field}".upper()


def _invalid_setting(problem: Any) -> str:
    field, *inner = problem["loc"]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in inner)
    # A validator's own message without pydantic's "Value error, "; the input is left out:
    # it may be a secret.
    message = problem["ctx"]["error"] if problem["type"] == "value_error" else problem["msg"]
    return f"{_variable(str(field))}{where}: {message}"


def _database_problem(error: BaseException) -> str | None:
    try:
        url = async_url(Settings().database_url)
    except (ValidationError, SettingsError, ConfigurationError):
        return None  # the error is not the database's: it was never opened
    problem = connection_problem(url, error)
    return _one_line(problem.message) if problem else None


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())


class ExplainingGroup(TyperGroup):
    """The `bulkops` command: each subcommand's configuration errors are explained in one
    line, unless the `--debug` option of the command is set."""

    # Typer hands its groups its own Context, a subclass of the (vendored) click one.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except Exception as error:  # typer's own (Exit, usage errors) are not explained
            message = explain(error)
            if message is None or ctx.params.get("debug"):
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(CONFIGURATION_EXIT) from None
