"""What every console page shares: its templates and names, the session and CSRF checks
before it runs, and its forms."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bulkops.api.auth import reads_bulks
from bulkops.console.session import CSRF_FIELD, Session, Sessions, tokens_match
from bulkops.errors import WebapiError
from bulkops.status import BulkStatus, OperationStatus, UserType

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
MAX_FORM_BYTES = 16 * 1024
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

Page = Callable[[Request, Session], Awaitable[Response]]


def base_path(request: Request) -> str:
    return str(request.app.state.settings.console_path)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    session: Session | None = None,
    status_code: int = 200,
) -> Response:
    values = {
        "base": base_path(request),
        "session": session,
        "csrf_field": CSRF_FIELD,
        "status_names": STATUS_NAMES,
        "operation_status_names": OPERATION_STATUS_NAMES,
        "user_type_names": USER_TYPE_NAMES,
        **context,
    }
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console_sessions
    return sessions


def refused(request: Request, session: Session | None, message: str, status: int) -> Response:
    return render(request, "error.html", {"message": message}, session, status)


def signed_in(page: Page, needs_bulks: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in users (that may read bulks, with `needs_bulks`); others go to the
    sign-in form, and a form posted without the session's CSRF token is refused."""

    async def endpoint(request: Request) -> Response:
        session = await sessions_of(request).current(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            query = urlencode({"next": target}) if request.method == "GET" else ""
            return RedirectResponse(f"{base_path(request)}/sign-in?{query}", status_code=303)
        if request.method == "POST":
            form = await read_form(request)
            if not tokens_match(session.csrf_token, form.get(CSRF_FIELD)):
                return refused(request, session, "The form has expired: reload the page.", 403)
            request.state.form = form
        if needs_bulks and not reads_bulks(session.user):
            return refused(request, session, "You are not allowed to see bulks.", 403)
        try:
            return await page(request, session)
        except WebapiError as error:
            return refused(request, session, str(error), error.status_code)

    return endpoint


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the console posts no other kind); the last of a name."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def local_target(target: str | None, base: str) -> str:
    """Where to go after signing in: a page of the console only (no open redirect)."""
    if target and target.startswith(base + "/") and not target.startswith("//"):
        return target
    return base + "/"
