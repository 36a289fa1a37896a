"""Starting and configuring `bulkops`: a wrong setting ends any command with one line saying
what to fix; `serve` and `migrate` say what they did; `--version`; defaults in every help."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from bulkops.cli import app
from bulkops.cli.errors import CONFIGURATION_EXIT
from bulkops.store.database import Database, async_url
from bulkops.store.migrate import alembic_config, upgrade
from tests.backends import Backend, unavailable_reason
from tests.conftest import require
from tests.integrations import bulkops_cli
from tests.servers import free_port, start_server

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

# Every command, with what it needs to get as far as reading its settings.
COMMANDS = [
    ["serve"],
    ["migrate"],
    ["worker"],
    ["retry", "00000000-0000-0000-0000-000000000000"],
    ["cleanup"],
    ["admin", "create", "alice", "--password", "Alice1234"],
    ["admin", "passwd", "alice", "--password", "Alice1234"],
    ["admin", "revoke-tokens", "alice"],
    ["integration", "create", "erp"],
    ["integration", "show", "erp"],
    ["integration", "scope", "erp", "--all-bulks"],
    ["integration", "revoke-tokens", "erp"],
    ["integration", "reauthorize", "erp"],
    ["token", "revoke", "--token", "x"],
    ["payloads", "reseal"],
]


def _sqlite(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'bulkops.sqlite3'}"


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a wrong setting ends a command with."""
    assert result.returncode == CONFIGURATION_EXIT, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_names_a_setting_of_the_wrong_form(
    command: list[str], tmp_path: Path
) -> None:
    result = bulkops_cli(_sqlite(tmp_path), *command, settings={"LEASE_SECONDS": "soon"})
    line = _error_line(result)
    assert "BULKOPS_LEASE_SECONDS" in line
    assert "valid number" in line
    assert not (tmp_path / "bulkops.sqlite3").exists()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"PORT": "http"}, ["BULKOPS_PORT", "valid integer"]),
        ({"PORT": "70000"}, ["BULKOPS_PORT", "65535"]),
        ({"OPERATION_ID": "key"}, ["BULKOPS_OPERATION_ID", "'id' or 'operation_key'"]),
        ({"QUEUE_URL": "redis://localhost"}, ["BULKOPS_QUEUE_URL", "amqp://"]),
        ({"REDACT_KEYS": "password"}, ["BULKOPS_REDACT_KEYS", "expected JSON"]),
        ({"WEBSITES": '[{"id": 1}]'}, ["BULKOPS_WEBSITES[0].code: Field required"]),
        ({"RATE_LIMIT_PER_CALLER": "often"}, ["BULKOPS_RATE_LIMIT_PER_CALLER", "often"]),
        ({"INPUT_LIMIT_ENABLED": "maybe"}, ["BULKOPS_INPUT_LIMIT_ENABLED", "boolean"]),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_a_setting_of_the_wrong_form_is_named_with_the_form_expected(
    settings: dict[str, str], expected: list[str], tmp_path: Path
) -> None:
    line = _error_line(bulkops_cli(_sqlite(tmp_path), "migrate", settings=settings))
    for words in expected:
        assert words in line


def test_a_secret_of_the_wrong_form_is_not_repeated(tmp_path: Path) -> None:
    result = bulkops_cli(
        _sqlite(tmp_path), "migrate", settings={"PAYLOAD_ENCRYPTION_KEYS": '["k3y", 42]'}
    )
    line = _error_line(result)
    assert "BULKOPS_PAYLOAD_ENCRYPTION_KEYS[1]" in line
    assert "k3y" not in line


@pytest.mark.parametrize(
    "url",
    ["oracle://scott:tiger@db/orcl", "postgres ql://x", "postgresql+psycopg2://db/x"],
)
@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["worker"], ["cleanup"]], ids=" ".join)
def test_a_database_url_bulkops_cannot_use(url: str, command: list[str]) -> None:
    line = _error_line(bulkops_cli(url, *command))
    assert "BULKOPS_DATABASE_URL" in line
    assert "tiger" not in line


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_a_database_server_that_does_not_answer_is_named(scheme: str) -> None:
    port = free_port()  # nothing listens there now
    line = _error_line(bulkops_cli(f"{scheme}://bulkops:s3cret@127.0.0.1:{port}/db", "migrate"))
    assert f"BULKOPS_DATABASE_URL: cannot reach the database server at 127.0.0.1:{port}" in line
    assert "s3cret" not in line


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("postgresql", "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_db"),
        ("mariadb", "mysql://root@127.0.0.1:3306/no_such_db"),
    ],
)
@pytest.mark.parametrize(
    "command", [["admin", "create", "alice", "--password", "Alice1234"], ["worker"]], ids=" ".join
)
def test_a_database_that_does_not_exist_is_named(name: str, url: str, command: list[str]) -> None:
    """Even by a worker, which waits for a server that does not answer: waiting would not
    create the database."""
    require(unavailable_reason(name))
    line = _error_line(bulkops_cli(url, *command))
    assert 'the database "no_such_db" does not exist' in line
    assert "127.0.0.1:" in line


