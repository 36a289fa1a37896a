"""One robust connection to RabbitMQ, with Magento's topology: a durable topic exchange
(`magento`), a durable queue (`async.operations.all`) bound to it with `async.#`, messages
routed by their operation's topic name.

Publishing uses a channel with publisher confirms (a publication counts only once the broker
has taken the message); consuming uses a channel of its own with manual acknowledgements and a
prefetch limit. The connection reconnects by itself (aio-pika's robust connection): channels,
declarations and consumers are restored, and `on_connected` is called after every
(re)connection so that what waited meanwhile is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError
from yarl import URL

from bulkops.outages import Outage
from bulkops.queue.envelope import CONTENT_TYPE, Envelope

log = logging.getLogger("bulkops.queue")

BINDING_KEY = "async.#"
"""Magento's binding of `async.operations.all`: every asynchronous topic."""

PUBLISH_TIMEOUT_SECONDS = 30.0
"""How long a publication waits for the broker's confirmation before it counts as failed."""

SETUP_RETRY_SECONDS = 5.0
"""Pause before declaring the topology or consuming again after a failed attempt."""


OUTAGE = Outage("RabbitMQ", log)
"""The process's view of its broker (one URL per process)."""


class QuietReconnects(logging.Filter):
    """aio-pika logs every attempt to reconnect, and aiormq the traceback of every lost
    connection: the outage is logged once when it starts and once when it ends instead."""

    LOGGERS = ("aio_pika.robust_connection", "aio_pika.tools", "aiormq.connection")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aio_pika.robust_connection" and "Reconnecting after" in str(record.msg):
            OUTAGE.failed(ConnectionError(record.getMessage()), "connection")
            return False
        if OUTAGE.ongoing:
            return False  # each attempt's failure, said by the outage's start and reminders
        record.exc_info, record.exc_text = None, None
        return True

    @classmethod
    def install(cls) -> None:
        for name in cls.LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(existing, cls) for existing in logger.filters):
                logger.addFilter(cls())


class BrokerUnavailableError(Exception):
    """Not connected to RabbitMQ (not yet, or not at the moment)."""


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


class Broker:
    def __init__(
        self,
        url: str,
        exchange_name: str,
        queue_name: str,
        prefetch: int,
        on_connected: Callable[[], None],
    ) -> None:
        self.url = url
        self.exchange_name = exchange_name
        self.queue_name = queue_name
        self.prefetch = max(prefetch, 1)
        self.on_connected = on_connected
        self._connection: AbstractRobustConnection | None = None
        # The robust connection holds its channels weakly: these references keep them.
        self._publishing: AbstractRobustChannel | None = None
        self._consuming: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._queue: AbstractRobustQueue | None = None
        self._ready = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect in the background, retrying until the broker answers; once is enough."""
        if self._connecting is None:
            QuietReconnects.install()
            self._connecting = asyncio.create_task(self._connect())

    def consume(self, on_message: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> None:
        """Start consuming in the background once connected; once is enough."""
        self.start()
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(on_message))

    @property
    def connected(self) -> bool:
        """Connected now, the topology declared."""
        channel = self._publishing
        return self._exchange is not None and channel is not None and not channel.is_closed

    async def wait_connected(self, timeout: float) -> bool:
        """Whether connected (once at least) within `timeout`."""
        self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def publish(self, envelope: Envelope, message_id: str) -> None:
        """Publish persistently and wait for the broker's confirmation; raises if the broker
        did not take the message (not connected, unroutable, refused, no answer in time)."""
        if self._exchange is None:
            raise BrokerUnavailableError("not connected to RabbitMQ yet")
        message = aio_pika.Message(
            envelope.encode(),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            app_id="bulkops",
            headers={"topic_name": envelope.topic_name},
        )
        # Mandatory: a message no queue would take is returned, and counts as not published.
        await self._exchange.publish(
            message, envelope.topic_name, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS
        )

    async def messages_ready(self) -> int:
        """Messages waiting in the queue, not delivered to any consumer."""
        if self._queue is None or not self.connected:
            raise BrokerUnavailableError("not connected to RabbitMQ")
        try:
            declared = await asyncio.wait_for(self._queue.declare(), PUBLISH_TIMEOUT_SECONDS)
        except (AMQPError, ConnectionError, TimeoutError) as error:
            raise BrokerUnavailableError(f"cannot count the queue's messages: {error!r}") from error
        return declared.message_count or 0

    async def close(self) -> None:
        """Closing the connection hands every unacknowledged delivery back to the broker."""
        tasks = [task for task in (self._connecting, self._consumer) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

    async def _connect(self) -> None:
        name = f"bulkops {socket.gethostname()}:{os.getpid()}"
        # fail_fast off: the first connection is retried like a reconnection (every
        # `reconnect_interval` seconds, 5 unless the URL says otherwise).
        try:
            connection = aio_pika.RobustConnection(
                make_url(self.url, fail_fast=False), client_properties={"connection_name": name}
            )
            self._connection = connection
            await connection.connect()
        except Exception:
            # A URL it cannot use, say: nothing will be published until it is fixed.
            log.exception("cannot connect to RabbitMQ at %s", redacted(self.url))
            raise
        OUTAGE.ended()
        log.info("connected to RabbitMQ at %s", redacted(self.url))
        while True:
            try:
                await self._declare(connection)
                break
            except Exception as error:
                log.warning("cannot declare the RabbitMQ exchange and queue: %s", error)
                await asyncio.sleep(SETUP_RETRY_SECONDS)
        connection.reconnect_callbacks.add(self._reconnected)
        self._ready.set()
        self.on_connected()

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        channel = self._publishing
        if channel is None or channel.is_closed:
            channel = connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel
            self._publishing = channel
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self.queue_name, durable=True)
        await queue.bind(exchange, BINDING_KEY)
        self._exchange, self._queue = exchange, queue

    def _reconnected(self, *_: object) -> None:
        OUTAGE.ended()
        log.info("reconnected to RabbitMQ at %s", redacted(self.url))
        self.on_connected()

    async def _consume(
        self, on_message: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> None:
        await self._ready.wait()
        assert self._connection is not None
        while True:
            channel: AbstractRobustChannel | None = None
            try:
                channel = self._connection.channel(publisher_confirms=False)
                await channel
                await channel.set_qos(prefetch_count=self.prefetch)
                queue = await channel.declare_queue(self.queue_name, durable=True)
                await queue.consume(on_message)
                self._consuming = channel
                return
            except Exception as error:
                log.warning("cannot consume RabbitMQ queue %s: %s", self.queue_name, error)
                if channel is not None:
                    with contextlib.suppress(Exception):
                        await channel.close()
                await asyncio.sleep(SETUP_RETRY_SECONDS)
