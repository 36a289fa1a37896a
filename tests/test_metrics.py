"""`GET /metrics` of a real `serve --processes 2` on every backend: counters move by what a
submission processed by the workers did, whichever process a scrape reaches; the output
parses; clients neither on an allowed network nor with the token are refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from tests.backends import Backend
from tests.servers import RunningServer, server_on
from tests.test_submission import CUSTOMERS, customer, wait_until_final
from tests.waiting import wait_for

TOKEN = "metrics-test-token"
SUBMISSIONS = "/async/{route_path:path}"  # every submission route, under one template
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_on(
        backend,
        tmp_path_factory.mktemp("metrics"),
        "--processes",
        "2",
        METRICS_TOKEN=TOKEN,
        METRICS_CACHE_SECONDS="0",
    ) as running:
        wait_for(lambda: running.log().count("Application startup complete") == 2, 60, "startup")
        yield running


def scrape(server: RunningServer, **headers: str) -> httpx.Response:
    # A connection of its own each time: scrapes reach either process.
    return httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=30)


def samples(server: RunningServer) -> Samples:
    response = scrape(server)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_counters_follow_a_processed_submission(server: RunningServer) -> None:
    before = samples(server)
    with server.admin_client() as client:
        items = [customer(f"m{n}@example.com") for n in range(3)] + [{"customer": "rejected"}]
        response = client.post(CUSTOMERS, json=items)
        assert response.status_code == 202, response.text
        operations = wait_until_final(client, response.json()["bulk_uuid"])
    topic = operations[0]["topic_name"]
    assert [operation["status"] for operation in operations] == [1, 1, 1, 5]

    def moved(after: Samples, name: str, by: float, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) == by

    # The finished counter moves once the worker's transaction has committed, after the
    # status the client saw.
    wait_for(
        lambda: moved(
            samples(server), "bulkops_operations_finished_total", 3, topic=topic, status="1"
        ),
        30,
        "the finished counter",
    )
    after = samples(server)
    assert moved(after, "bulkops_operations_accepted_total", 3, topic=topic)
    assert moved(after, "bulkops_handler_duration_seconds_count", 3, topic=topic)
    route = {"route": SUBMISSIONS, "method": "POST"}
    assert moved(after, "bulkops_http_requests_total", 1, code="202", **route)
    assert moved(after, "bulkops_http_request_duration_seconds_count", 1, **route)
    # Only route templates: the search of the bulk's status is counted under its template.
    routes = {
        dict(labels)["route"] for name, labels in after if name == "bulkops_http_requests_total"
    }
    assert "/V1/bulk/{bulk_uuid}/detailed-status" in routes
    assert not any(operations[0]["bulk_uuid"] in route for route in routes)
    # Scrapes are not counted.
    assert "/metrics" not in routes
    assert value(after, "bulkops_operations_open") == 0
    assert value(after, "bulkops_queue_messages", state="due") == 0


def test_every_process_is_counted_by_every_scrape(server: RunningServer) -> None:
    with server.admin_client() as client:
        response = client.post(CUSTOMERS, json=[customer("agg@example.com")])
        wait_until_final(client, response.json()["bulk_uuid"])
    scrapes = [samples(server) for _ in range(12)]
    totals = {
        sum(v for (name, _), v in found.items() if name == "bulkops_http_requests_total")
        for found in scrapes
    }
    # Requests made meanwhile: only scrapes, which are not counted.
    assert len(totals) == 1
    # Each process reports its pool's use under its own pid.
    pids = {
        dict(labels)["pid"]
        for found in scrapes
        for name, labels in found
        if name == "bulkops_database_pool_size"
    }
    assert len(pids) == 2


def test_only_allowed_networks_and_the_token_may_scrape(server: RunningServer) -> None:
    # The test's own address is loopback, allowed; a client behind the trusted proxy
    # (loopback too) comes from where X-Forwarded-For says.
    outside = {"X-Forwarded-For": "203.0.113.7"}
    assert scrape(server).status_code == 200
    refused = scrape(server, **outside)
    assert refused.status_code == 403
    assert refused.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "metrics"},
    }
    wrong = scrape(server, Authorization="Bearer not-the-token", **outside)
    assert wrong.status_code == 403
    assert scrape(server, Authorization=f"Bearer {TOKEN}", **outside).status_code == 200


def test_the_openapi_document_describes_the_route(server: RunningServer) -> None:
    document = httpx.get(f"{server.base_url}/rest/default/openapi.json", timeout=30).json()
    validate(document)
    item = document["paths"]["/metrics"]
    assert item["servers"] == [{"url": server.base_url}]
    assert "text/plain" in item["get"]["responses"]["200"]["content"]
