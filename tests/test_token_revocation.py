"""Revoking tokens: one token, every token of an admin user or an integration, through the API
and the command line; a new admin password revokes the admin's tokens. Two API processes on
one database (two apps, each with its own token cache, off here): a revocation through one is
refused by the other at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from starlette.applications import Starlette
from typer.testing import CliRunner

from bulkops.api.app import create_app
from bulkops.auth.context import ADMIN_USERS, BULK_OPERATIONS, INTEGRATIONS
from bulkops.auth.service import AuthService, IntegrationCredentials
from bulkops.cli import app as cli
from bulkops.settings import Settings
from bulkops.store.database import Database

PASSWORD = "Admin123-test"
OTHER_PASSWORD = "Other456-test"
GUARDED = "/rest/V1/store/websites"
BASE = "http://testserver"


def not_authorized(*resources: str) -> dict[str, object]:
    return {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": ", ".join(resources)},
    }


@dataclass
class Process:
    """One API process: its app and a client without credentials."""

    app: Starlette
    client: httpx.AsyncClient

    @property
    def auth(self) -> AuthService:
        return self.app.state.auth

    async def status(self, token: str) -> int:
        """What a guarded route answers the token with."""
        response = await self.client.get(GUARDED, headers={"Authorization": f"Bearer {token}"})
        return response.status_code

    async def signed_status(self, credentials: IntegrationCredentials) -> tuple[int, object]:
        client = Client(
            credentials.consumer_key,
            client_secret=credentials.consumer_secret,
            resource_owner_key=credentials.access_token,
            resource_owner_secret=credentials.access_token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
        )
        _, headers, _ = client.sign(BASE + GUARDED)
        response = await self.client.get(GUARDED, headers=headers)
        return response.status_code, response.json()

    async def sign_in(self, username: str, password: str = PASSWORD) -> str:
        response = await self.client.post(
            "/rest/V1/integration/admin/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, token: str, path: str, body: object) -> httpx.Response:
        return await self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def settings(database_url: str, password: str = PASSWORD, cache: float = 0) -> Settings:
    return Settings(
        database_url=database_url,
        admin_username="admin",
        admin_password=password,
        token_cache_seconds=cache,
    )


@pytest.fixture
async def processes(database_url: str) -> AsyncIterator[list[Process]]:
    """Two API processes with their token caches off."""
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(2):
            app = create_app(settings(database_url), run_worker=False)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
            await stack.enter_async_context(client)
            started.append(Process(app, client))
        yield started


async def test_one_token_is_revoked_everywhere_at_once(processes: list[Process]) -> None:
    one, two = processes
    admin = await one.sign_in("admin")
    erp = await one.auth.create_integration("erp")
    reader = (await one.auth.create_integration("reader", [BULK_OPERATIONS])).access_token
    assert [await one.status(erp.access_token), await two.status(erp.access_token)] == [200, 200]

    path = "/rest/V1/integration/token/revoke"
    refused = await one.post(reader, path, {"token": erp.access_token})
    assert (refused.status_code, refused.json()) == (401, not_authorized(ADMIN_USERS, INTEGRATIONS))
    unknown = await one.post(admin, path, {"token": "x" * 32})
    assert (unknown.status_code, unknown.json()) == (404, {"message": "The token does not exist."})
    missing = await one.post(admin, path, {})
    assert missing.status_code == 400
    revoked = await one.post(admin, path, {"token": erp.access_token})
    assert (revoked.status_code, revoked.json()) == (200, True)

    assert [await one.status(erp.access_token), await two.status(erp.access_token)] == [401, 401]
    assert await two.signed_status(erp) == (401, {"message": "Access token has been revoked"})
    assert await two.status(admin) == 200
    # Reauthorized: a new access token and secret, the same consumer.
    renewed = await two.auth.reauthorize_integration("erp")
    assert renewed.consumer_key == erp.consumer_key
    assert renewed.access_token != erp.access_token
    assert await one.status(renewed.access_token) == 200
    assert (await one.signed_status(renewed))[0] == 200
    assert await one.status(erp.access_token) == 401


async def test_every_token_of_an_admin_user(processes: list[Process]) -> None:
    one, two = processes
    await one.auth.create_admin("ops", PASSWORD)
    first, second = await one.sign_in("ops"), await one.sign_in("ops")
    admin = await one.sign_in("admin")
    ops = await one.auth.resolve_bearer(first)
    assert ops is not None
    reader = (await one.auth.create_integration("reader", [INTEGRATIONS])).access_token

    path = "/rest/V1/integration/admin/token/revoke"
    refused = await one.post(reader, path, {"adminId": ops.user_id})
    assert (refused.status_code, refused.json()) == (401, not_authorized(ADMIN_USERS))
    unknown = await one.post(admin, path, {"adminId": 999})
    assert (unknown.status_code, unknown.json()) == (
        404,
        {
            "message": "No such entity with %fieldName = %fieldValue",
            "parameters": {"fieldName": "adminId", "fieldValue": 999},
        },
    )
    for body in ({"adminId": "abc"}, {"adminId": [1]}, {}):
        assert (await one.post(admin, path, body)).status_code == 400
    revoked = await one.post(admin, path, {"adminId": ops.user_id})
    assert (revoked.status_code, revoked.json()) == (200, True)

    assert [await two.status(first), await two.status(second), await two.status(admin)] == [
        401,
        401,
        200,
    ]
    # The user itself is not locked out: it signs in again.
    assert await two.status(await two.sign_in("ops")) == 200


async def test_every_token_of_an_integration(processes: list[Process]) -> None:
    one, two = processes
    admin = await one.sign_in("admin")
    erp = await one.auth.create_integration("erp")
    pim = await one.auth.create_integration("pim")
    erp_user = await one.auth.resolve_bearer(erp.access_token)
    assert erp_user is not None
    users_only = (await one.auth.create_integration("users", [ADMIN_USERS])).access_token

    path = "/rest/V1/integration/integration/token/revoke"
    refused = await one.post(users_only, path, {"integrationId": erp_user.user_id})
    assert (refused.status_code, refused.json()) == (401, not_authorized(INTEGRATIONS))
    unknown = await one.post(admin, path, {"integrationId": 999})
    assert unknown.status_code == 404
    revoked = await one.post(admin, path, {"integrationId": erp_user.user_id})
    assert (revoked.status_code, revoked.json()) == (200, True)
    assert await two.status(erp.access_token) == 401
    assert await two.signed_status(erp) == (401, {"message": "Access token has been revoked"})
    assert [await two.status(pim.access_token), await two.status(admin)] == [200, 200]


async def test_a_new_admin_password_revokes_the_admins_tokens(
    processes: list[Process], database_url: str
) -> None:
    one, two = processes
    await one.auth.create_admin("ops", PASSWORD)
    ops_token, admin_token = await one.sign_in("ops"), await one.sign_in("admin")
    await one.auth.set_admin_password("ops", OTHER_PASSWORD)
    assert [await two.status(ops_token), await two.status(admin_token)] == [401, 200]

    # A process starting with the same BULKOPS_ADMIN_PASSWORD changes nothing...
    async def start(password: str) -> None:
        app = create_app(settings(database_url, password), run_worker=False)
        async with app.router.lifespan_context(app):
            pass

    await start(PASSWORD)
    assert await two.status(admin_token) == 200
    # ...one starting with another password changes it, and revokes the admin's tokens.
    await start(OTHER_PASSWORD)
    assert await two.status(admin_token) == 401
    assert await two.status(await two.sign_in("admin", OTHER_PASSWORD)) == 200


async def test_the_revoking_process_forgets_the_token_at_once_even_with_its_cache(
    database_url: str,
) -> None:
    """Other processes keep trusting a token they resolved for `token_cache_seconds` at most;
    the process that revokes it forgets it at once."""
    app = create_app(settings(database_url, cache=3600), run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        process = Process(app, client)
        admin = await process.sign_in("admin")
        await process.auth.create_admin("ops", PASSWORD)
        ops = await process.sign_in("ops")
        erp = await process.auth.create_integration("erp")
        for token in (admin, ops, erp.access_token):
            assert await process.status(token) == 200  # now in the cache
        await process.auth.revoke_token(erp.access_token)
        await process.auth.set_admin_password("ops", OTHER_PASSWORD)
        assert [await process.status(erp.access_token), await process.status(ops)] == [401, 401]
        assert await process.status(admin) == 200


def test_revocation_commands(database_url: str) -> None:
    runner = CliRunner()
    env = {"BULKOPS_DATABASE_URL": database_url}

    def invoke(*args: str, exit_code: int = 0, stdin: str | None = None) -> str:
        result = runner.invoke(cli, list(args), env=env, input=stdin)
        assert result.exit_code == exit_code, result.output
        return result.output

    def live(token: str) -> bool:
        async def resolve() -> bool:
            database = Database(database_url)
            try:
                auth = AuthService(database, Settings(database_url=database_url))
                return await auth.resolve_bearer(token) is not None
            finally:
                await database.dispose()

        return asyncio.run(resolve())

    def sign_in(username: str, password: str = PASSWORD) -> str:
        async def issue() -> str:
            database = Database(database_url)
            try:
                auth = AuthService(database, Settings(database_url=database_url))
                return await auth.issue_admin_token(username, password)
            finally:
                await database.dispose()

        return asyncio.run(issue())

    def access_token(output: str) -> str:
        return next(
            line.split(": ")[1] for line in output.splitlines() if line.startswith("access_token:")
        )

    invoke("admin", "create", "ops", "--password", PASSWORD)
    erp = access_token(invoke("integration", "create", "erp"))
    pim = access_token(invoke("integration", "create", "pim"))
    ops = sign_in("ops")
    assert live(ops) and live(erp) and live(pim)

    assert invoke("admin", "revoke-tokens", "ops") == 'revoked the tokens of admin user "ops"\n'
    assert not live(ops)
    ops = sign_in("ops")
    assert invoke("admin", "passwd", "ops", "--password", OTHER_PASSWORD) == (
        'changed the password of admin user "ops" and revoked its tokens\n'
    )
    assert not live(ops)
    assert invoke("integration", "revoke", "erp") == (
        'revoked the access token of integration "erp"\n'
    )
    assert not live(erp) and live(pim)
    renewed = access_token(invoke("integration", "reauthorize", "erp"))
    assert live(renewed) and not live(erp)
    # The token is read from a prompt, kept out of the shell's history.
    assert invoke("token", "revoke", stdin=f"{pim}\n").endswith("revoked the token\n")
    assert not live(pim)
    assert "no such token" in invoke("token", "revoke", "--token", "x" * 32, exit_code=1)
    for command in (["admin", "revoke-tokens", "nobody"], ["integration", "revoke", "x"]):
        assert "There is no" in invoke(*command, exit_code=1)
