"""A bulk's failed items out (`GET /V1/bulk/:uuid/failed`, JSON lines or CSV) and corrected
items back in (`POST /V1/bulk/:uuid/resubmit`), through HTTP on every backend and, for the
resubmission, both transports: the failed operations only, their secrets masked as searches
mask them, the new bulk processed, and the old operations saying where their items went."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bulkops.auth.context import BULK_OPERATIONS
from bulkops.handlers.customers import DUPLICATE_EMAIL
from bulkops.services.redaction import MASK
from bulkops.services.submission import serialized_data
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.integrations import integration_client
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks
from tests.waiting import wait_for

CUSTOMERS = "/rest/default/async/bulk/V1/customers"
GONE_TOPIC = "async.vendor.gone.api.goneinterface.apply.post"
GONE_BULK = "f0000000-0000-4000-8000-000000000001"
COMPLETE, FAILED = OperationStatus.COMPLETE, OperationStatus.NOT_RETRIABLY_FAILED


def email() -> str:
    return f"{uuid.uuid4().hex}@example.com"


def customer(address: str) -> dict[str, Any]:
    return {"customer": {"email": address, "firstname": "Ann"}, "password": "Password1"}


@pytest.fixture
def running(
    database_url: str, tmp_path: Path, queue_settings: dict[str, str]
) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "server", DATABASE_URL=database_url, **queue_settings)
    yield server
    server.stop()


def accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    return str(response.json()["bulk_uuid"])


def statuses(client: httpx.Client, bulk: str) -> list[int]:
    response = client.get(f"/rest/V1/bulk/{bulk}/detailed-status")
    assert response.status_code == 200, response.text
    return [op["status"] for op in response.json()["operations_list"]]


def finished(client: httpx.Client, bulk: str) -> list[int]:
    """The bulk's statuses once none is open."""
    wait_for(lambda: OperationStatus.OPEN not in statuses(client, bulk), 60, f"bulk {bulk} done")
    return statuses(client, bulk)


