"""Completion webhooks: a bulk submitted with `X-Bulk-Callback-Url` announces each completion
with a `bulk.completed` event signed as Standard Webhooks do, delivered at least once, retried
until its receiver takes it, and listed by `GET /V1/bulk/:uuid/webhooks` to its owner only;
callback URLs are checked when given, the address they resolve to when delivered."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.auth.context import BULK_OPERATIONS
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import (
    Result,
    mark_incomplete_operations,
    record_results,
    retry_operations,
    start_operations,
)
from bulkops.store.tables import operation
from bulkops.store.webhooks import RetryPolicy, bulk_deliveries
from bulkops.worker.webhooks import WebhookSender
from tests.customers import CUSTOMERS, customer
from tests.integrations import bulkops_cli, integration_client
from tests.servers import RunningServer, free_port, start_server
from tests.storage import query
from tests.waiting import wait_for
from tests.webhook_receiver import Received, receiving

CALLBACK = "X-Bulk-Callback-Url"
KEY = b"a webhook key of the installation"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = datetime(2030, 6, 1, 12)
HOUR = timedelta(hours=1)
LOCAL = ["127.0.0.1"]
WEBHOOKS = {
    "WEBHOOK_SECRET": SECRET,
    "WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    "WEBHOOK_BACKOFF_SECONDS": "0",
    "WEBHOOK_POLL_SECONDS": "0.2",
}


def verified(request: Received) -> dict[str, Any]:
    """The event, once its signature checks out as a Standard Webhooks receiver checks it."""
    headers = request.headers
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert headers["content-type"] == "application/json"
    event: dict[str, Any] = json.loads(request.body)
    return event


@pytest.fixture
def webhook_server(
    database_url: str, tmp_path: Path, queue_settings: dict[str, str]
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "server", DATABASE_URL=database_url, **WEBHOOKS, **queue_settings
    )
    yield running
    running.stop()


def test_completions_are_signed_retried_logged_and_sent_again_after_a_retry(
    webhook_server: RunningServer,
) -> None:
    server = webhook_server
    with (
        receiving([500, 200]) as receiver,
        integration_client(server, "owner", BULK_OPERATIONS) as owner,
        integration_client(server, "other", BULK_OPERATIONS) as other,
    ):
        email = f"{uuid.uuid4().hex}@example.com"
        items = [customer(email), customer(email)]  # the second one fails: a duplicate

        for refused in ("http://hooks.example.com/x", "ftp://127.0.0.1/x", "http://[::1/x"):
            response = owner.post(CUSTOMERS, json=items, headers={CALLBACK: refused})
            assert response.status_code == 400, response.text
            assert response.json()["parameters"]["header"] == CALLBACK
        assert query(server.database_url, "SELECT COUNT(*) FROM bulkops_bulk") == [(0,)]

        url = receiver.url("/hooks?source=bulkops")
        response = owner.post(CUSTOMERS, json=items, headers={CALLBACK: url})
        assert response.status_code == 202, response.text
        bulk = response.json()["bulk_uuid"]
        log = f"/rest/V1/bulk/{bulk}/webhooks"

        def states() -> list[str]:
            return [delivery["state"] for delivery in owner.get(log).json()]

        wait_for(lambda: states() == ["delivered"], 60, "the completion delivered")
        failing, taken = receiver.received
        assert taken.path == "/hooks?source=bulkops"
        assert taken.headers["host"] == f"127.0.0.1:{receiver.port}"
        # Attempts of one event: the same id and body, each signed with its own timestamp.
        assert failing.headers["webhook-id"] == taken.headers["webhook-id"]
        assert verified(failing) == verified(taken)
        event = verified(taken)
        assert event["type"] == "bulk.completed"
        assert event["data"] | {"finished_at": None} == {
            "bulk_uuid": bulk,
            "status": 3,
            "operation_count": 2,
            "operations_by_status": {"1": 1, "2": 0, "3": 1, "4": 0, "5": 0},
            "finished_at": None,
        }
        [delivery] = owner.get(log).json()
        assert delivery["id"] == taken.headers["webhook-id"]
        assert (delivery["attempts"], delivery["last_status_code"]) == (2, 200)
        assert delivery["url"] == url and delivery["delivered_at"] is not None
        assert delivery["next_attempt_at"] is None and delivery["last_error"] is None

        # Another integration's bulk is missing, as when its status is read.
        response = other.get(log)
        assert response.status_code == 404
        assert response.json() == {
            "message": "Bulk uuid %bulkUuid not exist",
            "parameters": {"bulkUuid": bulk},
        }

        # Retried, the bulk completes again (the duplicate fails again): a new event.
        response = owner.post(f"/rest/V1/bulk/{bulk}/retry", json={})
        assert (response.status_code, response.json()) == (200, 1)
        wait_for(lambda: states() == ["delivered", "delivered"], 60, "the second completion")
        again = receiver.received[-1]
        assert len(receiver.received) == 3
        assert again.headers["webhook-id"] != taken.headers["webhook-id"]
        assert verified(again)["data"]["operations_by_status"]["3"] == 1

        # The integration's own URL, for its bulks submitted without one.
        def set_webhook(*url: str) -> subprocess.CompletedProcess[str]:
            return bulkops_cli(
                server.database_url, "integration", "webhook", "owner", *url, settings=WEBHOOKS
            )

        refused = set_webhook("http://hooks.example.com/x")
        assert refused.returncode == 1 and "allowed webhook hosts" in refused.stderr
        assert set_webhook(receiver.url("/own")).returncode == 0
        response = owner.post(CUSTOMERS, json=[customer(f"{uuid.uuid4().hex}@example.com")])
        own = response.json()["bulk_uuid"]
        wait_for(lambda: receiver.count() == 4, 60, "the integration's webhook")
        assert receiver.received[-1].path == "/own"
        assert verified(receiver.received[-1])["data"]["status"] == 2
        assert set_webhook().returncode == 0
        assert owner.get(f"/rest/V1/bulk/{own}/webhooks").json()[0]["url"] == receiver.url("/own")
    assert "Traceback" not in server.log()


def policy(max_attempts: int) -> RetryPolicy:
    return RetryPolicy(
        base=timedelta(0),
        cap=timedelta(hours=1),
        max_attempts=max_attempts,
        max_age=timedelta(days=1),
    )


async def finished_bulk(database: Database, url: str) -> str:
    """A bulk with a callback URL whose only operation fails (it may be retried)."""
    bulk_uuid = str(uuid.uuid4())
    new_bulk = NewBulk(
        bulk_uuid,
        "webhooks",
        1,
        1,
        NOW,
        [NewOperation(0, "async.V1.things.POST", "{}")],
        callback_url=url,
    )
    async with database.write() as connection:
        await insert_bulk(connection, new_bulk)
        operation_id = await only_operation(connection, bulk_uuid)
        failed = Result(operation_id, OperationStatus.RETRIABLY_FAILED, "failed")
        await record_results(connection, [failed], NOW)
    return bulk_uuid


async def only_operation(connection: AsyncConnection, bulk_uuid: str) -> int:
    found = await connection.execute(
        select(operation.c.id).where(operation.c.bulk_uuid == bulk_uuid)
    )
    return int(found.scalar_one())


async def deliveries(database: Database, bulk_uuid: str) -> list[dict[str, Any]]:
    async with database.read() as connection:
        return await bulk_deliveries(connection, bulk_uuid)


async def test_private_addresses_are_refused_unless_allowed(database: Database) -> None:
    with receiving([200]) as receiver:
        bulk_uuid = await finished_bulk(database, receiver.url())
        sender = WebhookSender(database, KEY, policy(2), 5.0, 0.1, LOCAL, False, clock=lambda: NOW)
        assert await sender.send_due() == 1
        [pending] = await deliveries(database, bulk_uuid)
        assert (pending["state"], pending["attempts"]) == ("pending", 1)
        assert "127.0.0.1, a non-public address" in pending["last_error"]
        assert await sender.send_due() == 1
        [failed] = await deliveries(database, bulk_uuid)
        assert (failed["state"], failed["attempts"], failed["next_attempt_at"]) == (
            "failed",
            2,
            None,
        )
        assert await sender.send_due() == 0  # failed for good: visible, never sent

        # The hosts allowed are those of the sending worker's settings, whatever they were.
        narrowed = ["hooks.example.com"]
        elsewhere = WebhookSender(database, KEY, policy(1), 5.0, 0.1, narrowed, True, lambda: NOW)
        other_bulk = await finished_bulk(database, receiver.url())
        assert await elsewhere.send_due() == 1
        [refused] = await deliveries(database, other_bulk)
        assert refused["state"] == "failed"
        assert "127.0.0.1 is not one of the allowed webhook hosts" in refused["last_error"]
        assert receiver.count() == 0


async def test_a_receiver_down_gets_the_event_once_it_is_up(database: Database) -> None:
    port = free_port()
    bulk_uuid = await finished_bulk(database, f"http://127.0.0.1:{port}/hooks")
    sender = WebhookSender(database, KEY, policy(10), 5.0, 0.1, LOCAL, True, clock=lambda: NOW)
    assert await sender.send_due() == 1
    [down] = await deliveries(database, bulk_uuid)
    assert (down["state"], down["attempts"], down["last_status_code"]) == ("pending", 1, None)
    assert down["last_error"].startswith("ConnectError")

    with receiving([200], port) as receiver:
        assert await sender.send_due() == 1
    [delivered] = await deliveries(database, bulk_uuid)
    assert (delivered["state"], delivered["attempts"]) == ("delivered", 2)
    assert verified(receiver.received[0])["data"]["bulk_uuid"] == bulk_uuid

    # Retried and completed again: a second event, with an id of its own.
    async with database.write() as connection:
        assert await retry_operations(connection, bulk_uuid, NOW) == 1
    async with database.write() as connection:
        operation_id = await only_operation(connection, bulk_uuid)
        await record_results(
            connection, [Result(operation_id, OperationStatus.COMPLETE, "done")], NOW
        )
    first, second = await deliveries(database, bulk_uuid)
    assert first["state"] == "delivered" and second["state"] == "pending"
    assert first["id"] != second["id"]


async def test_a_bulk_finished_by_concurrent_writers_completes_once(database: Database) -> None:
    """Each operation's result in a transaction of its own, all at once: whichever commits
    last finds its bulk complete, and only it."""
    uuids = [str(uuid.uuid4()) for _ in range(8)]
    async with database.write() as connection:
        for bulk_uuid in uuids:
            operations = [NewOperation(key, "async.V1.things.POST", "{}") for key in range(3)]
            await insert_bulk(
                connection,
                NewBulk(bulk_uuid, None, 1, 1, NOW, operations, callback_url="http://h/x"),
            )
        found = await connection.execute(
            select(operation.c.id).where(operation.c.bulk_uuid.in_(uuids))
        )
        ids = list(found.scalars())

    async def record(operation_id: int) -> None:
        async with database.write() as connection:
            result = Result(operation_id, OperationStatus.COMPLETE, "done")
            await record_results(connection, [result], NOW)

    await asyncio.gather(*(record(operation_id) for operation_id in ids))
    for bulk_uuid in uuids:
        [event] = await deliveries(database, bulk_uuid)
        assert event["state"] == "pending"


async def test_a_bulk_whose_operation_is_marked_failed_completes(database: Database) -> None:
    """Marked failed when open too long, the last open operation completes its bulk too."""
    bulk_uuid = str(uuid.uuid4())
    new_bulk = NewBulk(
        bulk_uuid, None, 1, 1, NOW, [NewOperation(0, "t", "{}")], callback_url="http://h/x"
    )
    async with database.write() as connection:
        await insert_bulk(connection, new_bulk)
        await start_operations(connection, [await only_operation(connection, bulk_uuid)], NOW)
    assert await deliveries(database, bulk_uuid) == []
    assert await mark_incomplete_operations(database, NOW + timedelta(hours=2), HOUR) == 1
    [event] = await deliveries(database, bulk_uuid)
    assert event["state"] == "pending"
