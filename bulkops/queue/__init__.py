"""Carrying open operations to workers: one small interface, and its `db` transport."""

from __future__ import annotations

from bulkops.queue.db import DbTransport
from bulkops.queue.transport import Delivery, Requeue, Transport
from bulkops.settings import Settings
from bulkops.store.database import Database


def create_transport(settings: Settings, database: Database) -> Transport:
    """The configured transport, with leases in a name of its own. Only `db` exists yet."""
    return DbTransport(database, lease_seconds=settings.lease_seconds)


__all__ = ["DbTransport", "Delivery", "Requeue", "Transport", "create_transport"]
