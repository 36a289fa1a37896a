"""The `amqp` transport: RabbitMQ carries operations to workers, and the queue table is the
transactional outbox.

A submission commits its operations and their outbox rows in one transaction. The rows are
published (with publisher confirms, deleted once confirmed) right after the commit when the
API announces them, after every (re)connection to the broker, when a retry's delay is over,
and by every worker's periodic relay, so that operations committed while the broker was down
are published when it is back.

A worker's lease on a message is its unacknowledged delivery: the broker hands it to no other
consumer while the worker's channel is open, and gives it back to the queue the moment the
channel closes (the worker died or lost its connection). Acknowledgements are sent only after
the results are committed, so delivery is at least once; an operation final already is never
processed again.

Only the head of an order group is published (`bulkops.store.queue`). The worker that receives
it takes the operations behind it from the outbox, leased there as under the `db` transport,
and processes them after it, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.queue.broker import Broker, BrokerUnavailableError, redacted
from bulkops.queue.envelope import Envelope
from bulkops.queue.outbox import NotPublishedError, Outbox
from bulkops.queue.transport import Delivery, Requeue, Transport
from bulkops.store import queue
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now

log = logging.getLogger("bulkops.queue")

FIRST_CONNECTION_SECONDS = 5.0
"""How long the relay waits for a process's first connection before it gives up this time."""

ANSWER_SECONDS = 10.0
"""How long an acknowledgement or rejection may take to be written before it is given up."""


