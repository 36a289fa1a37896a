"""What carries open operations from the store to workers.

A bulk's operations and their messages are committed in one transaction, into the queue table
(`bulkops.store.queue`). With the `db` transport that table is the queue itself. A broker
transport (`amqp`, RabbitMQ) uses it as the transactional outbox instead: `announce` (after a
submission's commit) and `relay` publish its rows and delete them once the broker confirmed
them, `receive` takes messages the broker pushed, `settle` writes what must outlive the
delivery (a retry's delayed message goes back into the outbox) and `confirm` acknowledges to
the broker once the results are committed. `receive` and `settle` run in the worker's
database transactions, so that the `db` transport's leases and deletions commit together with
the operations' changes. Delivery is at least once either way; results
are recorded idempotently, so a message delivered again after a crash does no harm.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message handed to a worker: the operation to process."""

    message_id: int
    """The transport's name for this delivery (the queue row; a broker's own count)."""
    operation_id: int
    topic_name: str
    attempts: int
    """Deliveries of this message so far, this one included."""


@dataclass(frozen=True, slots=True)
class Requeue:
    """A delivery to be made again, not before `available_at` (a retry's backoff)."""

    delivery: Delivery
    available_at: datetime
    attempts: int
    """Deliveries counted as attempts so far: the next one counts on top of them."""


class Transport(ABC):
    """One worker's (or one relay's) link to the queue; leases are held in its name."""

    @abstractmethod
    async def relay(self) -> int:
        """Publish what is waiting to be published, and give every open operation that has no
        message a new one (never published, its message lost, or inserted by other means).
        Answers how many operations were published. A broker transport cannot see the
        messages in the broker, so it can only presume one lost (`AmqpTransport.relay`)."""

    @abstractmethod
    def announce(self) -> None:
        """Messages were just committed: publish them soon, in the background, without
        raising (what cannot be published now waits for the relay)."""

    async def wait(self, timeout: float) -> None:
        """Until `receive` may have deliveries. A transport that cannot tell (a table that
        other processes write) waits `timeout`."""
        await asyncio.sleep(timeout)

    @abstractmethod
    async def receive(
        self, connection: AsyncConnection, limit: int, in_hand: Collection[int] = ()
    ) -> Sequence[Delivery]:
        """Up to `limit` deliveries, leased: no other worker gets them until this worker
        settles or releases them, or its lease runs out (it died). Called in the write
        transaction that marks their operations started; if it fails, the deliveries must be
        released. `in_hand`: operations this worker holds already; a delivery of one may come
        again (a broker's redelivery), but nothing behind it in its order group is leased
        with it: those come with the first."""

    @abstractmethod
    async def extend(self, deliveries: Sequence[Delivery]) -> int:
        """Keep the leases of deliveries still being worked on; answers how many were still
        held (fewer means a lease ran out and the message may be with another worker)."""

    @abstractmethod
    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Hand back deliveries that were not processed (on shutdown): they are delivered
        again at once, and this delivery does not count as an attempt."""

    @abstractmethod
    async def settle(
        self, connection: AsyncConnection, done: Sequence[Delivery], requeued: Sequence[Requeue]
    ) -> None:
        """In the transaction that records the operations' results: `done` are finished with
        (their operation is final), `requeued` are to be delivered again later."""

    @abstractmethod
    async def drop(self, deliveries: Sequence[Delivery]) -> None:
        """Let go of deliveries received again for operations another of this worker's
        deliveries carried, which is to be retried (its own message carries the retry)."""

    @abstractmethod
    async def confirm(self, done: Sequence[Delivery], requeued: Sequence[Requeue]) -> None:
        """After that transaction committed: tell the broker (acknowledgements)."""

    @abstractmethod
    async def close(self) -> None:
        """Let go of connections held outside the database."""
