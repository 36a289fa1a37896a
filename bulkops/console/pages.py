"""The console's pages: sign-in and sign-out, the Bulk Actions log, a bulk's details with
its failures grouped by error and their retry, and the operation search form."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bulkops.api.bulk import STREAMED_PAGE_SIZE, applied_search, bulk_or_404, searched_page
from bulkops.api.ownership import visible_to
from bulkops.api.representations import timestamp
from bulkops.api.retry import retry_failed
from bulkops.auth.context import BULK_OPERATIONS, GUEST
from bulkops.console import search_form
from bulkops.console.session import CSRF_FIELD, Session, Sessions, tokens_match
from bulkops.criteria import Condition, SearchCriteria, parse_integer, parse_search_criteria
from bulkops.errors import InputError, WebapiError
from bulkops.querystring import parse_query_string
from bulkops.searchable import SEARCHABLE_FIELDS
from bulkops.status import BulkStatus, OperationStatus, UserType
from bulkops.store import bulk_log
from bulkops.store.lifecycle import ErrorGroup, derive_bulk_status, utc_now

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
SIGN_IN_COOKIE = "bulkops_console_sign_in"
"""The sign-in form's CSRF token (double submit: no session exists yet)."""
MAX_FORM_BYTES = 16 * 1024
LOG_PAGE_SIZE = 20
MAX_LOG_PAGE = 10_000
"""Pages further than this are refused: the database would read every bulk before them."""
GROUP_ITEMS = 50
NOTIFICATIONS = 5
"""Finished bulks the log's notifications show at most."""
"""Operations a group shows when expanded."""

STATUS_NAMES = {
    BulkStatus.NOT_STARTED: "Not started",
    BulkStatus.IN_PROGRESS: "In progress",
    BulkStatus.FINISHED_SUCCESSFULLY: "Finished successfully",
    BulkStatus.FINISHED_WITH_FAILURE: "Finished with failure",
}
OPERATION_STATUS_NAMES = {
    OperationStatus.COMPLETE: "Complete",
    OperationStatus.RETRIABLY_FAILED: "Failed, retriable",
    OperationStatus.NOT_RETRIABLY_FAILED: "Failed",
    OperationStatus.OPEN: "Open",
    OperationStatus.REJECTED: "Rejected",
}
USER_TYPE_NAMES = {
    UserType.INTEGRATION: "Integration",
    UserType.ADMIN: "Admin",
    UserType.CUSTOMER: "Customer",
    UserType.GUEST: "Guest",
}

FINISHED = (BulkStatus.FINISHED_SUCCESSFULLY, BulkStatus.FINISHED_WITH_FAILURE)

Page = Callable[[Request, Session], Awaitable[Response]]


def _base(request: Request) -> str:
    return str(request.app.state.settings.console_path)


def _render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    session: Session | None = None,
    status_code: int = 200,
) -> Response:
    values = {
        "base": _base(request),
        "session": session,
        "csrf_field": CSRF_FIELD,
        "status_names": STATUS_NAMES,
        "operation_status_names": OPERATION_STATUS_NAMES,
        "user_type_names": USER_TYPE_NAMES,
        **context,
    }
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


def _refused(request: Request, session: Session | None, message: str, status: int) -> Response:
    return _render(request, "error.html", {"message": message}, session, status)


