"""`bulkops admin ...` and `bulkops integration ...` on a fresh database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import TypeVar

import pytest
from click.testing import Result
from typer.testing import CliRunner

from bulkops.auth.context import (
    ALL_RESOURCES,
    BULK_OPERATIONS,
    SERVICE_RESOURCES,
    STORES,
    UserContext,
)
from bulkops.auth.service import AuthService
from bulkops.cli import app
from bulkops.errors import AuthenticationError
from bulkops.settings import Settings
from bulkops.status import UserType
from bulkops.store.database import Database
from tests.integrations import bulkops_cli, parse_credentials

T = TypeVar("T")


@pytest.fixture
def bulkops(database_url: str) -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            app, list(args), input=input, env={"BULKOPS_DATABASE_URL": database_url}
        )

    return invoke


def with_auth(database_url: str, action: Callable[[AuthService], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(database_url)
        try:
            return await action(AuthService(database, Settings(database_url=database_url)))
        finally:
            await database.dispose()

    return asyncio.run(run())


def can_sign_in(database_url: str, username: str, password: str) -> bool:
    try:
        with_auth(database_url, lambda auth: auth.issue_admin_token(username, password))
    except AuthenticationError:
        return False
    return True


def bearer(database_url: str, token: str) -> UserContext | None:
    return with_auth(database_url, lambda auth: auth.resolve_bearer(token))


def test_admin_create_on_a_fresh_database(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    result = bulkops("admin", "create", "alice", "--password", "Alice1234")
    assert result.exit_code == 0, result.output
    assert result.stdout == 'created admin user "alice"\n'
    assert can_sign_in(database_url, "alice", "Alice1234")
    assert not can_sign_in(database_url, "alice", "Alice12345")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("abc123", "Your password must be at least 7 characters."),
        ("abcdefgh", "Your password must include both numeric and alphabetic characters."),
        ("12345678", "Your password must include both numeric and alphabetic characters."),
    ],
)
def test_admin_create_refuses_weak_passwords(
    bulkops: Callable[..., Result], database_url: str, password: str, message: str
) -> None:
    result = bulkops("admin", "create", "carol", "--password", password)
    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert not can_sign_in(database_url, "carol", password)
    # Nothing was created: the name is still free.
    assert bulkops("admin", "create", "carol", "--password", "Carol1234").exit_code == 0


def test_admin_create_refuses_a_taken_username(bulkops: Callable[..., Result]) -> None:
    assert bulkops("admin", "create", "dave", "--password", "Dave1234").exit_code == 0
    result = bulkops("admin", "create", "dave", "--password", "Other1234")
    assert result.exit_code == 1
    assert result.stderr == 'error: An admin user named "dave" already exists.\n'


def test_admin_create_refuses_bad_usernames(bulkops: Callable[..., Result]) -> None:
    assert bulkops("admin", "create", " ", "--password", "Blank1234").exit_code == 1
    result = bulkops("admin", "create", "x" * 41, "--password", "Long12345")
    assert result.exit_code == 1
    assert "at most 40 characters" in result.stderr


def test_admin_passwd_replaces_the_password(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    assert bulkops("admin", "create", "erin", "--password", "Before123").exit_code == 0
    result = bulkops("admin", "passwd", "erin", "--password", "After1234")
    assert result.exit_code == 0, result.output
    assert not can_sign_in(database_url, "erin", "Before123")
    assert can_sign_in(database_url, "erin", "After1234")


def test_admin_passwd_unlocks_a_locked_user(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    assert bulkops("admin", "create", "frank", "--password", "Frank1234").exit_code == 0
    for _ in range(6):
        assert not can_sign_in(database_url, "frank", "Wrong1234")
    assert not can_sign_in(database_url, "frank", "Frank1234")
    assert bulkops("admin", "passwd", "frank", "--password", "Frank5678").exit_code == 0
    assert can_sign_in(database_url, "frank", "Frank5678")


def test_admin_passwd_of_an_unknown_user_fails(bulkops: Callable[..., Result]) -> None:
    result = bulkops("admin", "passwd", "nobody", "--password", "Nobody123")
    assert result.exit_code == 1
    assert result.stderr == 'error: There is no admin user named "nobody".\n'


def test_admin_passwd_refuses_weak_passwords(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    assert bulkops("admin", "create", "gina", "--password", "Gina12345").exit_code == 0
    assert bulkops("admin", "passwd", "gina", "--password", "weakweak").exit_code == 1
    assert can_sign_in(database_url, "gina", "Gina12345")


def access_token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return parse_credentials(result.stdout).access_token


def test_integration_create_prints_its_credentials_with_every_resource(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    result = bulkops("integration", "create", "erp")
    credentials = parse_credentials(result.stdout)
    assert len(set(vars(credentials).values())) == 4
    context = bearer(database_url, credentials.access_token)
    assert context is not None
    assert context.user_type == UserType.INTEGRATION
    assert context.resources == frozenset({ALL_RESOURCES})
    # Without a key the secrets are stored in clear, and the command says so.
    assert "BULKOPS_OAUTH_SECRETS_KEY is not set" in result.stderr


def test_integration_show_prints_the_same_credentials_again(
    bulkops: Callable[..., Result],
) -> None:
    created = bulkops("integration", "create", "wms")
    shown = bulkops("integration", "show", "wms")
    assert shown.exit_code == 0, shown.output
    assert parse_credentials(shown.stdout) == parse_credentials(created.stdout)
    missing = bulkops("integration", "show", "nobody")
    assert missing.exit_code == 1
    assert missing.stderr == (
        'error: There is no integration named "nobody" with OAuth credentials.\n'
    )


def test_integration_create_with_resources(
    bulkops: Callable[..., Result], database_url: str
) -> None:
    result = bulkops("integration", "create", "reader", "--resource", BULK_OPERATIONS, "-r", STORES)
    context = bearer(database_url, access_token(result))
    assert context is not None
    assert context.resources == frozenset({BULK_OPERATIONS, STORES})
    assert context.is_allowed(STORES)
    assert not context.is_allowed("Magento_Customer::manage")


def test_integrations_get_their_own_ids(bulkops: Callable[..., Result], database_url: str) -> None:
    first = bearer(database_url, access_token(bulkops("integration", "create", "one")))
    second = bearer(database_url, access_token(bulkops("integration", "create", "two")))
    assert first is not None and second is not None
    assert first.user_id != second.user_id


def test_integration_create_refuses_a_taken_name(bulkops: Callable[..., Result]) -> None:
    assert bulkops("integration", "create", "pim").exit_code == 0
    result = bulkops("integration", "create", "pim")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == 'error: An integration named "pim" already exists.\n'


def test_integration_create_refuses_what_is_not_a_resource_id(
    bulkops: Callable[..., Result],
) -> None:
    result = bulkops("integration", "create", "oms", "--resource", "all")
    assert result.exit_code == 1
    assert '"all" is not an ACL resource of this service' in result.stderr
    assert f"{ALL_RESOURCES}," in result.stderr


# The commands below run as real processes, as an operator runs them.


def listed(database_url: str, *command: str) -> list[dict[str, object]]:
    result = bulkops_cli(database_url, *command, "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_admin_list_shows_failures_and_lockouts_and_unlock_clears_them(
    database_url: str,
) -> None:
    for name in ("frank", "ann"):
        created = bulkops_cli(database_url, "admin", "create", name, "--password", "Right1234")
        assert created.returncode == 0, created.stderr
    assert not can_sign_in(database_url, "ann", "Wrong1234")
    for _ in range(6):
        assert not can_sign_in(database_url, "frank", "Wrong1234")
    assert not can_sign_in(database_url, "frank", "Right1234")  # locked out

    ann, frank = listed(database_url, "admin")
    assert (ann["username"], ann["active"], ann["failures"], ann["locked_until"]) == (
        "ann",
        True,
        1,
        None,
    )
    assert (frank["username"], frank["failures"]) == ("frank", 6)
    assert isinstance(frank["locked_until"], str) and frank["locked_until"] > frank["created"]
    assert ann["id"] != frank["id"]

    result = bulkops_cli(database_url, "admin", "unlock", "frank")
    assert (result.returncode, result.stdout) == (0, 'unlocked admin user "frank"\n')
    _, frank = listed(database_url, "admin")
    assert (frank["failures"], frank["locked_until"]) == (0, None)
    assert can_sign_in(database_url, "frank", "Right1234")

    result = bulkops_cli(database_url, "admin", "unlock", "nobody")
    assert (result.returncode, result.stderr) == (
        1,
        'error: There is no admin user named "nobody".\n',
    )


def test_list_commands_print_tab_separated_lines_when_piped(database_url: str) -> None:
    assert bulkops_cli(database_url, "admin", "list").stdout == (
        "username\tid\tactive\tfailures\tlocked_until\tcreated\n"
    )
    bulkops_cli(database_url, "admin", "create", "tab\tname", "--password", "Right1234")
    bulkops_cli(database_url, "integration", "create", "erp", "-r", STORES, "-r", BULK_OPERATIONS)
    header, admin = bulkops_cli(database_url, "admin", "list").stdout.splitlines()
    # A tab in a name cannot shift the columns.
    assert admin.split("\t")[:5] == ["tab name", "1", "yes", "0", ""]
    header, erp = bulkops_cli(database_url, "integration", "list").stdout.splitlines()
    assert header == "name\tid\tstatus\tresources\tbulks\tcreated"
    assert erp.split("\t")[:5] == ["erp", "1", "active", f"{STORES},{BULK_OPERATIONS}", "own"]


def test_integration_list_shows_status_resources_and_scope(database_url: str) -> None:
    bulkops_cli(database_url, "integration", "create", "pim", "--all-bulks")
    bulkops_cli(database_url, "integration", "create", "erp", "-r", STORES)
    assert bulkops_cli(database_url, "integration", "revoke", "erp").returncode == 0
    erp, pim = listed(database_url, "integration")
    assert {key: erp[key] for key in ("name", "status", "resources", "bulks")} == {
        "name": "erp",
        "status": "revoked",
        "resources": [STORES],
        "bulks": "own",
    }
    assert {key: pim[key] for key in ("name", "status", "resources", "bulks")} == {
        "name": "pim",
        "status": "active",
        "resources": [ALL_RESOURCES],
        "bulks": "all",
    }
    # Times are UTC, and JSON says so.
    assert str(erp["created"]).endswith("+00:00")
    assert bulkops_cli(database_url, "integration", "reauthorize", "erp").returncode == 0
    assert listed(database_url, "integration")[0]["status"] == "active"


def test_integration_revoke_ends_its_access(database_url: str) -> None:
    erp = access_token_of(bulkops_cli(database_url, "integration", "create", "erp"))
    pim = access_token_of(bulkops_cli(database_url, "integration", "create", "pim"))
    result = bulkops_cli(database_url, "integration", "revoke", "erp")
    assert (result.returncode, result.stdout) == (
        0,
        'revoked the access token of integration "erp"\n',
    )
    assert bearer(database_url, erp) is None
    assert bearer(database_url, pim) is not None
    # The earlier name does the same.
    assert bulkops_cli(database_url, "integration", "revoke-tokens", "pim").returncode == 0
    assert bearer(database_url, pim) is None
    result = bulkops_cli(database_url, "integration", "revoke", "nobody")
    assert (result.returncode, result.stderr) == (
        1,
        'error: There is no integration named "nobody".\n',
    )


def access_token_of(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return parse_credentials(result.stdout).access_token


def test_integration_create_accepts_only_resources_the_service_knows(
    database_url: str, tmp_path: Path
) -> None:
    result = bulkops_cli(database_url, "integration", "create", "oms", "-r", "Vendor_Erp::orders")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        'error: "Vendor_Erp::orders" is not an ACL resource of this service; it knows '
    )
    assert all(resource in result.stderr for resource in SERVICE_RESOURCES)
    assert listed(database_url, "integration") == []
    # A route of the upstreams file brings its resource.
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(UPSTREAMS)
    settings = {"UPSTREAMS_FILE": str(upstreams)}
    result = bulkops_cli(
        database_url, "integration", "create", "oms", "-r", "Vendor_Erp::orders", settings=settings
    )
    assert result.returncode == 0, result.stderr
    assert listed(database_url, "integration")[0]["resources"] == ["Vendor_Erp::orders"]


UPSTREAMS = """
[[upstream]]
name = "erp"
base_url = "http://127.0.0.1:9"
[[upstream.route]]
method = "POST"
path = "/V1/erp/orders"
service = "Vendor\\\\Erp\\\\Api\\\\OrderRepositoryInterface::save"
resource = "Vendor_Erp::orders"
"""


def test_integration_create_help_says_what_no_resource_grants(database_url: str) -> None:
    result = bulkops_cli(database_url, "integration", "create", "--help")
    assert "Without -r it may use every resource (Magento_Backend::all)" in " ".join(
        result.stdout.replace("│", " ").split()
    )
