"""Request bodies nested deeper than `MAX_NESTING` levels are refused when decoded (JSON, XML,
the retry body): a 400, never a RecursionError's 500 and its traceback in the log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bulkops.api.request_body import MAX_NESTING
from tests.backends import Backend
from tests.servers import RunningServer, server_on

SINGLE = "/rest/default/async/V1/customers"
BULK = "/rest/default/async/bulk/V1/customers"
RETRY = "/rest/V1/bulk/aaaaaaaa-0000-4000-8000-000000000001/retry"
DECODING_ERROR = {"message": "Decoding error."}
# Deep enough for Python's recursion limit (the first reports: about 970 levels).
ATTACK_DEPTH = 970


@pytest.fixture(scope="module")
def api(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_on(backend, tmp_path_factory.mktemp("nesting"), "--no-worker") as running:
        yield running


def nested_list(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def customer_body(extra_levels: int) -> str:
    """A customer whose `extra` attribute holds lists nested so that the whole body is nested
    `extra_levels + 2` deep (the body object, the customer object, then the lists)."""
    customer = '{"email":"deep@example.com","firstname":"A","lastname":"B","extra":'
    return '{"customer":' + customer + nested_list(extra_levels) + "}}"


@pytest.mark.parametrize("path", [SINGLE, BULK])
def test_json_at_the_limit_is_accepted(api: RunningServer, path: str) -> None:
    body = customer_body(MAX_NESTING - 2)
    if path == BULK:
        # The list of items is one more level.
        body = "[" + customer_body(MAX_NESTING - 3) + "]"
    with api.admin_client() as client:
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, 400, ATTACK_DEPTH])
@pytest.mark.parametrize("path", [SINGLE, BULK])
def test_json_nested_too_deep_is_a_decoding_error(
    api: RunningServer, path: str, levels: int
) -> None:
    body = customer_body(levels)
    if path == BULK:
        body = f"[{body}]"
    with api.admin_client() as client:
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, DECODING_ERROR)
    assert "Traceback" not in api.log()


@pytest.mark.parametrize("levels", [MAX_NESTING, 300, ATTACK_DEPTH])
def test_a_deep_retry_body_is_a_decoding_error(api: RunningServer, levels: int) -> None:
    body = '{"statuses":' + nested_list(levels) + "}"
    with api.admin_client() as client:
        response = client.post(RETRY, content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, DECODING_ERROR)
    assert "Traceback" not in api.log()


def test_xml_nested_too_deep_is_a_decoding_error(api: RunningServer) -> None:
    deep = "<a>" * MAX_NESTING + "1" + "</a>" * MAX_NESTING
    body = f"<request><customer><email>x@example.com</email>{deep}</customer></request>"
    with api.admin_client() as client:
        response = client.post(SINGLE, content=body, headers={"Content-Type": "application/xml"})
    assert (response.status_code, response.json()) == (400, DECODING_ERROR)
