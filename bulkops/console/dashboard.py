"""The dashboard: every operation's status mix as a bar chart the server draws (SVG), what is
still open and since when, what waits in the queue, and over the last 24 hours the operations
finished per minute and the failure rate of each topic (from the finished counters, not the
operations)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bulkops.api.representations import timestamp
from bulkops.console.rendering import refused, render
from bulkops.console.session import Session
from bulkops.console.timeline import start_of_day, timeline
from bulkops.queue.amqp import AmqpTransport
from bulkops.queue.broker import BrokerUnavailableError
from bulkops.queue.transport import Transport
from bulkops.status import OperationStatus
from bulkops.store import dashboard, finished
from bulkops.store.lifecycle import utc_now

TOPICS = 10
"""Topics the failure rate table lists at most."""
BAR_WIDTH = 400
"""The longest bar of the chart, in SVG units."""
BROKER_SECONDS = 2.0
"""How long the page waits for RabbitMQ's count of ready messages."""


def _bars(mix: dict[int, int]) -> list[dict[str, Any]]:
    """One bar per status, in status order, its length relative to the largest count."""
    largest = max(mix.values(), default=0) or 1
    return [
        {
            "status": int(status),
            "count": mix.get(status, 0),
            "width": round(BAR_WIDTH * mix.get(status, 0) / largest),
        }
        for status in OperationStatus
    ]


async def _broker_ready(transport: Transport) -> int | None:
    """Messages ready in RabbitMQ's queue (a passive declare: one round trip); None when the
    broker does not answer in time."""
    if not isinstance(transport, AmqpTransport):
        return None
    try:
        return await asyncio.wait_for(transport.broker.messages_ready(), BROKER_SECONDS)
    except (BrokerUnavailableError, TimeoutError):
        return None


async def dashboard_page(request: Request, session: Session) -> Response:
    if not session.user.all_bulks:
        return refused(request, session, "The dashboard covers every bulk.", 403)
    state = request.app.state
    now = utc_now()
    since = start_of_day(now)
    async with state.database.read() as connection:
        mix = await dashboard.status_mix(connection)
        still_open = await dashboard.open_operations(connection)
        queued = await dashboard.queued_messages(connection, now)
        minutes = await finished.per_minute(connection, since)
        topics = await finished.by_topic(connection, since, TOPICS)
    oldest = still_open.oldest_start
    broker = isinstance(state.transport, AmqpTransport)
    context = {
        "bars": _bars(mix),
        "total": sum(mix.values()),
        "bar_width": BAR_WIDTH,
        "open_count": still_open.count,
        "oldest_start": timestamp(oldest),
        "oldest_age": None if oldest is None else now - oldest,
        "queued": queued,
        "oldest_due": timestamp(queued.oldest_due),
        "oldest_due_age": None if queued.oldest_due is None else now - queued.oldest_due,
        "broker": broker,
        "broker_ready": await _broker_ready(state.transport) if broker else None,
        "timeline": timeline(minutes, since),
        "topics": topics,
    }
    return render(request, "dashboard.html", context, session)
