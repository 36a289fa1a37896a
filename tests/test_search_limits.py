"""Searches that cannot freeze or exhaust the service, on a real server: regular expressions
that cannot backtrack, a time limit on every read statement, a bounded `in` list, and large
pages streamed as they are read."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy import literal, select
from sqlalchemy.exc import DBAPIError

from bulkops.api import xml
from bulkops.api.bulk import STREAMED_PAGE_SIZE
from bulkops.criteria import MAX_LISTED_VALUES
from bulkops.regexps import MAX_REPEAT
from bulkops.status import OperationStatus, UserType
from bulkops.store import statement_limits
from bulkops.store.bulks import NewBulk, NewOperation
from bulkops.store.database import Database
from tests.backends import Backend
from tests.servers import RunningServer, start_server
from tests.storage import insert_bulks

TOPIC = "async.V1.products.POST"
SEARCH = "/rest/V1/bulk"


def new_bulk(index: int, operations: int) -> NewBulk:
    return NewBulk(
        uuid=f"{index:08x}-0000-4000-8000-000000000000",
        description=f"Topic {TOPIC}",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=datetime(2024, 3, 1, 10, 0, 0),
        operations=[
            NewOperation(
                operation_key=key,
                topic_name=TOPIC,
                serialized_data=f'{{"sku":"sku-{index}-{key}","name":"a product of bulk {index}"}}',
                status=OperationStatus.COMPLETE,
                result_message=f"done {key}",
                error_code=None,
            )
            for key in range(operations)
        ],
    )


def filters(*conditions: tuple[str, str, str], group: int = 0) -> str:
    """One filter group of (field, condition type, value) filters, OR-ed."""
    parts = []
    for index, (field, condition, value) in enumerate(conditions):
        prefix = f"searchCriteria[filter_groups][{group}][filters][{index}]"
        parts += [
            f"{prefix}[field]={field}",
            f"{prefix}[value]={quote(value, safe=',')}",
            f"{prefix}[condition_type]={condition}",
        ]
    return "&".join(parts)


def search(client: httpx.Client, query: str, **options: Any) -> httpx.Response:
    return client.get(f"{SEARCH}?{query}", **options)


@contextmanager
def server_with_bulks(
    backend: Backend, directory: Path, bulks: list[NewBulk], **settings: str
) -> Iterator[RunningServer]:
    """A server without a worker, which would delete bulks dated years ago, and with payloads
    shown and searched as stored (the searches here read them; masking has tests of its own)."""
    url = backend.create_database(directory)
    settings = {"REDACT_KEYS": "[]", **settings}
    running = start_server(directory / "server", "--no-worker", DATABASE_URL=url, **settings)
    try:
        insert_bulks(url, bulks)
        yield running
    finally:
        running.stop()
        backend.drop_database(url)


@pytest.fixture(scope="module")
def loaded(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with 3 bulks of 1,000 operations, and an admin client (searches only)."""
    bulks = [new_bulk(index, 1000) for index in range(3)]
    directory = tmp_path_factory.mktemp("loaded")
    with server_with_bulks(backend, directory, bulks) as server, server.admin_client() as client:
        yield client


# Regular expressions ---------------------------------------------------------------------

# Exponential for a backtracking engine on every 36-character uuid: it froze a SQLite server.
CATASTROPHIC = "^([0-9a-f-]+)+!"


