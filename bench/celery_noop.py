"""What a Python team would otherwise write: a Celery task per operation on RabbitMQ, doing
nothing and recording the result in the operation's row (one UPDATE, autocommitted).

The broker, the queue and the database come from the environment (`BENCH_CELERY_BROKER`,
`BENCH_CELERY_QUEUE`, `BENCH_DATABASE_URL`), so that `bench/processing.py` can start
`celery -A bench.celery_noop worker` processes on a run's own queue and database.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from celery import Celery
from sqlalchemy.engine import make_url

from bench.databases import Backend

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench-noop")
PREFETCH = int(os.environ.get("BENCH_CELERY_PREFETCH", "200"))

app = Celery("bench_noop", broker=os.environ.get("BENCH_CELERY_BROKER", "amqp://"))
app.conf.update(
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    task_ignore_result=True,
    task_acks_late=True,  # acknowledged once the result is recorded, as bulkops does
    worker_prefetch_multiplier=PREFETCH,  # the same prefetch as bulkops' workers
    broker_connection_retry_on_startup=True,
)


@cache
def _connection() -> Any:
    backend = Backend(make_url(os.environ["BENCH_DATABASE_URL"]))
    connection = backend.connect()
    if backend.name == "sqlite":
        connection.isolation_level = None
        connection.execute("PRAGMA busy_timeout=30000")  # two workers share one writer
    elif backend.name == "postgresql":
        connection.autocommit = True
    else:
        connection.autocommit(True)  # pymysql's is a method
    return backend.placeholder, connection


@app.task(name="bench.noop")
def noop(operation_id: int) -> None:
    placeholder, connection = _connection()
    cursor = connection.cursor()
    cursor.execute(
        "UPDATE bulkops_operation SET status = 1, result_message = 'Service execution success',"
        f" updated_at = CURRENT_TIMESTAMP WHERE id = {placeholder}",
        (operation_id,),
    )
    cursor.close()
