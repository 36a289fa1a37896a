"""Payloads encrypted at rest (`BULKOPS_PAYLOAD_ENCRYPTION_KEYS`): stored as ciphertext, shown
and handled as in clear, readable when written before a key was set, and sealed again with a
new key by `bulkops payloads reseal`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bulkops.cli import app
from bulkops.sealing import Sealer, SealingKeyError, is_sealed
from bulkops.services.redaction import MASK
from tests.hashing import expected_hash, stored_keys
from tests.servers import start_server
from tests.storage import query
from tests.test_submission import wait_until_final

SETTING = "BULKOPS_PAYLOAD_ENCRYPTION_KEYS"
CUSTOMERS = "/rest/default/async/bulk/V1/customers"
PASSWORD = "Password1"


def customer(email: str) -> dict[str, object]:
    return {"customer": {"email": email, "firstname": "Ann"}, "password": PASSWORD}


def test_the_newest_key_seals_and_every_key_unseals() -> None:
    old, new = Sealer(["old"], SETTING), Sealer(["new", "old"], SETTING)
    sealed_before = old.seal("payload")
    assert is_sealed(sealed_before) and "payload" not in sealed_before
    assert new.unseal(sealed_before) == "payload"
    assert new.unseal("in clear") == "in clear"
    resealed = new.reseal(sealed_before)
    assert resealed != sealed_before and Sealer(["new"], SETTING).unseal(resealed) == "payload"
    # Sealed with the newest key already: nothing to write.
    assert new.reseal(resealed) == resealed
    with pytest.raises(SealingKeyError, match=SETTING):
        Sealer(["other"], SETTING).unseal(sealed_before)
    with pytest.raises(SealingKeyError, match=SETTING):
        Sealer([], SETTING).unseal(sealed_before)


def stored_payloads(database_url: str) -> list[tuple[str | None, str | None]]:
    return query(
        database_url,
        "SELECT serialized_data, result_serialized_data FROM bulkops_operation ORDER BY id",
    )


def submit(client: httpx.Client, admin: httpx.Client, items: list[object]) -> dict:
    response = client.post(CUSTOMERS, json=items)
    assert response.status_code == 202, response.text
    wait_until_final(admin, response.json()["bulk_uuid"])
    return response.json()


def search(admin: httpx.Client, field: str, condition: str, value: str = "") -> httpx.Response:
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return admin.get(
        "/rest/V1/bulk",
        params={
            f"{prefix}[field]": field,
            f"{prefix}[condition_type]": condition,
            f"{prefix}[value]": value,
        },
    )


def test_payloads_written_before_and_after_a_key_is_set_and_resealed(
    tmp_path: Path, database_url: str
) -> None:
    # In clear first: a customer created, then a duplicate that keeps its payload.
    server = start_server(tmp_path / "clear", DATABASE_URL=database_url)
    try:
        with server.client() as client, server.admin_client() as admin:
            submit(client, admin, [customer("one@example.com"), customer("one@example.com")])
    finally:
        server.stop()
    assert [is_sealed(data or result) for data, result in stored_payloads(database_url)] == [
        False,
        False,
    ]

    server = start_server(
        tmp_path / "sealed", DATABASE_URL=database_url, PAYLOAD_ENCRYPTION_KEYS='["first key"]'
    )
    try:
        with server.client() as client, server.admin_client() as admin:
            accepted = submit(
                client, admin, [customer("two@example.com"), customer("two@example.com")]
            )
            listed = admin.get("/rest/V1/bulk", params={"searchCriteria[pageSize]": "10"})
            refused = search(admin, "serialized_data", "like", f"%{PASSWORD}%")
            present = search(admin, "serialized_data", "notnull")
            failed = admin.get(f"/rest/V1/bulk/{accepted['bulk_uuid']}/failed")
    finally:
        server.stop()

    stored = stored_payloads(database_url)
    created, duplicate = stored[2], stored[3]
    # The handler got the real item: it created the customer, then refused the duplicate.
    assert created[0] is None and is_sealed(created[1])
    assert is_sealed(duplicate[0]) and duplicate[1] is None
    assert all(PASSWORD not in text for row in stored[2:] for text in row if text)
    # data_hash is Magento's, of the item's data, not of what is stored.
    key = stored_keys(database_url)[0]
    assert accepted["request_items"][0]["data_hash"] == expected_hash(
        customer("two@example.com"), key
    )
    # Rows in clear and rows sealed read the same.
    items = listed.json()["items"]
    assert [item["status"] for item in items] == [1, 3, 1, 3]
    for item in (items[1], items[3]):
        shown = json.loads(json.loads(item["serialized_data"])["meta_information"])
        assert shown["password"] == MASK and shown["customer"]["firstname"] == "Ann"
    assert json.loads(items[2]["result_serialized_data"])["email"] == "two@example.com"
    assert refused.status_code == 400
    assert refused.json() == {
        "message": '"%fieldName" cannot be used to filter or sort while %reason; only the '
        '"null" and "notnull" conditions apply to it.',
        "parameters": {
            "fieldName": "serialized_data",
            "reason": "payloads are encrypted and secrets in payloads are masked",
        },
    }
    assert present.status_code == 200 and present.json()["total_count"] == 2
    # The failed items' export reads sealed payloads as the search does, secrets masked.
    (line,) = failed.text.splitlines()
    assert json.loads(line)["payload"] == customer("two@example.com") | {"password": MASK}

    # A new key first, the old one kept to read: every payload sealed again with the new.
    runner = CliRunner()
    env = {"BULKOPS_DATABASE_URL": database_url, SETTING: '["second key", "first key"]'}
    result = runner.invoke(app, ["payloads", "reseal", "--batch-size", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == "resealed 4 payloads\n"
    newest_only = Sealer(["second key"], SETTING)
    for data, result_data in stored_payloads(database_url):
        text = data or result_data
        assert text is not None and is_sealed(text)
        json.loads(newest_only.unseal(text))
    again = runner.invoke(app, ["payloads", "reseal"], env=env)
    assert again.output == "resealed 0 payloads\n"
    unknown_key = {"BULKOPS_DATABASE_URL": database_url, SETTING: '["another key"]'}
    refused_cli = runner.invoke(app, ["payloads", "reseal"], env=unknown_key)
    assert refused_cli.exit_code == 1 and SETTING in refused_cli.output
    no_key = runner.invoke(app, ["payloads", "reseal"], env={"BULKOPS_DATABASE_URL": database_url})
    assert no_key.exit_code == 1 and SETTING in no_key.output