def test_a_catastrophic_regexp_neither_freezes_the_server_nor_ignores_sigterm(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "server", "--no-worker")
    try:
        insert_bulks(server.database_url, [new_bulk(1, 5)])
        answers: list[httpx.Response] = []
        with server.admin_client() as client:
            token = client.headers["Authorization"]
            query = filters(("bulk_uuid", "regexp", CATASTROPHIC))
            thread = threading.Thread(
                target=lambda: answers.append(
                    httpx.get(
                        f"{server.base_url}{SEARCH}?{query}",
                        headers={"Authorization": token},
                        timeout=60,
                    )
                )
            )
            thread.start()
            # The process keeps serving meanwhile.
            assert client.get("/health", timeout=20).status_code == 200
            thread.join()
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["total_count"] == 0
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) is not None
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("a{1,256}", f"a repetition bound is larger than {MAX_REPEAT}"),
        ("(?a)x", "the construct at '(?a' is not supported"),
        (r"\N{DIGIT ONE}", r"the escape \N is not supported"),
        (r"(a)\1", r"the escape \1 is not supported"),
        ("(?=a)", "the construct at '(?=' is not supported"),
        ("[[.a.]]", "'[.' in a bracket expression is not supported"),
        ("a{", "a { starts no repetition {m}, {m,} or {m,n} (write \\{ for the brace)"),
        ("a++", "bad repetition operator: ++"),
        # PostgreSQL refuses these, where RE2 reads them.
        (r"[\d-z]", r"a range cannot start at \d"),
        ("^*", "^ cannot be repeated"),
    ],
)
def test_regexps_outside_the_dialect_are_the_same_400_on_every_backend(
    loaded: httpx.Client, pattern: str, reason: str
) -> None:
    response = search(loaded, filters(("bulk_uuid", "regexp", pattern)))
    assert response.status_code == 400
    assert response.json() == {
        "message": 'The regular expression "%pattern" for "%field" is not valid: %reason.',
        "parameters": {"pattern": pattern, "field": "bulk_uuid", "reason": reason},
    }


@pytest.mark.parametrize(
    ("field", "pattern", "expected"),
    [
        ("bulk_uuid", "^0000000[12]-", 2000),
        ("result_message", "^0000000[12]-", 0),
        ("bulk_uuid", r"[[:digit:]]{8}\-0{4}", 3000),
        # Caseless on the fields searched without regard to case only.
        ("result_message", r"DONE 99\d$", 30),
        ("bulk_uuid", r"^0000000[12]-0000-4000-8000-0{12}$", 2000),
        ("serialized_data", '"sku"', 3000),
        ("serialized_data", '"SKU"', 0),
        ("topic_name", r"^ASYNC\.V1\.products\.post$", 3000),
        ("result_message", r"^(?:done|DONE) 1\s*$", 3),
        ("result_message", "a{0,255}x", 0),
    ],
)
def test_regexps_of_the_dialect_match_alike_on_every_backend(
    loaded: httpx.Client, field: str, pattern: str, expected: int
) -> None:
    response = search(loaded, filters((field, "regexp", pattern)) + "&searchCriteria[pageSize]=1")
    assert response.status_code == 200, response.text
    assert response.json()["total_count"] == expected


@pytest.mark.parametrize(
    ("backend_name", "pattern"), [("postgresql", r"[\d-z]"), ("mariadb", "(?<n")]
)
async def test_a_regexp_the_database_refuses_is_told_apart(
    backend: Backend, database: Database, backend_name: str, pattern: str
) -> None:
    """Should one pass the dialect check, the database's refusal is an input error (400)."""
    if backend.name != backend_name:
        pytest.skip(f"a pattern {backend_name} refuses")
    with pytest.raises(DBAPIError) as raised:
        async with database.read() as connection:
            await connection.execute(select(literal("abc").regexp_match(pattern)))
    assert statement_limits.invalid_regexp(raised.value)
    assert not statement_limits.timed_out(raised.value)


# Time limits -----------------------------------------------------------------------------


def expensive_search() -> str:
    """Every operation read against a few hundred regular expressions that match none."""
    patterns = [f"bulk {index}x(y|z)+w$" for index in range(240)]
    return filters(*(("serialized_data", "regexp", pattern) for pattern in patterns))


