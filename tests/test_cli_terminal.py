"""`bulkops` on a terminal (a pseudo-terminal): hidden password prompts, tables and progress
bars."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from datetime import datetime

import pexpect
import pytest

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests.integrations import bulkops_cli, cli_environment
from tests.test_cli_users import can_sign_in
from tests.test_lifecycle import BULK, DONE, FAIL, RETRY, add, new_bulk


class Terminal:
    """`python -m bulkops <args>` on a terminal of its own; `transcript` is what it showed."""

    def __init__(self, database_url: str, *args: str) -> None:
        self.transcript = io.StringIO()
        env = cli_environment(database_url) | {"TERM": "xterm-256color", "COLUMNS": "200"}
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bulkops", *args],
            env=env,
            dimensions=(50, 200),
            encoding="utf-8",
            timeout=60,
        )
        self.child.logfile_read = self.transcript

    def answer(self, prompt: str, text: str) -> None:
        self.child.expect_exact(prompt)
        self.child.sendline(text)

    def finish(self) -> int:
        """Waits for the command to end; its exit status."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def output(self) -> str:
        """What it showed, without the terminal's control sequences (styles, cursor moves)."""
        return CONTROL_SEQUENCE.sub("", self.transcript.getvalue())


CONTROL_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_admin_create_asks_for_the_password_twice_without_showing_it(database_url: str) -> None:
    terminal = Terminal(database_url, "admin", "create", "bob")
    terminal.answer("Password: ", "Bob12345")
    terminal.answer("Repeat for confirmation: ", "Bob54321")
    # Two different entries: asked again.
    terminal.child.expect_exact("Error: The two entered values do not match.")
    terminal.answer("Password: ", "Bob12345")
    terminal.answer("Repeat for confirmation: ", "Bob12345")
    assert terminal.finish() == 0
    assert 'created admin user "bob"' in terminal.output()
    assert "Bob12345" not in terminal.output() and "Bob54321" not in terminal.output()
    assert can_sign_in(database_url, "bob", "Bob12345")


def test_admin_passwd_asks_for_the_new_password(database_url: str) -> None:
    assert (
        bulkops_cli(database_url, "admin", "create", "eve", "--password", "Before123").returncode
        == 0
    )
    weak = Terminal(database_url, "admin", "passwd", "eve")
    weak.answer("Password: ", "short1")
    weak.answer("Repeat for confirmation: ", "short1")
    assert weak.finish() == 1
    assert "error: Your password must be at least 7 characters." in weak.output()
    terminal = Terminal(database_url, "admin", "passwd", "eve")
    terminal.answer("Password: ", "After1234")
    terminal.answer("Repeat for confirmation: ", "After1234")
    assert terminal.finish() == 0
    assert "After1234" not in terminal.output()
    assert can_sign_in(database_url, "eve", "After1234")
    assert not can_sign_in(database_url, "eve", "Before123")


def test_list_commands_print_a_table_on_a_terminal(database_url: str) -> None:
    created = bulkops_cli(database_url, "integration", "create", "[bold]erp", "--all-bulks")
    assert created.returncode == 0, created.stderr
    terminal = Terminal(database_url, "integration", "list")
    assert terminal.finish() == 0
    lines = [line.split() for line in terminal.output().splitlines() if line.strip()]
    assert lines[0] == ["name", "id", "status", "resources", "bulks", "created"]
    # A name is printed as it is, never read as markup.
    assert lines[-1][:5] == ["[bold]erp", "1", "active", "Magento_Backend::all", "all"]
    assert "\t" not in terminal.output()


@pytest.fixture
def failed_and_old_bulks(database_url: str) -> str:
    async def prepare() -> None:
        database = Database(database_url)
        await upgrade(database)
        await add(
            database,
            new_bulk([RETRY, FAIL, RETRY, DONE]),
            *(new_bulk([DONE], uuid=f"old-{n}", start_time=datetime(2020, 1, n)) for n in (1, 2)),
        )
        await database.dispose()

    asyncio.run(prepare())
    return database_url


def test_long_commands_show_a_progress_bar_on_a_terminal(failed_and_old_bulks: str) -> None:
    retry = Terminal(failed_and_old_bulks, "retry", BULK, "--batch-size", "1")
    assert retry.finish() == 0
    assert "operations requeued" in retry.output() and "3/3" in retry.output()
    assert "━" in retry.output()  # the bar
    assert retry.output().rstrip().endswith("requeued 3 operations")
    cleanup = Terminal(failed_and_old_bulks, "cleanup", "--batch-size", "1")
    assert cleanup.finish() == 0
    assert "bulks deleted" in cleanup.output() and "2/2" in cleanup.output()
    assert cleanup.output().rstrip().endswith("deleted 2 bulks and 2 operations")
