"""The SQL search agrees with the plain-Python model on random data and random criteria."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text

from bulkops.criteria import SearchCriteria, parse_search_criteria
from bulkops.errors import InputError
from bulkops.searchable import SEARCHABLE_FIELDS, FieldKind
from bulkops.status import OperationStatus
from bulkops.store import search
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from bulkops.store.tables import bulk, operation
from bulkops.store.tallies import RECOUNT
from tests.search_model import Row, as_text, model_search

pytestmark = pytest.mark.slow

# Letters in both cases, accented or not; characters each backend orders differently against
# letters once case is folded (`_` sorts between upper and lower case); LIKE's and GLOB's
# wildcards; the quote of SQLite's full-text queries.
TEXT_ALPHABET = 'aAbBeéÉ0 1,%_\\.-*?[中😀"'
CONDITIONS = [
    "eq", "neq", "like", "nlike", "in", "nin", "null", "notnull", "gt", "lt", "gteq", "lteq",
    "moreq", "from", "to", "finset", "nfinset", "seq", "sneq", "regexp", "fulltext", "", None,
]  # fmt: skip

texts = st.text(alphabet=TEXT_ALPHABET, max_size=6)
maybe_texts = st.none() | texts
small_ints = st.integers(min_value=-3, max_value=12)
datetimes = st.datetimes(min_value=datetime(2018, 7, 11), max_value=datetime(2018, 7, 13)).map(
    lambda moment: moment.replace(microsecond=0, second=moment.second // 20 * 20)
)


@st.composite
def datasets(draw: st.DrawFn) -> list[Row]:
    bulks = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "uuid": st.text(alphabet="aAb-1", min_size=1, max_size=4),
                    "start_time": datetimes,
                    "user_id": st.none() | st.integers(1, 3),
                    "user_type": st.none() | st.integers(1, 4),
                    "description": maybe_texts,
                }
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda b: b["uuid"],
        )
    )
    operation_rows = st.fixed_dictionaries(
        {
            "bulk": st.sampled_from(bulks),
            "topic_name": st.sampled_from(
                ["async.V1.customers.POST", "async.v1.customers.post", "async.a.b", "Async.a.b"]
            )
            | texts,
            "status": st.integers(1, 5),
            "error_code": st.none() | small_ints,
            "result_message": maybe_texts,
            "serialized_data": maybe_texts,
            "result_serialized_data": maybe_texts,
            "started_at": st.none() | datetimes,
            "updated_at": datetimes,
        }
    )
    rows = []
    for index, drawn in enumerate(draw(st.lists(operation_rows, max_size=25)), start=1):
        owner = drawn.pop("bulk")
        rows.append(
            drawn
            | {
                "id": index,
                "bulk_uuid": owner["uuid"],
                "operation_key": index,
                "start_time": owner["start_time"],
                "user_id": owner["user_id"],
                "user_type": owner["user_type"],
                "description": owner["description"],
                "_bulk": owner,
            }
        )
    return rows


def _text_values(rows: list[Row], field: str) -> list[str]:
    return [as_text(row[field]) for row in rows if row[field] is not None]


@st.composite
def filter_values(draw: st.DrawFn, rows: list[Row], field: str, condition: str | None) -> str:
    kind = SEARCHABLE_FIELDS[field]
    seen = _text_values(rows, field)
    if kind is FieldKind.INTEGER:
        own = small_ints.map(str)
    elif kind is FieldKind.DATETIME:
        own = datetimes.map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")) | st.just(
            "2018-07-12"
        )
    else:
        own = texts
    single = (st.sampled_from(seen) | own) if seen else own
    if condition in ("in", "nin"):
        parts = draw(st.lists(single, min_size=1, max_size=4))
        if kind is FieldKind.TEXT:
            # Elements are trimmed; commas would split them.
            parts = [part.strip().replace(",", "") for part in parts]
        return ",".join(part if i % 2 else f" {part} " for i, part in enumerate(parts))
    value = draw(single)
    if condition in ("like", "nlike") and value:
        # Wildcards in place of some characters.
        chars = [draw(st.sampled_from([char, "%", "_", char])) for char in value]
        value = draw(st.sampled_from(["", "%"])) + "".join(chars) + draw(st.sampled_from(["", "%"]))
    if condition == "regexp":
        value = draw(st.sampled_from(["^a", "b$", "[0-9]", ".", "é|中", "^$", "A"]))
    return value


@st.composite
def criteria_queries(draw: st.DrawFn, rows: list[Row]) -> dict[str, Any]:
    fields = list(SEARCHABLE_FIELDS)
    groups: dict[str, Any] = {}
    for group_index in range(draw(st.integers(0, 3))):
        filters = {}
        for filter_index in range(draw(st.integers(0, 3))):
            field = draw(st.sampled_from(fields))
            condition = draw(st.sampled_from(CONDITIONS))
            flt: dict[str, Any] = {"field": field}
            if condition is not None:
                flt["condition_type"] = condition
            if condition not in ("null", "notnull") or draw(st.booleans()):
                flt["value"] = draw(filter_values(rows, field, condition))
            filters[str(filter_index * 2)] = flt
        groups[str(group_index + 5)] = {"filters": filters}
    query: dict[str, Any] = {"filter_groups": groups}
    if draw(st.booleans()):
        query["sortOrders"] = {
            str(i): {"field": draw(st.sampled_from(fields)), "direction": direction}
            for i, direction in enumerate(
                draw(st.lists(st.sampled_from(["ASC", "DESC", "asc"]), max_size=3))
            )
        }
    if draw(st.booleans()):
        query["pageSize"] = str(draw(st.integers(0, 7)))
        if draw(st.booleans()):
            query["currentPage"] = str(draw(st.integers(-1, 9)))
    return {"searchCriteria": query}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def store_url(database_url: str, loop: asyncio.AbstractEventLoop) -> str:
    """The test's database, migrated (every example empties and fills its tables)."""

    async def create() -> None:
        database = Database(database_url)
        await upgrade(database)
        await database.dispose()

    loop.run_until_complete(create())
    return database_url


