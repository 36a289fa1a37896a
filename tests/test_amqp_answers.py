"""Acknowledgements and rejections sent to RabbitMQ after the results are committed: however
the library fails one (the channel closed before or while it was written, the connection
stuck), the worker goes on; only its own cancellation stops it. A worker whose answer raised
used to lose track of the deliveries it held, which then filled its prefetch for good."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.exceptions import ConnectionClosed

from bulkops.queue import amqp
from bulkops.queue.amqp import _tell


async def failing(error: BaseException) -> None:
    raise error


@pytest.mark.parametrize(
    "error",
    [
        # aiormq fails the writes pending on a channel it force-closes with CancelledError.
        asyncio.CancelledError(),
        ChannelInvalidStateError("closed"),
        ConnectionClosed(320, "CONNECTION_FORCED"),
        RuntimeError("connection closed"),
        ConnectionResetError(),
        Exception(),  # what aiormq rejects pending futures with when it has no reason
    ],
    ids=repr,
)
async def test_an_answer_that_fails_is_given_up(error: BaseException) -> None:
    await _tell(failing(error))


async def test_an_answer_never_written_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "ANSWER_SECONDS", 0.01)
    await _tell(asyncio.get_running_loop().create_future())


async def test_the_callers_own_cancellation_goes_through() -> None:
    waiting = asyncio.create_task(_tell(asyncio.get_running_loop().create_future()))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
