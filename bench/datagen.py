"""Benchmark data: N operations with a realistic mix, loaded fast into bulkops' schema and,
row for row (same ids), into Magento's (`bench/magento_schema.py`) in the same database.

The mix: bulks of 1 to 5,000 operations (log-uniform: many small bulks, a few large ones),
started over 60 days in id order, each of one of ten topics (a few popular ones); processed
operations are 90 % complete, the rest failed (retriably or not) or rejected, with Magento-like
result messages; only the bulks of the last two days are still partly open.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench import magento_schema
from bench.databases import Backend
from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from bulkops.store.tallies import RECOUNT

TOPICS = [
    "async.magento.catalog.api.productrepositoryinterface.save.post",
    "async.magento.catalog.api.productrepositoryinterface.save.put",
    "async.magento.catalog.api.productrepositoryinterface.deletebyid.delete",
    "async.magento.catalog.api.categorylinkrepositoryinterface.save.post",
    "async.magento.catalog.api.spriceupdateinterface.update.post",
    "async.magento.catalog.api.basepricestorageinterface.update.post",
    "async.magento.inventoryapi.api.sourceitemssaveinterface.execute.post",
    "async.magento.customer.api.accountmanagementinterface.createaccount.post",
    "async.magento.customer.api.customerrepositoryinterface.save.put",
    "async.magento.sales.api.orderrepositoryinterface.save.post",
]
TOPIC_WEIGHTS = [30, 20, 3, 5, 10, 10, 15, 4, 2, 1]
MAX_BULK_SIZE = 5000
DAYS = 60
END = datetime(2026, 1, 1)
OPEN_DAYS = 2
COMPLETE, RETRIABLY_FAILED, NOT_RETRIABLY_FAILED, OPEN, REJECTED = 1, 2, 3, 4, 5
PROCESSED_STATUSES = [COMPLETE, RETRIABLY_FAILED, NOT_RETRIABLY_FAILED, REJECTED]
PROCESSED_WEIGHTS = [90, 5, 4, 1]
# (message, error code) per failed status; `{sku}` names the operation's product.
MESSAGES = {
    RETRIABLY_FAILED: [
        ("Connection to the upstream timed out after 30 seconds.", 504),
        ("Deadlock found when trying to get lock; try restarting transaction", 1213),
    ],
    NOT_RETRIABLY_FAILED: [
        ('The product with SKU "{sku}" doesn\'t exist.', 0),
        ('Could not save product "{sku}": URL key for specified store already exists.', 0),
        ('The value of attribute "price" must be greater than 0 for "{sku}".', 0),
    ],
    REJECTED: [('Field "sku" is required.', 0)],
}
# A phrase of one message: the `like '%...%'` search finds about 1 % of the operations.
SEARCHED_PHRASE = "URL key"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# A bulk's `operation_count` is its accepted operations, as bulkops writes it.
COUNT_ACCEPTED = (
    "UPDATE bulkops_bulk SET operation_count = operation_rows - (SELECT count(*)"
    " FROM bulkops_operation WHERE bulkops_operation.bulk_uuid = bulkops_bulk.uuid"
    f" AND bulkops_operation.status = {REJECTED})"
)

BULK_COLUMNS = (
    "id",
    "uuid",
    "user_id",
    "user_type",
    "description",
    "operation_count",
    "operation_rows",
    "start_time",
)
OPERATION_COLUMNS = (
    "id",
    "bulk_uuid",
    "operation_key",
    "topic_name",
    "serialized_data",
    "result_serialized_data",
    "status",
    "error_code",
    "result_message",
    "updated_at",
    "start_time",
)


@dataclass(frozen=True)
class Bulk:
    id: int
    uuid: str
    topic: str
    size: int
    start_time: datetime
    first_operation_id: int

    def row(self) -> tuple[Any, ...]:
        description = f"Topic {self.topic}"
        start = self.start_time.strftime(TIME_FORMAT)
        # `operation_count` leaves rejected operations out: set once they are written.
        return (self.id, self.uuid, 1, 2, description, self.size, self.size, start)


def generate_bulks(rows: int, seed: int = 7) -> list[Bulk]:
    """Bulks holding `rows` operations in all, in order of start time (and of ids)."""
    rng = random.Random(seed)
    sizes = []
    while (remaining := rows - sum(sizes)) > 0:
        size = int(math.exp(rng.uniform(0, math.log(MAX_BULK_SIZE + 1))))
        sizes.append(max(1, min(size, remaining)))
    seconds = sorted(rng.randrange(DAYS * 86400) for _ in sizes)
    bulks = []
    first_id = 1
    for index, (size, second) in enumerate(zip(sizes, seconds, strict=True)):
        start = END - timedelta(seconds=DAYS * 86400 - second)
        topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
        bulk_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        bulks.append(Bulk(index + 1, bulk_uuid, topic, size, start, first_id))
        first_id += size
    return bulks


def generate_operations(bulk: Bulk, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """The operations of `bulk`; a recent bulk is processed up to some point, open after it."""
    recent = bulk.start_time > END - timedelta(days=OPEN_DAYS)
    processed = rng.randrange(bulk.size + 1) if recent else bulk.size
    start = bulk.start_time.strftime(TIME_FORMAT)
    statuses = rng.choices(PROCESSED_STATUSES, PROCESSED_WEIGHTS, k=processed)
    for key in range(bulk.size):
        operation_id = bulk.first_operation_id + key
        sku = f"sku-{operation_id}"
        status = statuses[key] if key < processed else OPEN
        message: str | None = None
        code: int | None = None
        if status in MESSAGES:
            template, code = rng.choice(MESSAGES[status])
            message = template.format(sku=sku)
        updated = (bulk.start_time + timedelta(seconds=key // 50)).strftime(TIME_FORMAT)
        yield (
            operation_id,
            bulk.uuid,
            key,
            bulk.topic,
            None if status == COMPLETE else _serialized_data(sku),
            json.dumps({"id": operation_id, "sku": sku}) if status == COMPLETE else None,
            status,
            code,
            message,
            updated if status != OPEN else start,
            start,
        )


def _serialized_data(sku: str) -> str:
    item = json.dumps({"product": {"sku": sku, "name": f"Product {sku}", "price": 10.5}})
    return json.dumps({"entity_id": None, "entity_link": "", "meta_information": item})


def operation_rows(bulks: list[Bulk], seed: int = 8) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for bulk in bulks:
        yield from generate_operations(bulk, rng)


def load(backend: Backend, rows: int) -> None:
    """bulkops' schema through its own migrations and `rows` operations in it, then the same
    rows in Magento's schema, then fresh statistics."""
    asyncio.run(_migrate(backend.bulkops_url))
    bulks = generate_bulks(rows)
    with closing(backend.connect()) as connection:
        cursor = connection.cursor()
        _insert_rows(backend, cursor, "bulkops_bulk", BULK_COLUMNS, (b.row() for b in bulks))
        _insert_rows(backend, cursor, "bulkops_operation", OPERATION_COLUMNS, operation_rows(bulks))
        cursor.execute(COUNT_ACCEPTED)
        # The operations' counts by bulk, topic and status, as bulkops keeps them.
        cursor.execute(RECOUNT)
        connection.commit()
        if backend.name == "postgresql":
            # The ids were given: move the sequences past them, as inserts by bulkops expect.
            for table in ("bulkops_bulk", "bulkops_operation"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            connection.commit()
        magento_schema.create_and_copy(backend, connection)
        analyze(backend, connection)
        cursor.close()


def _insert_rows(
    backend: Backend,
    cursor: Any,
    table: str,
    columns: tuple[str, ...],
    rows: Iterator[tuple[Any, ...]],
) -> None:
    """COPY on PostgreSQL; elsewhere executemany in batches (which pymysql sends as multi-row
    INSERTs)."""
    names = ", ".join(columns)
    if backend.name == "postgresql":
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join([backend.placeholder] * len(columns))
    statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 5000:
            cursor.executemany(statement, batch)
            batch = []
    if batch:
        cursor.executemany(statement, batch)


def analyze(backend: Backend, connection: Any) -> None:
    cursor = connection.cursor()
    if backend.name == "postgresql":
        # Statistics, and the visibility map index-only scans need (autovacuum's job).
        connection.autocommit = True
        cursor.execute("VACUUM (ANALYZE)")
        connection.autocommit = False
    elif backend.name == "mysql":
        cursor.execute(
            "ANALYZE TABLE bulkops_bulk, bulkops_operation, magento_bulk, magento_operation"
        )
        cursor.fetchall()
    else:
        cursor.execute("ANALYZE")
    connection.commit()
    cursor.close()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