@pytest.fixture(scope="module")
def limited(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose read statements (and streams, on MariaDB) may last 0.2 s, over 30,000
    operations, with a single database connection: one a stopped statement kept would leave
    the next request none."""
    with server_with_bulks(
        backend,
        tmp_path_factory.mktemp("limited"),
        [new_bulk(index, 10_000) for index in range(3)],
        STATEMENT_TIMEOUT_SECONDS="0.2",
        SEARCH_STREAM_TIMEOUT_SECONDS="0.2",
        TOKEN_CACHE_SECONDS="3600",
        DATABASE_POOL_SIZE="1",
        DATABASE_POOL_MAX_OVERFLOW="0",
    ) as server:
        yield server


@pytest.mark.parametrize("paging", ["&searchCriteria[pageSize]=10", ""])
def test_a_search_past_the_time_limit_is_a_503_naming_it(
    limited: RunningServer, paging: str
) -> None:
    with limited.admin_client() as client:
        response = search(client, expensive_search() + paging)
        assert response.status_code == 503, response.text
        assert response.json() == {
            "message": "The database did not answer within %seconds seconds, the time limit "
            "of a statement. Narrow the search or try again later.",
            "parameters": {"seconds": 0.2},
        }
        # Its connection is free again: the server answers the next searches.
        for _ in range(3):
            assert search(client, "searchCriteria[pageSize]=1").status_code == 200
            assert search(client, expensive_search()).status_code == 503


def test_a_streamed_search_reads_past_the_time_limit_of_one_fetch(
    backend: Backend, limited: RunningServer
) -> None:
    """Each fetch of a stream has the limit, not the whole stream: every row is sent."""
    if backend.name == "mariadb":
        pytest.skip("MariaDB limits a stream as a whole (BULKOPS_SEARCH_STREAM_TIMEOUT_SECONDS)")
    with limited.admin_client() as client:
        response = search(client, "searchCriteria[pageSize]=0")
    assert response.status_code == 200
    assert response.json()["total_count"] == 30_000


# `in` lists ------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", ["in", "nin"])
def test_in_lists_up_to_the_limit_work_on_every_backend(
    loaded: httpx.Client, condition: str
) -> None:
    # Text compared caselessly, as before; the limit counts the values of every list.
    messages = ",".join(["DONE 1", "done 2"])
    ids = ",".join(str(number) for number in range(1, MAX_LISTED_VALUES - 1))
    query = (
        filters(("id", condition, ids)) + "&" + filters(("result_message", "in", messages), group=1)
    )
    response = search(loaded, query + "&searchCriteria[pageSize]=5")
    assert response.status_code == 200, response.text
    assert response.json()["total_count"] == (6 if condition == "in" else 0)


@pytest.mark.parametrize("condition", ["in", "nin"])
def test_in_lists_past_the_limit_are_a_400(loaded: httpx.Client, condition: str) -> None:
    # Past PostgreSQL's 32,767 bound parameters in a URL that fits: empty elements.
    elements = "," * 40_000
    response = search(loaded, filters(("bulk_uuid", condition, elements)))
    assert response.status_code == 400
    assert response.json() == {
        "message": 'The "in" and "nin" filters of a search list %count values; at most %max '
        "are allowed.",
        "parameters": {"count": 40_001, "max": MAX_LISTED_VALUES},
    }


# Large pages -----------------------------------------------------------------------------


def everything(client: httpx.Client) -> list[dict[str, Any]]:
    return search(client, "searchCriteria[pageSize]=0").json()["items"]


@pytest.mark.parametrize(
    ("page_size", "current_page"), [(2_147_483_647, 1), (STREAMED_PAGE_SIZE + 1, 2), (1001, 9)]
)
def test_large_pages_are_streamed_with_the_bytes_of_a_whole_page(
    loaded: httpx.Client, page_size: int, current_page: int
) -> None:
    query = (
        filters(("status", "eq", "1"))
        + f"&searchCriteria[pageSize]={page_size}&searchCriteria[currentPage]={current_page}"
        + "&searchCriteria[sortOrders][0][field]=id&searchCriteria[sortOrders][0][direction]=DESC"
    )
    response = search(loaded, query)
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    answer = response.json()
    # What a page answered whole writes: the same keys in the same order, compactly.
    assert response.content == orjson.dumps(answer)
    start = (current_page - 1) * page_size
    expected = sorted(everything(loaded), key=lambda item: item["id"], reverse=True)
    assert answer["items"] == expected[start : start + page_size]
    assert answer["total_count"] == 3000
    assert answer["search_criteria"]["page_size"] == page_size
    xml_response = search(loaded, query, headers={"Accept": "application/xml"})
    assert xml_response.content == xml.document(answer)


def test_small_pages_are_answered_whole(loaded: httpx.Client) -> None:
    response = search(loaded, f"searchCriteria[pageSize]={STREAMED_PAGE_SIZE}")
    assert response.headers["content-length"] == str(len(response.content))
    assert json.loads(response.content)["total_count"] == 3000
