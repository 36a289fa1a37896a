"""`GET /V1/bulk/:bulkUuid/failed?format=jsonl|csv`: a bulk's failed operations (status 2,
retriably failed, and 3, failed) with their items, to correct them and send them back
(`POST /V1/bulk/:bulkUuid/resubmit`).

Streamed as the rows are read, through the search's own cursor (`search.open_stream`), so
the memory taken is the same for ten failures as for a million. Items are shown as searches
show them: their secrets masked. Who may: whoever reads the bulk (another's is missing)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import ClosingStreamingResponse, bulk_or_404
from bulkops.api.representations import OperationView
from bulkops.criteria import Condition, Filter, FilterGroup, SearchCriteria
from bulkops.errors import InputError
from bulkops.services.redaction import ITEM_KEY
from bulkops.store import search
from bulkops.store.database import Database
from bulkops.store.resubmissions import FAILED_STATUSES
from bulkops.store.tables import operation

FORMAT = "format"
COLUMNS = (
    *search.ITEM_COLUMNS,
    operation.c.resubmitted_to_bulk,
    operation.c.resubmitted_to_key,
)
CSV_HEADER = (
    "id",
    "operation_key",
    "topic_name",
    "status",
    "error_code",
    "result_message",
    "payload",
    "resubmitted_to_bulk_uuid",
    "resubmitted_to_operation_key",
)


def failed_of(bulk_uuid: str) -> SearchCriteria:
    """The search for the bulk's failed operations, in id order."""
    return SearchCriteria(
        filter_groups=(
            FilterGroup((Filter("bulk_uuid", None, None, Condition.EQ, bulk_uuid),)),
            FilterGroup(
                (Filter("status", None, None, Condition.IN, tuple(map(int, FAILED_STATUSES))),)
            ),
        )
    )


def item_text(shown: str | None) -> str | None:
    """The item an operation was submitted with, as JSON text, from its payload as shown:
    Magento's payload holds it in `meta_information`. A payload of another shape is given
    whole."""
    if shown is None:
        return None
    try:
        document = orjson.loads(shown)
    except orjson.JSONDecodeError:
        return shown
    if isinstance(document, dict) and isinstance(document.get(ITEM_KEY), str):
        item: str = document[ITEM_KEY]
        return item
    return shown


def _json_value(text: str | None) -> Any:
    """JSON text as it is, inside a JSON line; text that is not JSON (a payload masked
    whole) as a string."""
    if text is None:
        return None
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    # As written, not parsed and written again: integers past 64 bits stay as they are.
    return orjson.Fragment(text)


@dataclass(frozen=True, slots=True)
class ExportFormat:
    content_type: str
    extension: str
    head: bytes
    lines: Callable[[OperationView, Sequence[Row[Any]]], bytes]


def _jsonl(view: OperationView, rows: Sequence[Row[Any]]) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "id": getattr(row, view.id_field),
                "operation_key": row.operation_key,
                "topic_name": row.topic_name,
                "status": row.status,
                "error_code": row.error_code,
                "result_message": row.result_message,
                "payload": _json_value(item_text(view.payloads.shown(row.serialized_data))),
                "resubmitted_to": _resubmitted_to(row),
            }
        )
        + b"\n"
        for row in rows
    )


def _resubmitted_to(row: Row[Any]) -> dict[str, Any] | None:
    if row.resubmitted_to_bulk is None:
        return None
    return {"bulk_uuid": row.resubmitted_to_bulk, "operation_key": row.resubmitted_to_key}


def _csv_text(rows: Sequence[Sequence[Any]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue().encode()


def _csv(view: OperationView, rows: Sequence[Row[Any]]) -> bytes:
    return _csv_text(
        [
            (
                getattr(row, view.id_field),
                row.operation_key,
                row.topic_name,
                row.status,
                row.error_code,
                row.result_message,
                item_text(view.payloads.shown(row.serialized_data)),
                row.resubmitted_to_bulk,
                row.resubmitted_to_key,
            )
            for row in rows
        ]
    )


FORMATS = {
    "jsonl": ExportFormat("application/x-ndjson", "jsonl", b"", _jsonl),
    # RFC 4180: CRLF line ends, a header line.
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", _csv_text([CSV_HEADER]), _csv),
}
DEFAULT_FORMAT = "jsonl"


def _format(request: Request) -> ExportFormat:
    name = request.query_params.get(FORMAT, DEFAULT_FORMAT)
    found = FORMATS.get(name)
    if found is None:
        raise InputError(
            'The format "%format" is not one of: %supported.',
            {"format": name, "supported": ", ".join(FORMATS)},
        )
    return found


async def failed_items(request: Request) -> Response:
    user = await require_bulk_reader(request)
    export = _format(request)
    state = request.app.state
    view: OperationView = state.operation_view
    database: Database = state.database

    async def body() -> AsyncGenerator[bytes, None]:
        async with database.read() as connection:
            found = await bulk_or_404(request, connection, user)
            stream = await search.open_stream(
                connection, failed_of(found["uuid"]), database.backend, columns=COLUMNS
            )
            yield export.head
            async for rows in stream.batches():
                yield export.lines(view, rows)

    chunks = body()
    # The bulk is found (or the 404 raised) and the query run before answering.
    head = await anext(chunks)

    async def content() -> AsyncGenerator[bytes, None]:
        try:
            yield head
            async for chunk in chunks:
                yield chunk
        finally:
            # Ends the read transaction even if the client left mid-way.
            await chunks.aclose()

    response = ClosingStreamingResponse(content(), media_type=export.content_type)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{request.path_params["bulk_uuid"]}-failed.{export.extension}"'
    )
    return response


routes = [Route("/V1/bulk/{bulk_uuid}/failed", failed_items, methods=["GET"])]
