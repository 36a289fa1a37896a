"""Asynchronous and bulk submission over HTTP: 202 bodies, rejected items, limits, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.hashing import expected_hash as hmac_of
from tests.hashing import stored_keys
from tests.servers import RunningServer, start_server

CUSTOMERS = "/rest/default/async/bulk/V1/customers"


def customer(email: str) -> dict[str, object]:
    return {
        "customer": {"email": email, "firstname": "Test", "lastname": "Person"},
        "password": "Password1",
    }


def expected_hash(server: RunningServer, item: object) -> str:
    (key,) = stored_keys(server.database_url)
    return hmac_of(item, key)


def wait_until_final(client: httpx.Client, bulk_uuid: str, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        operations = client.get(f"/rest/V1/bulk/{bulk_uuid}/detailed-status").json()[
            "operations_list"
        ]
        if all(operation["status"] != 4 for operation in operations):
            return operations
        assert time.monotonic() < deadline, operations
        time.sleep(0.1)


def test_bulk_answers_202_with_magento_item_statuses(server: RunningServer) -> None:
    items = [
        customer("one@example.com"),
        {"customer": "not an object"},
        customer("two@example.com"),
    ]
    with server.client() as client:
        response = client.post(CUSTOMERS, json=items)
    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["bulk_uuid", "request_items", "errors"]
    assert body["errors"] is True
    accepted, rejected, second = body["request_items"]
    assert accepted == {"id": 0, "data_hash": expected_hash(server, items[0]), "status": "accepted"}
    assert second == {"id": 2, "data_hash": expected_hash(server, items[2]), "status": "accepted"}
    assert list(rejected) == ["id", "data_hash", "status", "error_message", "error_code"]
    assert rejected["id"] == 1 and rejected["data_hash"] is None
    assert rejected["status"] == "rejected" and rejected["error_code"] == 0

    # The rejected item is an operation too, with status 5 and its reason.
    with server.admin_client() as admin:
        operations = wait_until_final(admin, body["bulk_uuid"])
        assert [operation["status"] for operation in operations] == [1, 5, 1]
        assert operations[1]["result_message"] == rejected["error_message"]
        found = admin.get(
            "/rest/V1/bulk?searchCriteria[filter_groups][0][filters][0][field]=status"
            "&searchCriteria[filter_groups][0][filters][0][value]=5"
            f"&searchCriteria[filter_groups][1][filters][0][field]=bulk_uuid"
            f"&searchCriteria[filter_groups][1][filters][0][value]={body['bulk_uuid']}"
        ).json()
    assert found["total_count"] == 1
    assert (
        json.loads(json.loads(found["items"][0]["serialized_data"])["meta_information"]) == items[1]
    )


def test_single_item_is_a_bulk_of_one(server: RunningServer) -> None:
    with server.client() as client:
        response = client.post("/rest/V1/async/V1/customers", json=customer("single@example.com"))
    # `/rest/V1/async/...` is not a route: the store code segment may be omitted, not replaced.
    assert response.status_code == 404
    with server.client() as client:
        response = client.post("/rest/async/V1/customers", json=customer("single@example.com"))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["errors"] is False
    data_hash = expected_hash(server, customer("single@example.com"))
    assert body["request_items"] == [{"id": 0, "data_hash": data_hash, "status": "accepted"}]
    with server.admin_client() as admin:
        status = admin.get(f"/rest/V1/bulk/{body['bulk_uuid']}/status").json()
    assert status["user_type"] == 4 and status["user_id"] is None
    assert status["description"] == (
        "Topic async.magento.customer.api.accountmanagementinterface.createaccount.post"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "GET",
            "/rest/default/async/V1/customers",
            None,
            400,
            "Specified request cannot be processed.",
        ),
        ("POST", "/rest/default/async/V1/nothing", [], 404, "Request does not match any route."),
        (
            "PUT",
            "/rest/default/async/bulk/V1/customers",
            [],
            404,
            "Request does not match any route.",
        ),
        ("POST", CUSTOMERS, {"not": "a list"}, 400, "A bulk request's body must be a JSON array"),
    ],
)
def test_submission_errors(
    server: RunningServer, method: str, path: str, body: object, status: int, message: str
) -> None:
    with server.client() as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["message"].startswith(message)


def test_undecodable_body_is_a_400(server: RunningServer) -> None:
    with server.client() as client:
        response = client.post(
            CUSTOMERS, content=b"[{", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json() == {"message": "Decoding error."}


def test_request_limits(tmp_path: Path, database_url: str) -> None:
    server = start_server(
        tmp_path, DATABASE_URL=database_url, MAX_REQUEST_ITEMS="3", MAX_REQUEST_BYTES="2000"
    )
    try:
        with server.client() as client:
            too_many = client.post(CUSTOMERS, json=[customer(f"{n}@example.com") for n in range(4)])
            assert too_many.status_code == 400
            assert too_many.json()["parameters"] == {"count": 4, "max": 3}
            too_big = client.post(CUSTOMERS, json=[{"x": "y" * 3000}])
            assert too_big.status_code == 413
            assert too_big.json()["parameters"] == {"max": 2000}
            fine = client.post(CUSTOMERS, json=[customer(f"{n}@example.com") for n in range(3)])
            assert fine.status_code == 202
    finally:
        server.stop()


def test_five_thousand_items_are_accepted_and_all_stored(server: RunningServer) -> None:
    items = [{"customer": {"email": f"bulk{n}@example.com"}} for n in range(5000)]
    # Bodies this large need a token: callers without one have a small limit.
    with server.admin_client() as client:
        response = client.post(CUSTOMERS, json=items)
    assert response.status_code == 202
    body = response.json()
    assert [item["id"] for item in body["request_items"]] == list(range(5000))
    with server.admin_client() as admin:
        status = admin.get(f"/rest/V1/bulk/{body['bulk_uuid']}/status").json()
    assert status["operation_count"] == 5000
    assert sorted(operation["id"] for operation in status["operations_list"]) == sorted(
        {operation["id"] for operation in status["operations_list"]}
    )
    assert len(status["operations_list"]) == 5000


def test_handler_runs_in_the_store_of_the_request(tmp_path: Path, database_url: str) -> None:
    """The same email in two websites makes two customers: the worker sees each request's
    store, not the default one."""
    websites = [{"id": 1, "code": "base", "name": "Main"}, {"id": 2, "code": "eu", "name": "EU"}]
    views = [
        {"id": 1, "code": "default", "name": "Default Store View", "website_id": 1},
        {"id": 2, "code": "eu_en", "name": "EU English", "website_id": 2},
    ]
    running = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        WEBSITES=json.dumps(websites),
        STORE_VIEWS=json.dumps(views),
    )
    try:
        with running.admin_client() as client:
            created_in = []
            for store in ("default", "eu_en"):
                path = f"/rest/{store}/async/bulk/V1/customers"
                bulk_uuid = client.post(path, json=[customer("same@example.com")]).json()[
                    "bulk_uuid"
                ]
                (done,) = wait_until_final(client, bulk_uuid)
                assert done["status"] == 1, done
                created_in.append(json.loads(done["result_serialized_data"])["created_in"])
        assert created_in == ["Default Store View", "EU English"]
    finally:
        running.stop()
