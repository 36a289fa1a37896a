"""Carrying open operations to workers: one small interface; the `db` transport (a table of
the database) and the `amqp` one (RabbitMQ, with that table as the outbox)."""

from __future__ import annotations

from bulkops.queue.amqp import AmqpTransport
from bulkops.queue.db import DbTransport
from bulkops.queue.factory import create_transport
from bulkops.queue.transport import Delivery, Requeue, Transport

__all__ = ["AmqpTransport", "DbTransport", "Delivery", "Requeue", "Transport", "create_transport"]
