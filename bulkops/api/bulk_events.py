"""`GET /V1/bulk/:bulkUuid/events`: a bulk's progress as server-sent events (bulkops' own),
for a client to follow a bulk without polling its status.

Each event's data is the bulk's operations counted by status (`counts`, every status from 1
to 5, as `operation-status/:status` counts them), with its derived status and
`operation_count`; its `id` is the bulk's version. The first `progress` event is sent at
once, then one each time the counts change; `finished` is the last, once no accepted
operation is open (bulk status 2 or 3), and the stream ends. A bulk deleted meanwhile ends it
with `deleted`. A comment line is sent after `BULKOPS_EVENTS_HEARTBEAT_SECONDS` without an
event. The events come from the process's one watcher (`bulkops.api.bulk_watch`).

Who may: as the status route; another's bulk is missing (404) as an unknown one."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import ClosingStreamingResponse, bulk_or_404
from bulkops.api.bulk_watch import BulkWatch, Progress, read_progress
from bulkops.api.etags import NO_CACHE
from bulkops.status import OperationStatus

EVENT_STREAM = "text/event-stream"
PROGRESS, FINISHED, DELETED = "progress", "finished", "deleted"
HEARTBEAT = b": heartbeat\n\n"


async def bulk_events(request: Request) -> Response:
    user = await require_bulk_reader(request)
    state = request.app.state
    async with state.database.read() as connection:
        uuid = (await bulk_or_404(request, connection, user))["uuid"]
    # Listening before the first read: a change after it is told to the listener.
    watch: BulkWatch = state.bulk_watch
    heartbeat = state.settings.events_heartbeat_seconds

    async def events() -> AsyncGenerator[bytes, None]:
        with watch.listen(uuid) as listener:
            progress: Progress | None = await read_progress(state.database, uuid)
            sent = -1
            while True:
                if progress is None:
                    yield HEARTBEAT
                elif progress.version > sent or progress.finished:
                    yield _event(uuid, progress)
                    if progress.finished:
                        return
                    sent = progress.version
                progress = await listener.next(heartbeat)

    headers = {"Cache-Control": NO_CACHE, "X-Accel-Buffering": "no"}
    return ClosingStreamingResponse(events(), media_type=EVENT_STREAM, headers=headers)


def _event(uuid: str, progress: Progress) -> bytes:
    if progress.status is None:
        return f"event: {DELETED}\ndata: {json.dumps({'bulk_uuid': uuid})}\n\n".encode()
    name = FINISHED if progress.finished else PROGRESS
    data: dict[str, Any] = {
        "bulk_uuid": uuid,
        "status": int(progress.status),
        "operation_count": progress.operation_count,
        "counts": {str(int(s)): progress.counts.get(s, 0) for s in OperationStatus},
    }
    return f"event: {name}\nid: {progress.version}\ndata: {json.dumps(data)}\n\n".encode()


routes = [Route("/V1/bulk/{bulk_uuid}/events", bulk_events, methods=["GET"])]
