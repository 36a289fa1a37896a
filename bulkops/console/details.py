"""A bulk's details: its summary and live progress, its failures grouped by error, retry and
dismiss."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bulkops.api.bulk import bulk_or_404
from bulkops.api.retry import retry_failed
from bulkops.console.log import summarized
from bulkops.console.rendering import STATUS_NAMES, base_path, local_target, render
from bulkops.console.session import Session
from bulkops.criteria import parse_integer
from bulkops.errors import InputError
from bulkops.status import BulkStatus
from bulkops.store import bulk_log
from bulkops.store.lifecycle import ErrorGroup, utc_now

GROUP_ITEMS = 50
"""Operations a group shows when expanded."""
FINISHED = (BulkStatus.FINISHED_SUCCESSFULLY, BulkStatus.FINISHED_WITH_FAILURE)


async def _bulk_summary(
    request: Request, connection: AsyncConnection, session: Session
) -> dict[str, Any]:
    found = await bulk_or_404(request, connection, session.user)
    counts = await bulk_log.status_counts(connection, [found["uuid"]])
    return summarized(found, counts[found["uuid"]])


async def bulk_page(request: Request, session: Session) -> Response:
    async with request.app.state.database.read() as connection:
        summary = await _bulk_summary(request, connection, session)
        groups = await bulk_log.failure_groups(connection, summary["uuid"])
        dismissed = await bulk_log.acknowledged(connection, summary["uuid"])
    retried = request.query_params.get("retried", "")
    context = {
        "bulk": summary,
        "groups": groups,
        "dismissable": summary["status"] in FINISHED and not dismissed,
        # What the retry that led here counted; only a number is shown.
        "retried": retried if retried.isdigit() else None,
        "open": summary["status"] not in FINISHED,
    }
    return render(request, "bulk.html", context, session)


async def bulk_progress(request: Request, session: Session) -> Response:
    """What the details page refreshes while the bulk is open."""
    async with request.app.state.database.read() as connection:
        summary = await _bulk_summary(request, connection, session)
    status = summary["status"]
    return JSONResponse(
        {
            "status": int(status),
            "status_name": STATUS_NAMES[status],
            "counts": summary["counts"],
            "done": summary["done"],
            "total": summary["total"],
        }
    )


def _group_of(values: Mapping[str, str]) -> ErrorGroup:
    """An error group as a form or a link sends it: an empty code is no code, and a message
    is sent only when the group has one."""
    code = values.get("error_code") or None
    message = values.get("result_message") if values.get("has_message") == "1" else None
    return ErrorGroup(None if code is None else parse_integer("error_code", code), message)


async def group_items(request: Request, session: Session) -> Response:
    """The operations of one error group: the fragment a group shows when expanded."""
    state = request.app.state
    group = _group_of(request.query_params)
    async with state.database.read() as connection:
        found = await bulk_or_404(request, connection, session.user)
        rows = await bulk_log.group_operations(connection, found["uuid"], group, GROUP_ITEMS)
    view = state.operation_view
    items = [item | {"row_id": row.id} for item, row in zip(view.detailed(rows), rows, strict=True)]
    context = {"uuid": found["uuid"], "items": items, "limit": GROUP_ITEMS}
    return render(request, "group.html", context, session)


async def retry(request: Request, session: Session) -> Response:
    """Retry every failed operation of the bulk, those of one error group, or one."""
    form: dict[str, str] = request.state.form
    scope = form.get("scope")
    error_group, operation_ids = None, None
    if scope == "group":
        error_group = _group_of(form)
    elif scope == "operation":
        operation_ids = [parse_integer("operation_id", form.get("operation_id", ""))]
    elif scope != "all":
        raise InputError('Choose what to retry: "all", "group" or "operation".')
    count = await retry_failed(
        request, session.user, error_group=error_group, operation_ids=operation_ids
    )
    uuid = request.path_params["bulk_uuid"]
    return RedirectResponse(f"{base_path(request)}/bulks/{uuid}?retried={count}", status_code=303)


async def dismiss(request: Request, session: Session) -> Response:
    """Dismiss a finished bulk's notification, as Magento's `Bulk/Acknowledge` does."""
    # IntegrityError: dismissed at the same moment by another request.
    with suppress(IntegrityError):
        async with request.app.state.database.write() as connection:
            found = await bulk_or_404(request, connection, session.user)
            await bulk_log.acknowledge(connection, found["uuid"], utc_now())
    target = local_target(request.state.form.get("next"), base_path(request))
    return RedirectResponse(target, status_code=303)
