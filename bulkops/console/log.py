"""The Bulk Actions log: bulks newest first (or sorted by start time or description either
way), filtered, in pages, with the signed-in user's notifications of finished bulks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import RowMapping
from starlette.requests import Request
from starlette.responses import Response

from bulkops.api.ownership import visible_to
from bulkops.api.representations import timestamp
from bulkops.console.rendering import render
from bulkops.console.session import Session
from bulkops.criteria import SearchCriteria, parse_integer, parse_search_criteria
from bulkops.errors import InputError
from bulkops.status import BulkStatus, OperationStatus, derive_bulk_status
from bulkops.store import bulk_log
from bulkops.store.search import escape_like

LOG_PAGE_SIZE = 20
MAX_LOG_PAGE = 10_000
"""Pages further than this are refused: the database would read every bulk before them."""
NOTIFICATIONS = 5
"""Finished bulks the log's notifications show at most."""
FILTERS = ("status", "since", "until", "user_type", "user_id", "text")
DIRECTIONS = {"asc": True, "desc": False}


def _one_filter(field: str, value: str, condition: str) -> dict[str, Any]:
    return {"filters": {"0": {"field": field, "value": value, "conditionType": condition}}}


def _log_criteria(query: Mapping[str, str]) -> SearchCriteria:
    """The log's filters as an operation search spells them, so that they are read (dates
    included) and applied as the API reads and applies them."""
    groups: list[dict[str, Any]] = []
    if query.get("since"):
        groups.append(_one_filter("start_time", query["since"], "gteq"))
    if query.get("until"):
        groups.append(_one_filter("start_time", query["until"], "lteq"))
    if query.get("user_type"):
        groups.append(_one_filter("user_type", query["user_type"], "eq"))
    if query.get("user_id"):
        groups.append(_one_filter("user_id", query["user_id"], "eq"))
    if text := query.get("text", "").strip():
        escaped = escape_like(text)
        groups.append(
            {
                "filters": {
                    "0": {"field": "description", "value": f"%{escaped}%", "conditionType": "like"},
                    "1": {"field": "bulk_uuid", "value": text, "conditionType": "eq"},
                }
            }
        )
    sent = {"filterGroups": {str(n): group for n, group in enumerate(groups)}}
    return parse_search_criteria({"searchCriteria": sent})


def _status_of(value: str | None) -> BulkStatus | None:
    if not value:
        return None
    try:
        return BulkStatus(parse_integer("status", value))
    except ValueError:
        raise InputError("There is no bulk status %status.", {"status": value}) from None


def _sort_of(query: Mapping[str, str]) -> tuple[str, bool]:
    """The log's sort (`sort`, one of `bulk_log.SORTS`) and whether ascending (`direction`):
    newest first when not given."""
    sort = query.get("sort") or "start_time"
    direction = query.get("direction") or "desc"
    if sort not in bulk_log.SORTS:
        raise InputError(
            'The log cannot be sorted by "%sort": %allowed.',
            {"sort": sort, "allowed": ", ".join(bulk_log.SORTS)},
        )
    if direction not in DIRECTIONS:
        raise InputError(
            'Sort direction "%direction" is invalid: asc or desc.', {"direction": direction}
        )
    return sort, DIRECTIONS[direction]


def summarized(found: RowMapping, counts: Mapping[int, int]) -> dict[str, Any]:
    """A bulk as the log and the details show it, with its derived status and progress."""
    # Rejected operations are not the bulk's (see `derive_bulk_status`).
    accepted = {status: n for status, n in counts.items() if status != OperationStatus.REJECTED}
    total = max(found["operation_count"], sum(accepted.values()))
    done = sum(n for status, n in accepted.items() if status != OperationStatus.OPEN)
    return {
        "uuid": found["uuid"],
        "description": found["description"],
        "start_time": timestamp(found["start_time"]),
        "user_type": found["user_type"],
        "user_id": found["user_id"],
        "status": derive_bulk_status(found["operation_count"], counts),
        "counts": {int(status): counts.get(status, 0) for status in OperationStatus},
        "total": total,
        "done": min(done, total),
    }


async def bulk_log_page(request: Request, session: Session) -> Response:
    query = request.query_params
    page = max(1, parse_integer("page", query.get("page") or "1"))
    if page > MAX_LOG_PAGE:
        raise InputError("The log has at most %max pages: filter instead.", {"max": MAX_LOG_PAGE})
    state = request.app.state
    criteria = visible_to(session.user, _log_criteria(query))
    sort, ascending = _sort_of(query)
    log_query = bulk_log.LogQuery(
        criteria,
        _status_of(query.get("status")),
        (page - 1) * LOG_PAGE_SIZE,
        LOG_PAGE_SIZE,
        sort,
        ascending,
    )
    user = session.user
    async with state.database.read() as connection:
        found = await bulk_log.bulk_page(connection, log_query, state.database.backend)
        shown = found[:LOG_PAGE_SIZE]
        finished: Sequence[RowMapping] = []
        if user.user_id is not None:
            finished = await bulk_log.notifications(
                connection, int(user.user_type), user.user_id, NOTIFICATIONS
            )
        uuids = [row["uuid"] for row in [*shown, *finished]]
        counts = await bulk_log.status_counts(connection, uuids)
    bulks = [summarized(row, counts[row["uuid"]]) for row in shown]
    filters = {name: query.get(name, "") for name in FILTERS}
    kept = {name: value for name, value in filters.items() if value}
    direction = "asc" if ascending else "desc"

    def page_url(number: int) -> str:
        return "?" + urlencode(kept | {"sort": sort, "direction": direction, "page": number})

    def sort_link(column: str) -> dict[str, str]:
        """The first page sorted by `column`: the other way round if it is the sort now,
        else in its natural order (the newest, or A to Z, first)."""
        if column == sort:
            turned = "desc" if ascending else "asc"
        else:
            turned = "desc" if column == "start_time" else "asc"
        url = "?" + urlencode(kept | {"sort": column, "direction": turned})
        return {"url": url, "next": "ascending" if turned == "asc" else "descending"}

    context = {
        "bulks": bulks,
        "notifications": [summarized(row, counts[row["uuid"]]) for row in finished],
        "filters": filters,
        "page": page,
        "sort": sort,
        "ascending": ascending,
        "sort_links": {column: sort_link(column) for column in bulk_log.SORTS},
        "previous_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if len(found) > LOG_PAGE_SIZE else None,
    }
    return render(request, "log.html", context, session)
