"""Secrets in payloads (`BULKOPS_REDACT_KEYS`) are masked in every response that shows a
payload, while handlers get the real values and searches cannot probe the masked ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bulkops.auth.context import BULK_OPERATIONS
from bulkops.services.redaction import MASK, Redactor
from bulkops.services.submission import serialized_data
from bulkops.settings import DEFAULT_REDACT_KEYS, Settings
from tests.backends import Backend
from tests.integrations import create_integration
from tests.seeds import ROUTE_STYLE, seed_response_text
from tests.servers import RunningServer, start_server
from tests.test_submission import wait_until_final

ECHO_MODULES = '["tests.handler_fixtures.echo"]'
SECRETS = ("P4ss-first", "K3y-second", "N3w-third", "T0k-fourth")
ECHOED = {
    "name": "a",
    "customer": {"email": "a@example.com", "password": SECRETS[0]},
    "credentials": [{"API_KEY": SECRETS[1]}, {"note": "kept"}],
}
FAILED = {"name": "b", "fail": True, "newPassword": SECRETS[2], "resetToken": SECRETS[3]}


def test_masks_secret_keys_at_any_depth_keeping_magentos_bytes() -> None:
    redactor = Redactor(DEFAULT_REDACT_KEYS)
    stored = serialized_data(ECHOED | {"price": 1.5e20, "path": "a/b", "name": "é"})
    masked = redactor.document(stored)
    expected = ECHOED | {
        "customer": {"email": "a@example.com", "password": MASK},
        "credentials": [{"API_KEY": MASK}, {"note": "kept"}],
        "price": 1.5e20,
        "path": "a/b",
        "name": "é",
    }
    assert masked == serialized_data(expected)
    assert redactor.document(serialized_data(FAILED)) == serialized_data(
        FAILED | {"newPassword": MASK, "resetToken": MASK}
    )
    # Objects and lists under a secret key are masked whole; a document without any of the
    # words is returned as it is, unread.
    assert redactor.document('{"tokens":[1,{"a":2}],"x":{"Secret":{"b":3}}}') == (
        '{"tokens":"****","x":{"Secret":"****"}}'
    )
    unread = '{"sku":"a"}'
    assert redactor.document(unread) is unread
    assert redactor.document("not json, password") == MASK
    assert redactor.document(None) is None
    assert Redactor([]).document(stored) is stored


def test_the_seeds_payload_differs_only_by_its_masked_password() -> None:
    seed = json.loads(seed_response_text(ROUTE_STYLE))["items"][0]["serialized_data"]
    shown = Redactor(DEFAULT_REDACT_KEYS).document(seed)
    assert shown == seed.replace("Password1", MASK)


def test_key_words_are_plain_text_compared_without_case() -> None:
    assert Settings(redact_keys=["PIN", "x-api"]).redact_keys == ["pin", "x-api"]
    for word in ['a"b', "a/b", "a\\b", "", "é"]:
        with pytest.raises(ValueError, match="printable ASCII"):
            Settings(redact_keys=[word])


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the default words, an echoing handler, and operations whose payloads
    and results hold secrets: one completed (its result echoes them), one failed."""
    workdir = tmp_path_factory.mktemp("redaction")
    url = backend.create_database(workdir)
    running = start_server(workdir / "server", DATABASE_URL=url, HANDLER_MODULES=ECHO_MODULES)
    with running.admin_client() as admin:
        response = admin.post("/rest/default/async/bulk/V1/echo/byName", json=[ECHOED, FAILED])
        assert response.status_code == 202, response.text
        assert not any(secret in response.text for secret in SECRETS)
        wait_until_final(admin, response.json()["bulk_uuid"])
    yield running
    running.stop()
    backend.drop_database(url)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.admin_client() as client:
        yield client


def operations_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["items"] if "items" in body else body["operations_list"]


def searches() -> list[str]:
    return [
        "/rest/V1/bulk?searchCriteria[pageSize]=5",
        "/rest/V1/bulk?searchCriteria",
        "/rest/V1/bulk?searchCriteria&fields=items[serialized_data,result_serialized_data]",
        "/rest/V1/bulk?searchCriteria[pageSize]=5&fields=items[result_serialized_data]",
    ]


