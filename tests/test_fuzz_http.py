"""Fuzzing a real `bulkops serve` on every backend: whatever the query string, path, headers
or body, the answer is never a 5xx, every error is a Magento error body, the server still
answers /health, and no GET changes what is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

import orjson
import pytest
import sqlalchemy
from defusedxml import ElementTree
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.pool import NullPool

from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.backends import Backend, sync_url
from tests.fuzzing import (
    ADMIN_TOKEN,
    BODIES,
    JSON_BODIES,
    KNOWN_BULK_UUID,
    QUERY_STRINGS,
    SEGMENTS,
    XML_BODIES,
    Tally,
    answering_server,
    fuzz_settings,
    headers,
    paths,
    request_target,
)
from tests.raw_http import RawClient, RawResponse
from tests.servers import RunningServer
from tests.storage import insert_bulks

# uvicorn's own answer to a request it cannot parse, before the application sees it.
UNPARSABLE_REQUEST = b"Invalid HTTP request received."


class Fuzzed:
    """A server of the suite's own, a raw connection to it, and an admin token."""

    def __init__(self, server: RunningServer, backend: str) -> None:
        self.server = server
        self.backend = backend
        address = urlsplit(server.base_url)
        self.client = RawClient(address.hostname or "127.0.0.1", address.port or 80)
        self.token = server.admin_token()

    def send(
        self,
        suite: str,
        method: str,
        path: str,
        query: str = "",
        sent_headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> RawResponse:
        """Sends the request, counts it, and checks the answer is no 5xx and, if an error,
        a Magento error body."""
        chosen = {
            name: value.replace(ADMIN_TOKEN, self.token).replace("\r", " ").replace("\n", " ")
            for name, value in (sent_headers or {}).items()
        }
        chosen.setdefault("Host", "127.0.0.1")
        target = request_target(path, query)
        response = self.client.request(method, target, chosen, body)
        Tally.count(suite, self.backend, response.status)
        request = f"{method} {target} {chosen} {body[:500]!r}"
        assert response.status < 500, f"{request}\n-> {response.status} {response.body[:2000]!r}"
        if response.status >= 400 and response.body != UNPARSABLE_REQUEST:
            assert_error_body(response, request)
        return response


def assert_error_body(response: RawResponse, request: str) -> None:
    """`message` is text and `parameters`, when present, an object or a list (JSON), or the
    same elements in Magento's XML."""
    content_type = response.headers.get("Content-Type", "")
    context = f"{request}\n-> {response.status} {content_type} {response.body[:2000]!r}"
    if "xml" in content_type:
        root = ElementTree.fromstring(response.body)
        assert root.tag == "response", context
        assert root.find("message") is not None, context
        return
    assert content_type.startswith("application/json"), context
    body = orjson.loads(response.body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str), context
    assert isinstance(body.get("parameters", []), dict | list), context


def _known_bulk() -> NewBulk:
    """A bulk with an operation of every status, so that status and retry routes find one."""
    return NewBulk(
        uuid=KNOWN_BULK_UUID,
        description="Topic async.V1.customers.POST",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=datetime(2024, 3, 1, 10, 15, 2),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name="async.V1.customers.POST",
                serialized_data='{"customer":{"email":"a@example.com"}}',
                status=status,
                result_message=None if status == OperationStatus.OPEN else f"message {key}",
                error_code=None
                if status in (OperationStatus.OPEN, OperationStatus.COMPLETE)
                else 0,
            )
            for key, status in enumerate(OperationStatus)
        ],
    )


