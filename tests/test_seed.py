"""The seed page's example, end to end over HTTP: its exact request returns its exact response."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.seeds import (
    ROUTE_STYLE,
    SERVICE_STYLE,
    ordered,
    seed_bulks,
    seed_request,
    seed_response_text,
)
from tests.servers import start_server
from tests.storage import insert_bulks

STYLES = {
    ROUTE_STYLE: "async.V1.customers.POST",
    SERVICE_STYLE: "async.magento.customer.api.accountmanagementinterface.createaccount.post",
}


@pytest.mark.parametrize("page", list(STYLES), ids=["route-topics", "service-topics"])
def test_seed_request_returns_seed_response(page: Path, tmp_path: Path, database_url: str) -> None:
    # Payloads shown as stored, as the seed (Magento) shows them: its password included. The
    # seed's bulks are from 2018: kept, or the worker's cleanup may delete them before the
    # search.
    server = start_server(
        tmp_path, DATABASE_URL=database_url, REDACT_KEYS="[]", BULK_LIFETIME_DAYS="0"
    )
    try:
        insert_bulks(server.database_url, seed_bulks(STYLES[page]))
        expected = ordered(seed_response_text(page))
        request = seed_request(page)
        encoded = request.replace("[", "%5B").replace("]", "%5D")
        with server.admin_client() as client:
            for path in (
                f"/rest/default{request}",
                f"/rest/default{encoded}",
                f"/rest{request}",
                f"/rest/all{request}",
                f"/rest/default{request.replace('/V1/bulk/?', '/V1/bulk?')}",
            ):
                response = client.get(path)
                assert response.status_code == 200, (path, response.text)
                assert response.headers["content-type"] == "application/json; charset=utf-8"
                assert ordered(response.content) == expected, path
    finally:
        server.stop()


def test_fully_encoded_query_is_the_same_request(server) -> None:  # type: ignore[no-untyped-def]
    """Clients that encode every reserved character (`=` and `&` excepted) still match."""
    query = seed_request().split("?", 1)[1]
    encoded = "&".join(
        "=".join(quote(part, safe="") for part in pair.split("=", 1)) for pair in query.split("&")
    )
    with server.admin_client() as client:
        plain = client.get(f"/rest/V1/bulk?{query}")
        fully = client.get(f"/rest/V1/bulk?{encoded}")
    assert plain.status_code == fully.status_code == 200
    assert plain.json()["search_criteria"] == fully.json()["search_criteria"]