def signed_in(page: Page, reads_bulks: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in users (that may read bulks, with `reads_bulks`); others go to the
    sign-in form, and a form posted without the session's CSRF token is refused."""

    async def endpoint(request: Request) -> Response:
        session = await _sessions(request).current(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            query = urlencode({"next": target}) if request.method == "GET" else ""
            return RedirectResponse(f"{_base(request)}/sign-in?{query}", status_code=303)
        if request.method == "POST":
            form = await _form(request)
            if not tokens_match(session.csrf_token, form.get(CSRF_FIELD)):
                return _refused(request, session, "The form has expired: reload the page.", 403)
            request.state.form = form
        user = session.user
        reader = user.is_allowed(BULK_OPERATIONS) and (user.all_bulks or user.user_id is not None)
        if reads_bulks and not reader:
            return _refused(request, session, "You are not allowed to see bulks.", 403)
        try:
            return await page(request, session)
        except WebapiError as error:
            return _refused(request, session, str(error), error.status_code)

    return endpoint


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the console posts no other kind); the last of a name."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _local_target(target: str | None, base: str) -> str:
    """Where to go after signing in: a page of the console only (no open redirect)."""
    if target and target.startswith(base + "/") and not target.startswith("//"):
        return target
    return base + "/"


async def sign_in_form(request: Request) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    return _sign_in_page(request, token, None, 200)


def _sign_in_page(request: Request, token: str, error: str | None, status: int) -> Response:
    context = {"sign_in_token": token, "error": error, "next": request.query_params.get("next")}
    response = _render(request, "sign_in.html", context, status_code=status)
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        path=_base(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


async def sign_in(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if not cookie or not tokens_match(cookie, form.get(CSRF_FIELD)):
        return _refused(request, None, "The form has expired: reload the page.", 403)
    state = request.app.state
    try:
        # As the token endpoint: counted against the address, the same lockout.
        await state.rate_limits.count(request, GUEST)
        token = await state.auth.issue_admin_token(
            form.get("username", ""), form.get("password", "")
        )
    except WebapiError as error:
        return _sign_in_page(request, cookie, str(error), error.status_code)
    target = _local_target(request.query_params.get("next"), _base(request))
    response = RedirectResponse(target, status_code=303)
    _sessions(request).start(request, response, token)
    response.delete_cookie(SIGN_IN_COOKIE, path=_base(request))
    return response


async def sign_out(request: Request, session: Session) -> Response:
    await request.app.state.auth.revoke_token(session.token)
    response = RedirectResponse(f"{_base(request)}/sign-in", status_code=303)
    _sessions(request).end(response)
    return response


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
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
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


def _summary(found: RowMapping, counts: Mapping[int, int]) -> dict[str, Any]:
    """A bulk as the log and the details show it, with its derived status and progress."""
    total = max(found["operation_count"], sum(counts.values()))
    done = sum(n for status, n in counts.items() if status != OperationStatus.OPEN)
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
    log_query = bulk_log.LogQuery(
        criteria, _status_of(query.get("status")), (page - 1) * LOG_PAGE_SIZE, LOG_PAGE_SIZE
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
    bulks = [_summary(row, counts[row["uuid"]]) for row in shown]
    filters = {name: query.get(name, "") for name in ("status", "since", "until", "text")}
    filters |= {name: query.get(name, "") for name in ("user_type", "user_id")}

    def page_url(number: int) -> str:
        kept = {name: value for name, value in filters.items() if value}
        return "?" + urlencode(kept | {"page": number})

    context = {
        "bulks": bulks,
        "notifications": [_summary(row, counts[row["uuid"]]) for row in finished],
        "filters": filters,
        "page": page,
        "previous_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if len(found) > LOG_PAGE_SIZE else None,
    }
    return _render(request, "log.html", context, session)


async def _bulk_summary(request: Request, session: Session) -> dict[str, Any]:
    state = request.app.state
    async with state.database.read() as connection:
        found = await bulk_or_404(request, connection, session.user)
        counts = await bulk_log.status_counts(connection, [found["uuid"]])
    return _summary(found, counts[found["uuid"]])


async def bulk_page(request: Request, session: Session) -> Response:
    summary = await _bulk_summary(request, session)
    async with request.app.state.database.read() as connection:
        groups = await bulk_log.failure_groups(connection, summary["uuid"])
        dismissed = await bulk_log.acknowledged(connection, summary["uuid"])
    context = {
        "bulk": summary,
        "groups": groups,
        "dismissable": summary["status"] in FINISHED and not dismissed,
        "retried": request.query_params.get("retried"),
        "open": summary["status"] not in FINISHED,
    }
    return _render(request, "bulk.html", context, session)


async def bulk_progress(request: Request, session: Session) -> Response:
    """What the details page refreshes while the bulk is open."""
    summary = await _bulk_summary(request, session)
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
    items = [view.detailed(row) | {"row_id": row.id} for row in rows]
    context = {"uuid": found["uuid"], "items": items, "limit": GROUP_ITEMS}
    return _render(request, "group.html", context, session)


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
    return RedirectResponse(f"{_base(request)}/bulks/{uuid}?retried={count}", status_code=303)


async def dismiss(request: Request, session: Session) -> Response:
    """Dismiss a finished bulk's notification, as Magento's `Bulk/Acknowledge` does."""
    # IntegrityError: dismissed at the same moment by another request.
    with suppress(IntegrityError):
        async with request.app.state.database.write() as connection:
            found = await bulk_or_404(request, connection, session.user)
            await bulk_log.acknowledge(connection, found["uuid"], utc_now())
    target = _local_target(request.state.form.get("next"), _base(request))
    return RedirectResponse(target, status_code=303)


async def search_page(request: Request, session: Session) -> Response:
    """The operation search form and, once sent, its results, computed as the API computes
    them, with the API's URL and a curl line for the same search."""
    state = request.app.state
    context: dict[str, Any] = {
        "values": None,
        "fields": list(SEARCHABLE_FIELDS),
        "conditions": [condition.value for condition in Condition],
        "groups": search_form.GROUPS,
        "filters_per_group": search_form.FILTERS,
    }
    try:
        values = search_form.form_values(request.scope["query_string"])
    except InputError as error:
        return _render(request, "search.html", context | {"error": str(error)}, session, 400)
    if values is None:
        return _render(request, "search.html", context, session)
    query = search_form.query_string(values)
    api_url = f"{str(request.base_url).rstrip('/')}/rest/V1/bulk?{query}"
    context |= {
        "values": values,
        "api_url": api_url,
        "curl": f"curl -g -H \"Authorization: Bearer $TOKEN\" '{api_url}'",
    }
    try:
        criteria = parse_search_criteria(parse_query_string(query), state.settings.page_limits)
        if not criteria.page_size or criteria.page_size > STREAMED_PAGE_SIZE:
            raise InputError(
                "The console shows pages of 1 to %max operations.", {"max": STREAMED_PAGE_SIZE}
            )
        items, total_count = await searched_page(
            state, applied_search(state, session.user, criteria)
        )
    except InputError as error:
        return _render(request, "search.html", context | {"error": str(error)}, session, 400)
    context |= {"items": items, "total_count": total_count}
    return _render(request, "search.html", context, session)
