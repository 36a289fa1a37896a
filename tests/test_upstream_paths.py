"""Path parameters reach an upstream as one segment each: encoded, and never `.` or `..`
(which the HTTP client or the upstream would resolve into another path)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_server
from tests.test_handlers_upstream import FakeMagento
from tests.test_submission import wait_until_final

MEDIA = "/V1/products/:sku/media/:entryId"
UPSTREAMS = """
[[upstream]]
name = "shop"
base_url = "{base_url}"
[[upstream.route]]
method = "PUT"
path = "/V1/products/:sku/media/:entryId"
service = "Magento\\\\Catalog\\\\Api\\\\ProductAttributeMediaGalleryManagementInterface::update"
"""
BULK_MEDIA = "/rest/async/bulk/V1/products/bySku/media/byEntryId"
INVALID = 'Invalid value of "%value" provided for the %fieldName field.'
DOT_SEGMENTS = [".", "..", "%2E%2E", "%2e.", "%252E%252E", ".%2E"]


@pytest.fixture
def upstream() -> Iterator[FakeMagento]:
    fake = FakeMagento()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


@pytest.fixture
def server(database_url: str, tmp_path: Path, upstream: FakeMagento) -> Iterator[RunningServer]:
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(UPSTREAMS.format(base_url=upstream.base_url))
    running = start_server(
        tmp_path / "server", DATABASE_URL=database_url, UPSTREAMS_FILE=str(upstreams)
    )
    yield running
    running.stop()


def test_dot_segments_are_rejected_and_never_reach_the_upstream(
    server: RunningServer, upstream: FakeMagento
) -> None:
    items = [{"sku": "..", "entryId": ".."}] + [
        {"sku": "bag", "entryId": dots} for dots in DOT_SEGMENTS
    ]
    items.append({"sku": "bag", "entryId": "7"})
    with server.admin_client() as client:
        response = client.put(BULK_MEDIA, json=items)
        assert response.status_code == 202, response.text
        accepted = response.json()
        operations = wait_until_final(client, accepted["bulk_uuid"])
    assert accepted["errors"] is True
    statuses = [item["status"] for item in accepted["request_items"]]
    assert statuses == ["rejected"] * (len(items) - 1) + ["accepted"]
    assert accepted["request_items"][0]["error_message"] == (
        'Invalid value of ".." provided for the sku field.'
    )
    assert [operation["status"] for operation in operations] == [5] * (len(items) - 1) + [1]
    assert [request["path"] for request in upstream.requests] == [
        "/rest/default/V1/products/bag/media/7"
    ]


@pytest.mark.parametrize("dots", ["%2E%2E", "%2e", "%252E%252E"])
def test_a_single_request_with_a_dot_segment_is_a_400(
    server: RunningServer, upstream: FakeMagento, dots: str
) -> None:
    with server.admin_client() as client:
        response = client.put(f"/rest/async/V1/products/bag/media/{dots}", json={"entry": {}})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == INVALID
    assert body["parameters"]["fieldName"] == "entryId"
    assert upstream.requests == []


def test_reserved_characters_stay_inside_their_segment(
    server: RunningServer, upstream: FakeMagento
) -> None:
    sku = "a/../b?c=1#d%2F..%"
    with server.admin_client() as client:
        response = client.put(BULK_MEDIA, json=[{"sku": sku, "entryId": "..."}])
        assert response.status_code == 202, response.text
        operations = wait_until_final(client, response.json()["bulk_uuid"])
    assert [operation["status"] for operation in operations] == [1]
    assert [request["path"] for request in upstream.requests] == [
        "/rest/default/V1/products/a%2F..%2Fb%3Fc%3D1%23d%252F..%25/media/..."
    ]