async def _load(database_url: str, rows: list[Row]) -> Database:
    database = Database(database_url)
    async with database.write() as connection:
        await connection.execute(delete(operation))
        await connection.execute(delete(bulk))
        owners = {id(row["_bulk"]): row["_bulk"] for row in rows}
        # Searches filtered on bulk fields only count through `operation_rows`, every row;
        # `operation_count` leaves rejected ones out.
        counts = Counter(id(row["_bulk"]) for row in rows)
        rejected = OperationStatus.REJECTED
        accepted = Counter(id(row["_bulk"]) for row in rows if row["status"] != rejected)
        if owners:
            await connection.execute(
                insert(bulk),
                [
                    owner | {"operation_count": accepted[key], "operation_rows": counts[key]}
                    for key, owner in owners.items()
                ],
            )
        if rows:
            columns = set(operation.c.keys())
            await connection.execute(
                insert(operation), [{k: v for k, v in row.items() if k in columns} for row in rows]
            )
            # Searches filtered on statuses and topics count through the operations' counts.
            await connection.execute(text(RECOUNT))
    return database


async def _sql_search(database: Database, criteria: SearchCriteria) -> tuple[list[int], int]:
    async with database.read() as connection:
        if criteria.page_size:
            page = await search.search_page(connection, criteria, database.backend)
            return [row.id for row in page.rows], page.total_count
        stream = await search.open_stream(connection, criteria, database.backend, batch_size=3)
        ids = [row.id async for rows in stream.batches() for row in rows]
        return ids, len(ids)


@settings(
    max_examples=400,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
# Every page through the deep-page plan too (ids first), which real data reaches only past
# `search.DEFERRED_OFFSET` rows.
@pytest.mark.parametrize("deferred_offset", [search.DEFERRED_OFFSET, 0], ids=["plain", "deferred"])
def test_sql_search_agrees_with_the_model(
    data: st.DataObject,
    loop: asyncio.AbstractEventLoop,
    store_url: str,
    deferred_offset: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(search, "DEFERRED_OFFSET", deferred_offset)
    rows = data.draw(datasets())
    query = data.draw(criteria_queries(rows))
    try:
        criteria = parse_search_criteria(query)
    except InputError:
        reject()

    async def run() -> tuple[list[int], int, str]:
        database = await _load(store_url, rows)
        try:
            return *await _sql_search(database, criteria), database.backend
        finally:
            await database.dispose()

    ids, total, backend = loop.run_until_complete(run())
    expected_rows, expected_total = model_search(rows, criteria, backend)
    assert total == expected_total
    assert ids == [row["id"] for row in expected_rows]