class AmqpTransport(Transport):
    def __init__(
        self,
        database: Database,
        url: str,
        *,
        exchange_name: str,
        queue_name: str,
        prefetch: int,
        republish_after: timedelta,
        lease_seconds: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.republish_after = republish_after
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.broker = Broker(url, exchange_name, queue_name, prefetch, self.announce)
        # Unique, and telling an operator which process claimed or leased an outbox row.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.outbox = Outbox(database, self.broker, self.owner, republish_after, clock)
        self._arrived: deque[AbstractIncomingMessage] = deque()
        self._arrival = asyncio.Event()
        self._held: dict[int, AbstractIncomingMessage] = {}
        """Received and not yet acknowledged, by delivery id."""
        self._followers: dict[int, int] = {}
        """Outbox rows leased behind a received head: their queue row id, by delivery id."""
        self._delivery_ids = itertools.count(1)
        self._announced = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._due: dict[datetime, asyncio.TimerHandle] = {}
        self._successors_due = False
        """Settled operations made others due: publish them once the settlement is committed."""
        self._closed = False

    async def relay(self) -> int:
        """Publish the outbox; then, if nothing else is under way, give a new message to the
        open operations whose message seems lost.

        What this relay knows: the outbox (rows not published yet, and retries' rows) and
        how many messages wait in the queue. What it cannot know: whether a given operation
        has a message in the broker, waiting in the queue or delivered to a worker and not yet
        acknowledged. So an open operation with no outbox row is presumed to have lost its
        message only if all of these hold:

        - it was not started since it was (re)opened: a started one is, or was, held by a
          worker; if its message is lost, the periodic job marks it failed once it has been
          open `open_operation_timeout_hours`, as Magento does;
        - no message waits in the queue, so it is not behind a backlog;
        - this pass published nothing, whose messages may be on their way to a worker;
        - it has not changed for `republish_after`: a message delivered to a busy worker may
          wait unstarted in its prefetch buffer.

        Such an operation is published again. Had its message not been lost after all, the
        operation is delivered twice: the second delivery finds it final, or processes it
        again (delivery is at least once)."""
        if not await self.broker.wait_connected(FIRST_CONNECTION_SECONDS):
            log.warning("RabbitMQ at %s does not answer yet", redacted(self.broker.url))
            return 0
        published = 0
        try:
            published = await self.outbox.publish()
            if published or await self.broker.messages_ready():
                return published
            recovered = await self.outbox.recover_lost(self.republish_after)
            if recovered:
                log.warning("publishing again %d open operations with no message", recovered)
                published += await self.outbox.publish()
        except (NotPublishedError, BrokerUnavailableError) as error:
            log.warning("relay stopped, the outbox keeps what is left: %s", error)
        return published

    def announce(self) -> None:
        """Publish the outbox soon, in the background; announcements made meanwhile are
        served by the same pass."""
        if self._closed:
            return
        if self._publisher is None:
            self.broker.start()
            self._publisher = asyncio.create_task(self._publish_announced())
        self._announced.set()

    async def wait(self, timeout: float) -> None:
        """Until a message arrives: the broker pushes them, there is nothing to poll."""
        self.broker.consume(self._on_message)
        await self._arrival.wait()

    async def receive(
        self, connection: AsyncConnection, limit: int, in_hand: Collection[int] = ()
    ) -> Sequence[Delivery]:
        self.broker.consume(self._on_message)
        deliveries: list[Delivery] = []
        heads: list[tuple[int | None, int]] = []
        while self._arrived and len(deliveries) < limit:
            message = self._arrived.popleft()
            if not _on_open_channel(message):
                continue  # its channel closed: the broker has put it back in the queue
            try:
                envelope = Envelope.decode(message.body)
            except ValueError as error:
                log.error("dropping a message that is not an operation's: %s", error)
                await _tell(message.reject(requeue=False))
                continue
            delivery = Delivery(
                message_id=next(self._delivery_ids),
                operation_id=envelope.operation_id,
                topic_name=envelope.topic_name,
                attempts=envelope.attempts + 1,
            )
            self._held[delivery.message_id] = message
            deliveries.append(delivery)
            if envelope.operation_id not in in_hand:
                heads.append((envelope.order_group, envelope.operation_id))
        if not self._arrived:
            self._arrival.clear()
        now = self.clock()
        for row in await queue.lease_followers(
            connection, self.owner, heads, limit, now, now + self.lease
        ):
            delivery = Delivery(
                message_id=next(self._delivery_ids),
                operation_id=row.operation_id,
                topic_name=row.topic_name,
                attempts=row.attempts + 1,
            )
            self._followers[delivery.message_id] = row.id
            deliveries.append(delivery)
        return deliveries

    async def extend(self, deliveries: Sequence[Delivery]) -> int:
        """A received delivery is held as long as its channel is open; its row, if its group
        keeps one, and the rows leased behind it are held a while longer."""
        received = [d for d in deliveries if d.message_id in self._held]
        followers = [
            self._followers[d.message_id] for d in deliveries if d.message_id in self._followers
        ]
        now = self.clock()
        async with self.database.write() as connection:
            await queue.hold_published(
                connection, [d.operation_id for d in received], now + self.republish_after
            )
            kept = await queue.extend_leases(connection, self.owner, followers, now + self.lease)
        # Deliveries confirmed meanwhile are no longer held: not to be counted.
        held = [self._held.get(d.message_id) for d in received]
        return kept + sum(_on_open_channel(message) for message in held if message is not None)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        followers = [
            row_id
            for delivery in deliveries
            if (row_id := self._followers.pop(delivery.message_id, None)) is not None
        ]
        if followers:
            async with self.database.write() as connection:
                await queue.release_messages(connection, self.owner, followers, self.clock())
        for delivery in deliveries:
            message = self._held.pop(delivery.message_id, None)
            if message is not None and _on_open_channel(message):
                await _tell(message.nack(requeue=True))

    async def settle(
        self, connection: AsyncConnection, done: Sequence[Delivery], requeued: Sequence[Requeue]
    ) -> None:
        """A retry goes back into the outbox, due at the end of its delay; the operations
        waiting behind those done in their order group are due now."""
        await queue.enqueue_retries(
            connection,
            [(r.delivery.operation_id, r.available_at, r.attempts) for r in requeued],
        )
        # The publisher may not have deleted a delivered message's row yet (it does so after
        # the broker's confirmation, which can come after the delivery), and a group's row
        # stays until its operation is final; such a row would stay its group's head, and
        # hold back the operations behind it. The rows delivered, not every row of their
        # operations: an operation found final already may have been reopened by a retry
        # meanwhile, and given a new row that must stay.
        await queue.delete_messages(
            connection,
            [row for delivery in done if (row := self._outbox_row(delivery)) is not None],
        )
        finished = [delivery.operation_id for delivery in done]
        if await queue.unblock_successors(connection, finished, self.clock()):
            self._successors_due = True

    def _outbox_row(self, delivery: Delivery) -> int | None:
        """The outbox row a delivery came from: a follower's leased row, or the row a
        received message was published from (its message id)."""
        if delivery.message_id in self._followers:
            return self._followers[delivery.message_id]
        message = self._held.get(delivery.message_id)
        if message is None or message.message_id is None or not message.message_id.isdigit():
            return None
        return int(message.message_id)

    async def drop(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledged, and nothing else: the retry's row in the outbox carries the operation."""
        messages = [
            message
            for delivery in deliveries
            if (message := self._held.pop(delivery.message_id, None)) is not None
        ]
        await asyncio.gather(*(_tell(message.ack()) for message in messages))

    async def confirm(self, done: Sequence[Delivery], requeued: Sequence[Requeue]) -> None:
        settled = [*done, *(requeue.delivery for requeue in requeued)]
        for delivery in settled:
            self._followers.pop(delivery.message_id, None)
        messages = [
            message
            for delivery in settled
            if (message := self._held.pop(delivery.message_id, None)) is not None
        ]
        # All at once rather than one write after another. If a channel closed meanwhile,
        # the broker delivers its messages again, and the worker that gets one finds its
        # operation final (or its retry in the outbox).
        await asyncio.gather(*(_tell(message.ack()) for message in messages))
        for when in {requeue.available_at for requeue in requeued}:
            self._announce_when_due(when)
        if self._successors_due:
            self._successors_due = False
            self.announce()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in self._due.values():
            timer.cancel()
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
        await self.broker.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._arrived.append(message)
        self._arrival.set()

    async def _publish_announced(self) -> None:
        while True:
            await self._announced.wait()
            self._announced.clear()
            if not self.broker.connected:
                continue  # the (re)connection announces again
            try:
                await self.outbox.publish()
            except (NotPublishedError, BrokerUnavailableError) as error:
                log.warning("the outbox keeps what it could not publish: %s", error)
            except Exception:
                log.exception("cannot publish the outbox; the relay will")

    def _announce_when_due(self, when: datetime) -> None:
        if when in self._due:
            return
        # A second more: times are stored in whole seconds.
        delay = max((when - self.clock()).total_seconds(), 0.0) + 1.0
        self._due[when] = asyncio.get_running_loop().call_later(delay, self._now_due, when)

    def _now_due(self, when: datetime) -> None:
        del self._due[when]
        self.announce()


def _on_open_channel(message: AbstractIncomingMessage) -> bool:
    try:
        message.channel  # noqa: B018 (raises once the channel is closed)
    except ChannelInvalidStateError:
        return False
    return True


async def _tell(answer: Awaitable[None]) -> None:
    """Acknowledge or reject, without ever failing or waiting long: the worker's results are
    committed already, and an answer that is lost only means that the broker delivers the
    message again (to a worker that finds its operation final, or its retry in the outbox).

    A channel that closes before or while the answer is written fails it with whatever the
    library has at hand: an AMQPError, a RuntimeError, or the CancelledError that aiormq gives
    the writes pending on a forced close; a stuck connection never completes it. Only the
    cancellation of the caller itself goes through."""
    try:
        await asyncio.wait_for(answer, ANSWER_SECONDS)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception as error:
        log.debug("an answer to RabbitMQ was not written, its message comes back: %r", error)
