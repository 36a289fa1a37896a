"""The transport the settings name, for the API (which publishes) and the workers."""

from __future__ import annotations

from datetime import timedelta

from bulkops.queue.amqp import AmqpTransport
from bulkops.queue.db import DbTransport
from bulkops.queue.transport import Transport
from bulkops.settings import Settings
from bulkops.store.database import Database


def create_transport(settings: Settings, database: Database) -> Transport:
    """`db`: the queue is a table of the database. `amqp://...`: RabbitMQ, with that table as
    the transactional outbox. Nothing connects before the transport is first used."""
    url = settings.queue_url
    if url == "db":
        return DbTransport(database, lease_seconds=settings.lease_seconds)
    # Anything else is an amqp:// or amqps:// URL: the settings accept no other.
    return AmqpTransport(
        database,
        url,
        exchange_name=settings.amqp_exchange,
        queue_name=settings.amqp_queue,
        prefetch=settings.amqp_prefetch or settings.worker_batch_size,
        republish_after=timedelta(seconds=settings.amqp_republish_after_seconds),
        lease_seconds=settings.lease_seconds,
    )
