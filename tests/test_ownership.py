"""Ownership scopes: an integration reads only the bulks it submitted, unless it reads every
bulk; admins read every bulk. Through every route that reads bulks, with two scoped
integrations, one that reads every bulk, and an admin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from bulkops.api.app import create_app
from bulkops.auth.context import BULK_OPERATIONS
from bulkops.auth.service import AuthService
from bulkops.cli import app as cli
from bulkops.settings import Settings
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from tests.storage import insert_bulks_async

ADMIN_PASSWORD = "Admin123-test"
TOPIC = "async.magento.customer.api.accountmanagementinterface.createaccount.post"
START = datetime(2030, 1, 1)
# Each owner's bulk: two failed operations, one open, one complete.
STATUSES = [
    OperationStatus.RETRIABLY_FAILED,
    OperationStatus.NOT_RETRIABLY_FAILED,
    OperationStatus.OPEN,
    OperationStatus.COMPLETE,
]
NOT_AUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": BULK_OPERATIONS},
}


def bulk_uuid(owner: str) -> str:
    return f"{(owner * 8)[:8]}-0000-4000-8000-000000000000"


def not_found(uuid: str) -> dict[str, object]:
    return {"message": "Bulk uuid %bulkUuid not exist", "parameters": {"bulkUuid": uuid}}


def owned_bulk(owner: str, user_type: UserType, user_id: int, day: int) -> NewBulk:
    return NewBulk(
        uuid=bulk_uuid(owner),
        description=f"Topic {TOPIC}",
        user_id=user_id,
        user_type=int(user_type),
        start_time=START + timedelta(days=day),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=TOPIC,
                serialized_data=f'{{"owner":"{owner}"}}',
                status=status,
                result_message=f"{owner} {key}",
                error_code=0,
            )
            for key, status in enumerate(STATUSES)
        ],
    )


@dataclass
class World:
    """Clients of the app, by caller; bulk `a` submitted by integration a, `b` by b, `c` by
    the admin, `g` by a guest."""

    clients: dict[str, httpx.AsyncClient]
    anonymous: httpx.AsyncClient


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings = Settings(
        database_url=database_url, admin_username="admin", admin_password=ADMIN_PASSWORD
    )
    app = create_app(settings, run_worker=False)
    transport = httpx.ASGITransport(app=app)
    base = "http://testserver"
    async with app.router.lifespan_context(app):
        auth = app.state.auth
        tokens = {
            name: (
                await auth.create_integration(name, [BULK_OPERATIONS], all_bulks=name == "all")
            ).access_token
            for name in ("a", "b", "all")
        }
        async with httpx.AsyncClient(transport=transport, base_url=base) as anonymous:
            response = await anonymous.post(
                "/rest/V1/integration/admin/token",
                json={"username": "admin", "password": ADMIN_PASSWORD},
            )
            tokens["admin"] = response.json()
            users = {name: await auth.resolve_bearer(token) for name, token in tokens.items()}
            await insert_bulks_async(
                app.state.database,
                [
                    owned_bulk("a", UserType.INTEGRATION, users["a"].user_id, 0),
                    owned_bulk("b", UserType.INTEGRATION, users["b"].user_id, 1),
                    # An admin with the same id as an integration owns another bulk.
                    owned_bulk("c", UserType.ADMIN, users["admin"].user_id, 2),
                    owned_bulk("g", UserType.GUEST, None, 3),
                ],
            )
            clients = {
                name: httpx.AsyncClient(
                    transport=transport,
                    base_url=base,
                    headers={"Authorization": f"Bearer {token}"},
                )
                for name, token in tokens.items()
            }
            try:
                yield World(clients, anonymous)
            finally:
                for client in clients.values():
                    await client.aclose()


SEEN = {"a": {"a"}, "b": {"b"}, "all": {"a", "b", "c", "g"}, "admin": {"a", "b", "c", "g"}}
"""The bulks each caller reads."""

EQ = "searchCriteria[filter_groups][0][filters][0][{}]={}"


def eq(field: str, value: str) -> str:
    return "&".join(
        EQ.format(key, value)
        for key, value in (("field", field), ("value", value), ("condition_type", "eq"))
    )


def owners(items: list[dict[str, object]]) -> set[str]:
    return {str(item["bulk_uuid"])[0] for item in items}


@pytest.mark.parametrize("caller", list(SEEN))
async def test_searches_see_and_count_only_the_bulks_the_caller_reads(
    world: World, caller: str
) -> None:
    client = world.clients[caller]
    seen = SEEN[caller]
    per_bulk = len(STATUSES)
    # A page, every match streamed, a page past the end, only the count.
    for query in ("searchCriteria[pageSize]=100", "searchCriteria=", "searchCriteria[pageSize]=2"):
        response = await client.get(f"/rest/V1/bulk?{query}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total_count"] == per_bulk * len(seen)
        assert owners(body["items"]) <= seen
        assert "filter_groups" in body["search_criteria"]
        assert body["search_criteria"]["filter_groups"] == []
    everything = (await client.get("/rest/V1/bulk?searchCriteria=")).json()
    assert owners(everything["items"]) == seen
    counted = await client.get("/rest/V1/bulk?searchCriteria=&fields=total_count")
    assert counted.json() == {"total_count": per_bulk * len(seen)}
    for owner in "abcg":
        for query in ("&searchCriteria[pageSize]=10", ""):
            found = await client.get(f"/rest/V1/bulk?{eq('bulk_uuid', bulk_uuid(owner))}{query}")
            expected = per_bulk if owner in seen else 0
            assert found.json()["total_count"] == expected
            assert len(found.json()["items"]) == expected
    # By status, by the owner's own fields: still only what the caller reads.
    failed = await client.get(f"/rest/V1/bulk?{eq('status', '2')}&searchCriteria[pageSize]=9")
    assert failed.json()["total_count"] == len(seen)
    for user_type in ("1", "2", "4"):
        by_type = (await client.get(f"/rest/V1/bulk?{eq('user_type', user_type)}")).json()
        assert owners(by_type["items"]) <= seen


@pytest.mark.parametrize("caller", list(SEEN))
async def test_another_callers_bulk_is_a_missing_one(world: World, caller: str) -> None:
    client = world.clients[caller]
    for owner in ["a", "b", "c", "g", "missing"]:
        uuid = bulk_uuid(owner)
        visible = owner in SEEN[caller]
        for path in (f"/rest/V1/bulk/{uuid}/status", f"/rest/V1/bulk/{uuid}/detailed-status"):
            response = await client.get(path)
            if visible:
                assert response.status_code == 200, response.text
                assert response.json()["bulk_id"] == uuid
            else:
                assert (response.status_code, response.json()) == (404, not_found(uuid))
        for status in (2, 4):
            response = await client.get(f"/rest/V1/bulk/{uuid}/operation-status/{status}")
            assert response.json() == (1 if visible else 0)
        # Its completion webhooks' log: none were asked for.
        response = await client.get(f"/rest/V1/bulk/{uuid}/webhooks")
        assert (response.status_code, response.json()) == (
            (200, []) if visible else (404, not_found(uuid))
        )


async def test_a_scoped_integration_retries_only_its_own_bulks(world: World) -> None:
    other = bulk_uuid("b")
    for caller in ("a", "all"):
        response = await world.clients[caller].post(f"/rest/V1/bulk/{other}/retry")
        if caller == "a":
            assert (response.status_code, response.json()) == (404, not_found(other))
    # `all` requeued b's two failed operations; a had requeued nothing.
    counts = await world.clients["b"].get(f"/rest/V1/bulk/{other}/operation-status/4")
    assert counts.json() == 3
    own = await world.clients["a"].post(f"/rest/V1/bulk/{bulk_uuid('a')}/retry")
    assert (own.status_code, own.json()) == (200, 2)


async def test_guests_read_nothing_of_bulks(world: World) -> None:
    client = world.anonymous
    uuid = bulk_uuid("g")
    for path in (
        "/rest/V1/bulk?searchCriteria=",
        f"/rest/V1/bulk/{uuid}/status",
        f"/rest/V1/bulk/{uuid}/detailed-status",
        f"/rest/V1/bulk/{uuid}/operation-status/2",
    ):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)
    response = await client.post(f"/rest/V1/bulk/{uuid}/retry")
    assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)


def test_integrations_are_scoped_unless_created_or_set_to_read_every_bulk(
    database_url: str,
) -> None:
    runner = CliRunner()
    env = {"BULKOPS_DATABASE_URL": database_url}

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def all_bulks(name: str) -> bool:
        token = next(
            line.split(": ")[1]
            for line in invoke("integration", "show", name).splitlines()
            if line.startswith("access_token:")
        )

        async def resolve() -> bool:
            database = Database(database_url)
            try:
                auth = AuthService(database, Settings(database_url=database_url))
                user = await auth.resolve_bearer(token)
            finally:
                await database.dispose()
            assert user is not None
            return user.all_bulks

        return asyncio.run(resolve())

    invoke("integration", "create", "scoped")
    invoke("integration", "create", "reader", "--all-bulks")
    assert (all_bulks("scoped"), all_bulks("reader")) == (False, True)
    assert invoke("integration", "scope", "scoped", "--all-bulks") == (
        'integration "scoped" reads every bulk\n'
    )
    invoke("integration", "scope", "reader", "--own-bulks")
    assert (all_bulks("scoped"), all_bulks("reader")) == (True, False)
    result = runner.invoke(cli, ["integration", "scope", "nobody", "--all-bulks"], env=env)
    assert result.exit_code == 1 and 'There is no integration named "nobody".' in result.output