def failed_lines(client: httpx.Client, bulk: str) -> list[dict[str, Any]]:
    response = client.get(f"/rest/V1/bulk/{bulk}/failed", params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [orjson.loads(line) for line in response.text.splitlines()]


def test_failed_items_out_and_corrected_items_back_in(running: RunningServer) -> None:
    with (
        integration_client(running, "owner", BULK_OPERATIONS) as owner,
        integration_client(running, "other", BULK_OPERATIONS) as other,
    ):
        taken = email()
        assert finished(owner, accepted(owner.post(CUSTOMERS, json=[customer(taken)]))) == [
            COMPLETE
        ]
        # A duplicate (fails, 3), a new customer (completes), an invalid email (rejected, 5).
        items = [customer(taken), customer(email()), customer("bad")]
        bulk = accepted(owner.post(CUSTOMERS, json=items))
        assert finished(owner, bulk)[:2] == [FAILED, COMPLETE]

        lines = failed_lines(owner, bulk)
        first = lines[0]
        assert len(lines) == 1 and first["operation_key"] == 0 and first["status"] == FAILED
        assert first["result_message"] == DUPLICATE_EMAIL
        # The item as submitted, its secret masked as a search masks it.
        assert first["payload"] == {"customer": items[0]["customer"], "password": MASK}
        assert first["resubmitted_to"] is None

        response = owner.get(f"/rest/V1/bulk/{bulk}/failed", params={"format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = f'attachment; filename="{bulk}-failed.csv"'
        assert response.headers["content-disposition"] == disposition
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][:7] == [
            "id",
            "operation_key",
            "topic_name",
            "status",
            "error_code",
            "result_message",
            "payload",
        ]
        assert [row[1:4] for row in rows[1:]] == [["0", first["topic_name"], "3"]]
        assert orjson.loads(rows[1][6]) == first["payload"]

        response = owner.get(f"/rest/V1/bulk/{bulk}/failed", params={"format": "xlsx"})
        assert response.status_code == 400
        assert response.json()["parameters"] == {"format": "xlsx", "supported": "jsonl, csv"}
        # Another's bulk is missing, out and in.
        resubmit = f"/rest/V1/bulk/{bulk}/resubmit"
        assert other.get(f"/rest/V1/bulk/{bulk}/failed").status_code == 404
        fixed = {"operation_key": 0, "item": customer(email())}
        assert other.post(resubmit, json=[fixed]).status_code == 404

        # Only failed operations: the completed one and the rejected one are refused.
        for key in (1, 2):
            response = owner.post(resubmit, json=[fixed, {"operation_key": key, "item": {}}])
            assert response.status_code == 400
            assert response.json()["parameters"] == {"operationKeys": str(key)}
        response = owner.post(resubmit, json=[{"operation_key": 9, "item": {}}])
        assert response.status_code == 400
        assert response.json()["parameters"] == {"bulkUuid": bulk, "operationKeys": "9"}
        for body in ([], [{"operation_key": "0", "item": {}}], [fixed, fixed], [{"item": {}}]):
            assert owner.post(resubmit, json=body).status_code == 400, body

        # A correction still invalid is rejected in the new bulk, as in a submission; the
        # operation stays failed and unlinked, to be corrected again.
        response = owner.post(resubmit, json=[{"operation_key": 0, "item": customer("bad")}])
        assert response.status_code == 202 and response.json()["errors"] is True
        assert failed_lines(owner, bulk)[0]["resubmitted_to"] is None

        key = {"Idempotency-Key": uuid.uuid4().hex}
        response = owner.post(resubmit, json=[fixed], headers=key)
        new_bulk = accepted(response)
        assert response.json()["request_items"] == [
            {
                "id": 0,
                "data_hash": response.json()["request_items"][0]["data_hash"],
                "status": "accepted",
            }
        ]
        repeat = owner.post(resubmit, json=[fixed], headers=key)
        assert repeat.status_code == 202 and repeat.json() == response.json()
        assert repeat.headers["idempotent-replayed"] == "true"
        assert finished(owner, new_bulk) == [COMPLETE]

        assert failed_lines(owner, bulk)[0]["resubmitted_to"] == {
            "bulk_uuid": new_bulk,
            "operation_key": 0,
        }
        # Once resubmitted, neither resubmitted nor retried again.
        response = owner.post(resubmit, json=[fixed])
        assert (response.status_code, response.json()["parameters"]) == (
            400,
            {"operationKeys": "0"},
        )
        assert owner.post(f"/rest/V1/bulk/{bulk}/retry").json() == 0
        response = owner.get(
            "/rest/V1/bulk/",
            params={
                "searchCriteria[filterGroups][0][filters][0][field]": "bulk_uuid",
                "searchCriteria[filterGroups][0][filters][0][value]": new_bulk,
            },
        )
        assert response.json()["total_count"] == 1


def test_operations_no_route_serves_are_not_resubmitted(server: RunningServer) -> None:
    insert_bulks(
        server.database_url,
        [
            NewBulk(
                uuid=GONE_BULK,
                description=None,
                user_id=99,
                user_type=int(UserType.INTEGRATION),
                start_time=datetime(2030, 1, 1),
                operations=[
                    NewOperation(0, GONE_TOPIC, serialized_data({"a": 1}), FAILED, "failed", 0)
                ],
            )
        ],
    )
    path = f"/rest/V1/bulk/{GONE_BULK}/resubmit"
    body = [{"operation_key": 0, "item": {"a": 2}}]
    with server.admin_client() as admin:
        response = admin.post(path, json=body)
        assert response.status_code == 400
        assert response.json()["parameters"] == {"operationKey": 0, "topic": GONE_TOPIC}
        lines = admin.get(f"/rest/V1/bulk/{GONE_BULK}/failed").text.splitlines()
        assert [orjson.loads(line)["payload"] for line in lines] == [{"a": 1}]
