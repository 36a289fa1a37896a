"""Integrations created with the real `bulkops integration create`, and their credentials."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tests.servers import RunningServer, bulkops_environment

CREDENTIALS_OUTPUT = re.compile(
    r"consumer_key: [a-z0-9]{32}\nconsumer_secret: [a-z0-9]{32}\n"
    r"access_token: [a-z0-9]{32}\naccess_token_secret: [a-z0-9]{32}\n"
)


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


def parse_credentials(output: str) -> Credentials:
    assert CREDENTIALS_OUTPUT.fullmatch(output), output
    values = dict(line.split(": ", 1) for line in output.splitlines())
    return Credentials(**values)


def cli_environment(database_url: str, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of `bulkops` on the database, with only these other BULKOPS_* settings."""
    return bulkops_environment({"DATABASE_URL": database_url} | dict(settings or {}))


def bulkops_cli(
    database_url: str,
    *args: str,
    settings: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m bulkops <args>` on the database, with only these other BULKOPS_* settings,
    reading `input` (nothing, when None) on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *args],
        env=cli_environment(database_url, settings),
        input=input or "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_integration(
    database_url: str,
    name: str,
    *resources: str,
    settings: Mapping[str, str] | None = None,
) -> Credentials:
    options = [option for resource in resources for option in ("--resource", resource)]
    result = bulkops_cli(database_url, "integration", "create", name, *options, settings=settings)
    assert result.returncode == 0, result.stderr
    return parse_credentials(result.stdout)


def integration_client(server: RunningServer, name: str, *resources: str) -> httpx.Client:
    """A client of `server` with the access token of a new integration with these resources."""
    token = create_integration(server.database_url, name, *resources).access_token
    return server.client(headers={"Authorization": f"Bearer {token}"})
