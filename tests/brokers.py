"""RabbitMQ for tests: an exchange and a queue of each test's own on the local broker (so
tests cannot see each other's messages), reached through a proxy of the test's own that can be
cut to take the broker away from the processes under test (the broker itself, shared, runs on).
A broker that a test really stops and starts is a node of its own: tests/rabbitmq_node.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from yarl import URL

from tests.proxy import Proxy, proxy_to

AMQP_URL = os.environ.get("BULKOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

T = TypeVar("T")


def _on_channel(url: str, use: Callable[[AbstractChannel], Awaitable[T]]) -> T:
    async def run() -> T:
        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            return await use(await connection.channel())

    return asyncio.run(run())


@dataclass(frozen=True)
class Broker:
    url: str
    exchange: str
    queue: str
    proxy: Proxy | None = None

    def settings(self) -> dict[str, str]:
        """The BULKOPS_* settings (without the prefix) of the `amqp` transport on this queue;
        reconnecting every second rather than every five, so that tests wait less."""
        return {
            "QUEUE_URL": f"{self.url}?reconnect_interval=1",
            "AMQP_EXCHANGE": self.exchange,
            "AMQP_QUEUE": self.queue,
        }

    def messages_ready(self) -> int:
        """Messages waiting in the queue (0 if it was not declared yet)."""

        async def count(channel: AbstractChannel) -> int:
            try:
                declared = await channel.declare_queue(self.queue, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return 0
            return declared.declaration_result.message_count or 0

        return _on_channel(self.url, count)

    def peek(self) -> AbstractIncomingMessage:
        """One waiting message, put back at once."""

        async def get(channel: AbstractChannel) -> AbstractIncomingMessage:
            queue = await channel.declare_queue(self.queue, passive=True)
            message = await queue.get(no_ack=False, fail=True)
            assert message is not None
            await message.nack(requeue=True)
            return message

        return _on_channel(self.url, get)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The broker gone for the processes under test (their connections reset, new ones
        refused), and back after, whatever happens."""
        assert self.proxy is not None, "a broker without a proxy cannot be taken away"
        self.proxy.cut()
        try:
            yield
        finally:
            self.proxy.restore()

    def remove(self) -> None:
        """Delete the test's queue and exchange."""

        async def delete(channel: AbstractChannel) -> None:
            await channel.queue_delete(self.queue)
            await channel.exchange_delete(self.exchange)

        _on_channel(self.url, delete)


def unavailable_reason() -> str | None:
    async def check(_: AbstractChannel) -> None:
        return None

    try:
        _on_channel(AMQP_URL, check)
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as error:
        return f"RabbitMQ is not running at {AMQP_URL}: {error!r}"
    return None


def new_broker(url: str = AMQP_URL, proxy: Proxy | None = None) -> Broker:
    suffix = uuid.uuid4().hex[:12]
    return Broker(url, f"magento.test.{suffix}", f"async.operations.all.test.{suffix}", proxy)


@contextlib.contextmanager
def proxied_broker() -> Iterator[Broker]:
    """A new exchange and queue on the local broker, reached through a proxy of their own;
    both removed at the end."""
    target = URL(AMQP_URL)
    with proxy_to(target.host or "127.0.0.1", target.port or 5672) as proxy:
        url = target.with_host("127.0.0.1").with_port(proxy.port)
        created = new_broker(str(url), proxy)
        try:
            yield created
        finally:
            created.remove()
