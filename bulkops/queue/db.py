"""The `db` transport: the queue is a table of the service's own database.

Safe with any number of worker processes: leasing happens in a write transaction (on SQLite
the single writer; on PostgreSQL and MySQL with `FOR UPDATE SKIP LOCKED`), so no message is
delivered to two workers at once while its lease lasts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.queue.transport import Delivery, Requeue, Transport
from bulkops.store import queue
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now

RELAY_BATCH = 1000
"""Operations given messages per write transaction by the relay."""


class DbTransport(Transport):
    def __init__(
        self,
        database: Database,
        lease_seconds: float,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.lease = timedelta(seconds=lease_seconds)
        # Unique, and telling an operator which process holds a message.
        self.owner = owner or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock

    async def relay(self) -> int:
        # Look for operations lacking a message in a read transaction (which never holds up
        # writers), then write each batch in a short write transaction that checks again.
        published, after_id = 0, 0
        while True:
            async with self.database.read() as connection:
                ids = await queue.open_operations_lacking_messages(
                    connection, after_id, RELAY_BATCH
                )
            if not ids:
                return published
            async with self.database.write() as connection:
                published += await queue.enqueue_operations(connection, ids, self.clock())
            after_id = ids[-1]

    def announce(self) -> None:
        """Nothing to publish: committed messages are in the queue already."""

    async def receive(
        self, connection: AsyncConnection, limit: int, in_hand: Collection[int] = ()
    ) -> Sequence[Delivery]:
        now, until = self.clock(), self.clock() + self.lease
        heads = await queue.lease_messages(connection, self.owner, limit, now, until)
        # Up to as many messages behind the heads come along, to be processed in order by
        # this worker rather than one lease after another.
        followers = await queue.lease_followers(
            connection,
            self.owner,
            [
                (row.order_group, row.operation_id)
                for row in heads
                if row.operation_id not in in_hand
            ],
            limit,
            now,
            until,
        )
        return [
            Delivery(
                message_id=row.id,
                operation_id=row.operation_id,
                topic_name=row.topic_name,
                attempts=row.attempts + 1,
            )
            for row in [*heads, *followers]
        ]

    async def extend(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        until = self.clock() + self.lease
        async with self.database.write() as connection:
            return await queue.extend_leases(connection, self.owner, _ids(deliveries), until)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            async with self.database.write() as connection:
                await queue.release_messages(connection, self.owner, _ids(deliveries), self.clock())

    async def settle(
        self, connection: AsyncConnection, done: Sequence[Delivery], requeued: Sequence[Requeue]
    ) -> None:
        await queue.delete_messages(connection, _ids(done))
        await queue.unblock_successors(
            connection, [delivery.operation_id for delivery in done], self.clock()
        )
        await queue.requeue_messages(
            connection,
            self.owner,
            [(r.delivery.message_id, r.available_at, r.attempts) for r in requeued],
        )

    async def drop(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to let go of: a delivery received again is the same row, leased again,
        and the retry requeued it."""

    async def confirm(self, done: Sequence[Delivery], requeued: Sequence[Requeue]) -> None:
        """Nothing to tell: `settle` did it all, in the results' transaction."""

    async def close(self) -> None:
        """Nothing held outside the database."""


def _ids(deliveries: Sequence[Delivery]) -> list[int]:
    return [delivery.message_id for delivery in deliveries]