@pytest.mark.parametrize("accept", ["application/json", "application/xml"])
def test_no_response_shows_a_secret(admin: httpx.Client, accept: str) -> None:
    bulk_uuid = admin.get("/rest/V1/bulk?searchCriteria").json()["items"][0]["bulk_uuid"]
    paths = [*searches(), f"/rest/V1/bulk/{bulk_uuid}/detailed-status"]
    for path in paths:
        response = admin.get(path, headers={"Accept": accept})
        assert response.status_code == 200, (path, response.text)
        assert MASK in response.text, path
        assert not any(secret in response.text for secret in SECRETS), path


def test_payloads_are_shown_masked_and_handlers_got_the_real_values(admin: httpx.Client) -> None:
    done, failed = operations_of(admin.get("/rest/V1/bulk?searchCriteria").json())
    echoed = json.loads(done["result_serialized_data"])["echo"]
    # The handler echoed the real values (the shown result masks them, keys and shape kept).
    assert echoed == ECHOED | {
        "customer": {"email": "a@example.com", "password": MASK},
        "credentials": [{"API_KEY": MASK}, {"note": "kept"}],
    }
    assert failed["serialized_data"] == serialized_data(
        FAILED | {"newPassword": MASK, "resetToken": MASK}
    )


FILTER = "searchCriteria[filter_groups][0][filters][0]"


def payload_filter(field: str, condition: str, value: str = "") -> dict[str, str]:
    return {
        f"{FILTER}[field]": field,
        f"{FILTER}[condition_type]": condition,
        f"{FILTER}[value]": value,
    }


@pytest.mark.parametrize(
    "params",
    [
        payload_filter("serialized_data", "like", f"%{SECRETS[2][:3]}%"),
        payload_filter("result_serialized_data", "regexp", "^.*P4"),
        payload_filter("serialized_data", "eq", serialized_data(FAILED)),
        # An order tells a masked value against a chosen one, bit by bit.
        {"searchCriteria[sortOrders][0][field]": "serialized_data"},
    ],
    ids=["like", "regexp", "eq", "sort"],
)
def test_payload_content_cannot_be_searched(admin: httpx.Client, params: dict) -> None:
    response = admin.get("/rest/V1/bulk", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["parameters"]["reason"] == "secrets in payloads are masked"


def test_an_integration_limited_to_its_bulks_searches_its_own_payloads(
    server: RunningServer, admin: httpx.Client
) -> None:
    # It sent those values itself, and sees nobody else's: the admin's bulk stays unseen.
    credentials = create_integration(
        server.database_url,
        "own",
        "Vendor_Echo::echo",
        BULK_OPERATIONS,
        settings={"HANDLER_MODULES": ECHO_MODULES},
    )
    headers = {"Authorization": f"Bearer {credentials.access_token}"}
    # A failed operation keeps its payload (a completed one's is cleared).
    mine = {"name": "mine", "fail": True, "password": "Own-secret"}
    with httpx.Client(base_url=server.base_url, headers=headers) as own:
        submitted = own.post("/rest/default/async/bulk/V1/echo/byName", json=[mine])
        assert submitted.status_code == 202, submitted.text
        wait_until_final(admin, submitted.json()["bulk_uuid"])
        for secret in ("Own-secret", SECRETS[0]):
            found = own.get(
                "/rest/V1/bulk", params=payload_filter("serialized_data", "like", f"%{secret}%")
            )
            assert found.status_code == 200, found.text
            assert found.json()["total_count"] == (1 if secret == "Own-secret" else 0)
    # The admin reads every bulk: for it the same search would probe others' secrets.
    refused = admin.get(
        "/rest/V1/bulk", params=payload_filter("serialized_data", "like", "%Own-secret%")
    )
    assert refused.status_code == 400, refused.text


def test_whether_a_payload_is_kept_can_be_searched(admin: httpx.Client) -> None:
    response = admin.get("/rest/V1/bulk", params=payload_filter("serialized_data", "notnull"))
    assert response.status_code == 200, response.text
    assert {item["status"] for item in response.json()["items"]} == {3}
