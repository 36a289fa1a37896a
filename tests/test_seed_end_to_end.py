"""The seed page's example through HTTP only, on the embedded default: customers are created,
the seed's bulks submitted, and the seed's search returns the seed's response, ids included,
apart from uuids and times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulkops.services.redaction import MASK
from tests.seeds import ROUTE_STYLE, SERVICE_STYLE, ordered, seed_request, seed_response_text
from tests.servers import start_server
from tests.test_submission import wait_until_final

TOPIC_STYLES = {ROUTE_STYLE: "route", SERVICE_STYLE: "service"}
SEED_PASSWORD = "Password1"


def _submitted_items(page: Path) -> tuple[list[dict], list[dict]]:
    """The items the seed's failed operations carry, grouped by their bulk, in id order."""
    bulks: dict[str, list[dict]] = {}
    for item in json.loads(seed_response_text(page))["items"]:
        payload = json.loads(json.loads(item["serialized_data"])["meta_information"])
        bulks.setdefault(item["bulk_uuid"], []).append(payload)
    first, second = bulks.values()
    return first, second


def _with_email(item: dict, email: str) -> dict:
    return item | {"customer": item["customer"] | {"email": email}}


@pytest.mark.parametrize(
    ("page", "settings"),
    [
        (ROUTE_STYLE, {}),
        (SERVICE_STYLE, {}),
        # Stored encrypted: handlers get the real items, responses the same documents.
        (ROUTE_STYLE, {"PAYLOAD_ENCRYPTION_KEYS": '["new key", "old key"]'}),
    ],
    ids=["route-topics", "service-topics", "encrypted"],
)
def test_seed_replayed_through_the_api(
    page: Path, settings: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    first_bulk, second_bulk = _submitted_items(page)
    server = start_server(
        tmp_path, DATABASE_URL=database_url, TOPIC_STYLE=TOPIC_STYLES[page], **settings
    )
    try:
        with server.client() as client, server.admin_client() as admin:

            def submit(path: str, body: object) -> str:
                response = client.post(path, json=body)
                assert response.status_code == 202, response.text
                bulk_uuid = response.json()["bulk_uuid"]
                wait_until_final(admin, bulk_uuid)
                return bulk_uuid

            # Operations 1-3: the customers that exist already, one async request each.
            for email in dict.fromkeys(item["customer"]["email"] for item in first_bulk):
                existing = next(i for i in first_bulk if i["customer"]["email"] == email)
                submit("/rest/default/async/V1/customers", existing)
            # Operations 4-7: every one a duplicate.
            uuids = [submit("/rest/default/async/bulk/V1/customers", first_bulk)]
            # Operations 8-10: two new customers, then a duplicate.
            new = [_with_email(second_bulk[0], f"new{n}@example.com") for n in range(2)]
            uuids.append(submit("/rest/default/async/bulk/V1/customers", [*new, *second_bulk]))

            response = admin.get(f"/rest/default{seed_request(page)}")
        assert response.status_code == 200, response.text
        actual = response.json()
    finally:
        server.stop()

    expected = json.loads(seed_response_text(page))
    seed_uuids = list(dict.fromkeys(item["bulk_uuid"] for item in expected["items"]))
    # The seed's password is masked, as every secret in a payload is by default.
    text = seed_response_text(page).replace(SEED_PASSWORD, MASK)
    for seed_uuid, uuid in zip(seed_uuids, uuids, strict=True):
        text = text.replace(seed_uuid, uuid)
    for seed_item, item in zip(expected["items"], actual["items"], strict=True):
        seed_time = seed_item["extension_attributes"]["start_time"]
        text = text.replace(seed_time, item["extension_attributes"]["start_time"], 1)
    assert ordered(response.content) == ordered(text)
    assert [item["id"] for item in actual["items"]] == [4, 5, 6, 7, 10]
