"""The dashboard: every operation's status mix as a bar chart the server draws (SVG), what is
still open and since when, and the topics that fail most."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bulkops.api.representations import timestamp
from bulkops.console.rendering import refused, render
from bulkops.console.session import Session
from bulkops.status import OperationStatus
from bulkops.store import dashboard
from bulkops.store.lifecycle import utc_now

TOPICS = 10
"""Topics the failures table lists at most."""
BAR_WIDTH = 400
"""The longest bar of the chart, in SVG units."""


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


async def dashboard_page(request: Request, session: Session) -> Response:
    if not session.user.all_bulks:
        return refused(request, session, "The dashboard covers every bulk.", 403)
    async with request.app.state.database.read() as connection:
        mix = await dashboard.status_mix(connection)
        still_open = await dashboard.open_operations(connection)
        topics = await dashboard.failures_by_topic(connection, TOPICS)
    oldest = still_open.oldest_start
    context = {
        "bars": _bars(mix),
        "total": sum(mix.values()),
        "bar_width": BAR_WIDTH,
        "open_count": still_open.count,
        "oldest_start": timestamp(oldest),
        "oldest_age": None if oldest is None else utc_now() - oldest,
        "topics": topics,
    }
    return render(request, "dashboard.html", context, session)
