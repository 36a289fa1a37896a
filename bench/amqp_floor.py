"""RabbitMQ with aio-pika and nothing else: publishing and consuming a run's messages the way
bulkops does (persistent, publisher confirms, manual acknowledgements, a prefetch limit), on an
exchange and a queue of the run's own, which are deleted afterwards."""

from __future__ import annotations

import asyncio
import time

import aio_pika

ROUTING_KEY = "async.tests.api.noopinterface.run.post"
CONFIRM_WINDOW = 1000
"""Messages published before waiting for their confirms: the broker confirms in batches."""


async def _declare(
    channel: aio_pika.abc.AbstractChannel, exchange: str, queue: str
) -> tuple[aio_pika.abc.AbstractExchange, aio_pika.abc.AbstractQueue]:
    declared_exchange = await channel.declare_exchange(
        exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    declared_queue = await channel.declare_queue(queue, durable=True)
    await declared_queue.bind(declared_exchange, "async.#")
    return declared_exchange, declared_queue


async def _publish_and_consume(url: str, exchange: str, queue: str, messages: int, prefetch: int):
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared_exchange, declared_queue = await _declare(channel, exchange, queue)
        began = time.perf_counter()
        for first in range(0, messages, CONFIRM_WINDOW):
            await asyncio.gather(
                *(
                    declared_exchange.publish(
                        aio_pika.Message(
                            f'{{"operation_id": {n}, "topic_name": "{ROUTING_KEY}",'
                            ' "attempts": 0}'.encode(),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=str(n),
                        ),
                        ROUTING_KEY,
                    )
                    for n in range(first, min(first + CONFIRM_WINDOW, messages))
                )
            )
        await channel.set_qos(prefetch_count=prefetch)
        done = asyncio.get_running_loop().create_future()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == messages:
                done.set_result(None)

        await declared_queue.consume(on_message)
        await done
        elapsed = time.perf_counter() - began
        await declared_queue.delete(if_unused=False, if_empty=False)
        await declared_exchange.delete()
        return elapsed


def publish_and_consume(url: str, exchange: str, queue: str, messages: int, prefetch: int) -> float:
    """Seconds to publish `messages` (confirmed) and consume them all (acknowledged)."""
    return asyncio.run(_publish_and_consume(url, exchange, queue, messages, prefetch))


def delete(url: str, exchange: str, queue: str) -> None:
    """Removes a run's exchange and queue (what remains after a worker stopped)."""

    async def run() -> None:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)

    asyncio.run(run())


def is_up(url: str) -> bool:
    async def run() -> None:
        connection = await aio_pika.connect(url, timeout=3)
        await connection.close()

    try:
        asyncio.run(run())
    except Exception:
        return False
    return True
