"""`DELETE /V1/bulk/:uuid`, and bulks kept for a retention of their own.

Deleting: only the caller's own bulks (another's is missing), with the resource of each
operation's route too; refused while operations are open unless forced, and then queued
operations never run: the worker drops their messages, from the database's queue or a
broker's, while the other bulks' operations go on (and their ETags change)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bulkops.auth.context import ALL_RESOURCES, BULK_OPERATIONS
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from bulkops.store.lifecycle import cleanup_bulks, expired_bulks
from tests.brokers import Broker
from tests.customers import CUSTOMERS, customer
from tests.integrations import integration_client
from tests.servers import RunningServer, start_bulkops, start_server
from tests.storage import count, insert_bulks, insert_bulks_async, query
from tests.waiting import wait_for

GONE_TOPIC = "async.vendor.gone.api.goneinterface.apply.post"
NOW = datetime(2030, 6, 1, 12)


def emails() -> list[str]:
    return [f"{uuid.uuid4().hex}@example.com" for _ in range(2)]


def submit(client: httpx.Client, items: list[str], **headers: str) -> str:
    response = client.post(CUSTOMERS, json=[customer(e) for e in items], headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]


def not_found(bulk: str) -> dict[str, object]:
    return {"message": "Bulk uuid %bulkUuid not exist", "parameters": {"bulkUuid": bulk}}


def test_forced_deletion_drops_queued_operations_on_both_transports(
    idle_server: RunningServer,
    queue_settings: dict[str, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    server = idle_server
    with (
        integration_client(server, "a", BULK_OPERATIONS) as owner,
        integration_client(server, "b", BULK_OPERATIONS) as b,
    ):
        deleted_emails = emails()
        deleted = submit(owner, deleted_emails)
        kept = submit(owner, emails())
        path = f"/rest/V1/bulk/{deleted}"
        if "amqp" in queue_settings["QUEUE_URL"]:
            broker: Broker = request.getfixturevalue("broker")
            # Each bulk's first operation: the next waits for it (a bulk's items in order).
            wait_for(lambda: broker.messages_ready() == 2, 30, "the bulks' messages published")

        # Another's bulk is missing, as when read.
        response = b.delete(path, params={"force": "true"})
        assert (response.status_code, response.json()) == (404, not_found(deleted))
        response = owner.delete(path)
        assert response.status_code == 400
        assert response.json() == {
            "message": "Bulk %bulkUuid has %count open operations. Wait until they finish, "
            "or delete it with force=true.",
            "parameters": {"bulkUuid": deleted, "count": 2},
        }
        response = owner.delete(path, params={"force": "yes"})
        assert response.status_code == 400 and '"bool" type' in response.json()["message"]

        kept_status = f"/rest/V1/bulk/{kept}/status"
        open_tag = owner.get(kept_status).headers["etag"]
        response = owner.delete(path, params={"force": "true"})
        assert (response.status_code, response.json()) == (200, True)
        assert owner.get(f"{path}/status").status_code == 404
        assert owner.delete(path).status_code == 404
        in_queue = "SELECT COUNT(*) FROM bulkops_queue_message"
        if "amqp" not in queue_settings["QUEUE_URL"]:
            assert count(server.database_url, in_queue) == 2  # the kept bulk's

        worker = start_bulkops(
            ["worker"],
            tmp_path,
            tmp_path / "worker.log",
            {"DATABASE_URL": server.database_url} | queue_settings,
        )
        try:

            def kept_done() -> bool:
                answer = owner.get(kept_status, headers={"If-None-Match": open_tag})
                return answer.status_code == 200 and all(
                    op["status"] == OperationStatus.COMPLETE
                    for op in answer.json()["operations_list"]
                )

            wait_for(kept_done, 60, "the kept bulk's operations processed")
            if "amqp" in queue_settings["QUEUE_URL"]:
                wait_for(lambda: broker.messages_ready() == 0, 30, "the messages consumed")
            else:
                wait_for(lambda: count(server.database_url, in_queue) == 0, 30, "queue empty")
        finally:
            worker.terminate()
            assert worker.wait(timeout=30) == 0
        log = (tmp_path / "worker.log").read_text()
        assert "Traceback" not in log and "ERROR" not in log, log
        if "amqp" in queue_settings["QUEUE_URL"]:
            assert broker.messages_ready() == 0  # dropped, not given back
        created = [
            row[0] for row in query(server.database_url, "SELECT email FROM bulkops_demo_customer")
        ]
        assert not set(deleted_emails) & set(created)
        assert len(created) == 2


@pytest.fixture
def serving(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "server", DATABASE_URL=database_url)
    yield running
    running.stop()


def test_deletion_needs_the_routes_resources_and_finished_bulks_need_no_force(
    serving: RunningServer,
) -> None:
    with integration_client(serving, "reader", BULK_OPERATIONS) as reader:
        [(reader_id,)] = query(
            serving.database_url, "SELECT id FROM bulkops_integration WHERE name = 'reader'"
        )
        # A bulk of a route no longer served: deleting it needs every resource.
        gone = "e0000000-0000-4000-8000-000000000001"
        insert_bulks(
            serving.database_url,
            [
                NewBulk(
                    uuid=gone,
                    description=None,
                    user_id=reader_id,
                    user_type=int(UserType.INTEGRATION),
                    start_time=NOW,
                    operations=[
                        NewOperation(0, GONE_TOPIC, "{}", OperationStatus.NOT_RETRIABLY_FAILED)
                    ],
                )
            ],
        )
        response = reader.delete(f"/rest/V1/bulk/{gone}")
        assert response.status_code == 401
        assert response.json()["parameters"] == {"resources": ALL_RESOURCES}
        with serving.admin_client() as admin:
            assert admin.delete(f"/rest/V1/bulk/{gone}").json() is True

        bulk = submit(reader, emails())
        wait_for(
            lambda: reader.get(f"/rest/V1/bulk/{bulk}/operation-status/1").json() == 2,
            30,
            "the bulk processed",
        )
        assert reader.delete(f"/rest/default/V1/bulk/{bulk}").json() is True
        search = reader.get(
            "/rest/V1/bulk?searchCriteria[filter_groups][0][filters][0][field]=bulk_uuid"
            f"&searchCriteria[filter_groups][0][filters][0][value]={bulk}"
        )
        assert search.json()["total_count"] == 0
    with serving.client() as anonymous:
        assert anonymous.delete(f"/rest/V1/bulk/{bulk}").status_code == 401


def test_a_bulk_submitted_with_its_own_retention_keeps_it(serving: RunningServer) -> None:
    with serving.client() as client:
        bulk = submit(client, emails(), **{"X-Bulk-Retention-Days": "3"})
        [(start, expires)] = query(
            serving.database_url,
            f"SELECT start_time, expires_at FROM bulkops_bulk WHERE uuid = '{bulk}'",
        )
        # SQLite's driver reads the text the column holds.
        start, expires = (
            v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in (start, expires)
        )
        assert expires - start == timedelta(days=3)
        for value in ("0", "-2", "36501", "three", "1.5"):
            response = client.post(
                CUSTOMERS,
                json=[customer("x@example.com")],
                headers={"X-Bulk-Retention-Days": value},
            )
            assert response.status_code == 400, value
            assert "message" in response.json()


def _bulk(name: str, started: datetime, expires: datetime | None) -> NewBulk:
    return NewBulk(
        uuid=f"{name * 8}-0000-4000-8000-000000000000",
        description=name,
        user_id=None,
        user_type=int(UserType.GUEST),
        start_time=started,
        operations=[NewOperation(0, GONE_TOPIC, None, OperationStatus.COMPLETE)],
        expires_at=expires,
    )


async def _descriptions(database: Database) -> set[str]:
    async with database.read() as connection:
        rows = await connection.exec_driver_sql("SELECT description FROM bulkops_bulk")
        return {row[0] for row in rows}


async def test_cleanup_honours_each_bulks_own_retention(database: Database) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
    await insert_bulks_async(
        database,
        [
            _bulk("a", old, None),  # past the lifetime
            _bulk("b", old, NOW + timedelta(days=1)),  # kept longer by its own
            _bulk("c", recent, NOW - timedelta(hours=1)),  # its own shorter retention passed
            _bulk("d", recent, None),
            _bulk("e", recent, NOW + timedelta(days=1)),
        ],
    )
    # Without a lifetime, only bulks with their own retention expire.
    cleaned = await cleanup_bulks(database, expired_bulks(NOW, None))
    assert (cleaned.bulks, await _descriptions(database)) == (1, {"a", "b", "d", "e"})
    cleaned = await cleanup_bulks(database, expired_bulks(NOW, timedelta(days=30)))
    assert (cleaned.bulks, await _descriptions(database)) == (1, {"b", "d", "e"})
    cleaned = await cleanup_bulks(database, expired_bulks(NOW + timedelta(days=2), None))
    assert (cleaned.bulks, await _descriptions(database)) == (2, {"d"})