@pytest.fixture(scope="module")
def fuzzed(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A server without a worker (accepted operations stay as they are: the suite is about
    answers), with a route that has path parameters, and one known bulk."""
    directory = tmp_path_factory.mktemp("fuzz")
    url = backend.create_database(directory)
    server = answering_server(directory, url)
    insert_bulks(url, [_known_bulk()])
    fuzzed = Fuzzed(server, backend.name)
    yield fuzzed
    fuzzed.client.close()
    server.stop()
    backend.drop_database(url)


@pytest.fixture
def alive(fuzzed: Fuzzed) -> Iterator[Fuzzed]:
    """After the suite, the server still answers /health."""
    yield fuzzed
    response = fuzzed.client.request("GET", "/health", {"Host": "127.0.0.1"})
    assert response.status == 200, fuzzed.server.log()[-5000:]


def stored_data(database_url: str) -> str:
    """A digest of every row of every table."""
    engine = sqlalchemy.create_engine(sync_url(database_url), poolclass=NullPool)
    digest = hashlib.sha256()
    try:
        with engine.connect() as connection:
            metadata = sqlalchemy.MetaData()
            metadata.reflect(connection)
            for table in metadata.sorted_tables:
                rows = connection.execute(sqlalchemy.select(table)).all()
                digest.update(f"{table.name}:{sorted(map(repr, rows))}".encode())
    finally:
        engine.dispose()
    return digest.hexdigest()


@pytest.fixture
def unchanged(alive: Fuzzed) -> Iterator[Fuzzed]:
    """After the suite, what is stored is what was stored before it."""
    before = stored_data(alive.server.database_url)
    yield alive
    assert stored_data(alive.server.database_url) == before


_READ_PATHS = (
    st.sampled_from(
        [
            "/rest/V1/bulk",
            "/rest/default/V1/bulk",
            "/rest/all/V1/bulk/",
            "/rest/openapi.json",
            "/rest/V1/store/storeConfigs",
            f"/rest/V1/bulk/{KNOWN_BULK_UUID}/detailed-status",
            "/rest/schema",
            "/rest/default/async/bulk/schema",
        ]
    )
    | paths()
)


@fuzz_settings(short_examples=300)
@given(
    path=_READ_PATHS,
    query=QUERY_STRINGS,
    sent_headers=headers(),
    authorized=st.booleans(),
)
def test_reads_never_fail_nor_change_what_is_stored(
    unchanged: Fuzzed, path: str, query: str, sent_headers: dict[str, str], authorized: bool
) -> None:
    if authorized:
        sent_headers = sent_headers | {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    unchanged.send("reads", "GET", path, query, sent_headers)


JSON_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
]
_WRITE_PATHS = st.one_of(
    st.sampled_from(
        [
            "/rest/V1/integration/admin/token",
            f"/rest/V1/bulk/{KNOWN_BULK_UUID}/retry",
            "/rest/default/async/V1/customers",
            "/rest/all/async/bulk/V1/customers",
            "/rest/async/bulk/V1/products/bySku",
            "/rest/default/async/V1/products/{}",
            "/rest/async/bulk/V1/tests/things/{}",
            "/rest/V1/bulk/{}/retry",
        ]
    ),
    paths(),
)


@st.composite
def _writes(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body), the body mostly of the kind the Content-Type names."""
    path = draw(_WRITE_PATHS)
    while "{}" in path:
        path = path.replace("{}", draw(SEGMENTS), 1)
    method = draw(st.sampled_from(["POST", "POST", "PUT", "DELETE", "PATCH", "GET"]))
    sent = draw(headers())
    kind = draw(st.sampled_from(["json", "json", "xml", "any"]))
    if kind == "json":
        sent["Content-Type"] = draw(st.sampled_from(JSON_CONTENT_TYPES))
        body = draw(JSON_BODIES)
    elif kind == "xml":
        sent["Content-Type"] = draw(st.sampled_from(["application/xml", "text/xml"]))
        body = draw(XML_BODIES)
    else:
        body = draw(BODIES)
    if draw(st.booleans()):
        sent["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    return method, path, sent, body


@fuzz_settings(short_examples=300)
@given(request=_writes())
def test_writes_never_fail(alive: Fuzzed, request: tuple[str, str, dict[str, str], bytes]) -> None:
    method, path, sent_headers, body = request
    alive.send("writes", method, path, "", sent_headers, body)


_FILTER = "searchCriteria[filter_groups][0][filters][0]"


def _search(field: str, condition: str, value: str) -> str:
    return (
        f"{_FILTER}[field]={field}&{_FILTER}[condition_type]={condition}&{_FILTER}[value]={value}"
    )


KNOWN_ATTACKS = {
    # Regular expressions Python accepts and a database refuses.
    "regexp repetition beyond 255": _search("bulk_uuid", "regexp", "a{1,256}"),
    "regexp ascii flag": _search("bulk_uuid", "regexp", "(?a)x"),
    "regexp named character": _search("bulk_uuid", "regexp", "%5CN%7BDIGIT%20ONE%7D"),
    # Nested quantifiers: exponential time for a backtracking engine (SQLite's was Python's).
    "regexp nested quantifiers": _search("bulk_uuid", "regexp", "%5E%28%5B0-9a-f-%5D%2B%29%2B%21"),
    # More values than one PostgreSQL statement may bind (32,767).
    "in beyond 32767 values": _search("topic_name", "in", "," * 33_000),
    "nin beyond 32767 values": _search("bulk_uuid", "nin", "," * 33_000),
}
"""Searches that once answered 5xx on some backend: tried on every run."""


@pytest.mark.parametrize("query", KNOWN_ATTACKS.values(), ids=KNOWN_ATTACKS.keys())
def test_known_attacks_answer_no_server_error(alive: Fuzzed, query: str) -> None:
    # A backend that can run the search answers it; one that cannot, a 400.
    alive.send(
        "known attacks", "GET", "/rest/V1/bulk", query, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