def test_a_sqlite_database_where_a_file_is_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    line = _error_line(bulkops_cli(_sqlite(tmp_path / "data"), "migrate"))
    directory = tmp_path / "data"
    assert f"BULKOPS_DATABASE_URL: cannot create the directory {directory}" in line
    assert "a file is in the way" in line


def test_a_sqlite_database_that_cannot_be_written(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "bulkops.sqlite3").mkdir()
    line = _error_line(bulkops_cli(_sqlite(tmp_path), "migrate"))
    assert f"cannot write the SQLite database {tmp_path / 'bulkops.sqlite3'}" in line


@pytest.mark.parametrize("name", ["serve", "worker"])
def test_an_upstreams_file_that_cannot_be_read(name: str, tmp_path: Path) -> None:
    command = [name, "--port", str(free_port())] if name == "serve" else [name]
    missing = tmp_path / "upstreams.toml"
    result = bulkops_cli(_sqlite(tmp_path), *command, settings={"UPSTREAMS_FILE": str(missing)})
    line = _error_line(result)
    assert f"{missing}: cannot read the upstreams file" in line


@pytest.mark.parametrize(
    ("options", "settings"), [(["--debug"], {}), ([], {"DEBUG": "1"})], ids=["option", "setting"]
)
def test_debug_shows_the_traceback(options: list[str], settings: dict[str, str]) -> None:
    result = bulkops_cli("oracle://db/x", *options, "migrate", settings=settings)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "unknown database" in result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use_stops_before_touching_the_database(
    taken_port: int, tmp_path: Path
) -> None:
    result = bulkops_cli(
        _sqlite(tmp_path),
        "serve",
        "--port",
        str(taken_port),
        settings={"ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": "Admin123-test"},
    )
    line = _error_line(result)
    assert f"127.0.0.1:{taken_port} is already in use" in line
    assert result.stdout == ""
    assert not (tmp_path / "bulkops.sqlite3").exists()


def test_serve_on_an_address_not_of_this_machine(tmp_path: Path) -> None:
    result = bulkops_cli(_sqlite(tmp_path), "serve", "--host", "192.0.2.1")
    assert "BULKOPS_HOST (or --host): 192.0.2.1" in _error_line(result)


def test_migrate_says_which_database_and_which_revisions(
    backend: Backend, database_url: str
) -> None:
    url = database_url
    if backend.name == "postgresql":
        # The tests' server trusts local connections: any password does, and is masked.
        url = make_url(url).set(password="s3cret").render_as_string(hide_password=False)
    masked = async_url(url).render_as_string(hide_password=True)

    first = bulkops_cli(url, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database: {masked}\nschema: migrated <none> → {HEAD}\n"
    assert "s3cret" not in first.stdout

    again = bulkops_cli(url, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"database: {masked}\nschema: already at {HEAD}\n"


def test_migrate_from_an_earlier_revision(database_url: str) -> None:
    async def migrate_to_0008() -> None:
        database = Database(database_url)
        try:
            await upgrade(database, "0008")
        finally:
            await database.dispose()

    asyncio.run(migrate_to_0008())
    result = bulkops_cli(database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert f"schema: migrated 0008 → {HEAD}\n" in result.stdout


def test_serve_says_what_it_serves(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        log = server.log()
    finally:
        server.stop()
    lines = log.splitlines()
    assert f"database: {server.database_url}" in lines
    assert f"schema: migrated <none> → {HEAD}" in lines
    assert "queue: db (a table of the database)" in lines
    assert "processes: 1 API process with a worker" in lines
    assert f"serving on {server.base_url}" in lines


def test_version() -> None:
    result = bulkops_cli("sqlite://", "--version")
    assert result.returncode == 0
    assert result.stdout == f"bulkops {version('bulkops')}\n"


def _commands(command: Any, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


# Options that act rather than set have no default to show: the eager ones (--help,
# --version) and typer's shell completion ones; nor has a flag without a `--no-` form, off
# unless given.
COMPLETION = {"install_completion", "show_completion"}


def test_every_option_shows_its_default_or_is_required() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0
    for path in _commands(root, []):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        command: Any = root
        for name in path:
            command = command.commands[name]
        context = typer.Context(command, info_name=path[-1] if path else "bulkops")
        for option in command.params:
            if option.param_type_name != "option" or option.is_eager or option.name in COMPLETION:
                continue
            if option.is_flag and not option.secondary_opts:
                continue
            record = option.get_help_record(context)
            assert record is not None, (path, option.name)
            assert "default: " in record[1] or "[required]" in record[1], (path, record)
            checked += 1
    assert checked >= 15
