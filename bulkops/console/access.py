"""The access page: admin users (unlock one, revoke its tokens) and integrations (create one,
its secrets shown once; revoke its token), as `bulkops admin` and `bulkops integration` do,
for users with Magento's resources over them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bulkops.auth.context import ADMIN_USERS, INTEGRATIONS
from bulkops.auth.service import AccountError, IntegrationCredentials
from bulkops.console.rendering import base_path, refused, render
from bulkops.console.session import Session

DONE = {
    "unlocked": "The admin user can sign in again.",
    "admin-revoked": "The admin user's tokens are revoked.",
    "integration-revoked": "The integration's token is revoked.",
}


async def _page(
    request: Request,
    session: Session,
    error: str | None = None,
    credentials: IntegrationCredentials | None = None,
) -> Response:
    user, auth = session.user, request.app.state.auth
    if not (user.is_allowed(ADMIN_USERS) or user.is_allowed(INTEGRATIONS)):
        return refused(request, session, "You are not allowed to manage access.", 403)
    context = {
        "admins": await auth.list_admins() if user.is_allowed(ADMIN_USERS) else None,
        "integrations": (await auth.list_integrations() if user.is_allowed(INTEGRATIONS) else None),
        "done": DONE.get(request.query_params.get("done", "")),
        "error": error,
        "credentials": credentials,
    }
    response = render(request, "access.html", context, session, 400 if error else 200)
    if credentials is not None:
        response.headers["Cache-Control"] = "no-store"  # the secrets are shown once
    return response


async def access_page(request: Request, session: Session) -> Response:
    return await _page(request, session)


def _done(request: Request, what: str) -> Response:
    return RedirectResponse(f"{base_path(request)}/access?done={what}", status_code=303)


async def admin_action(request: Request, session: Session) -> Response:
    """Unlock an admin user, or revoke its tokens."""
    if not session.user.is_allowed(ADMIN_USERS):
        return refused(request, session, "You are not allowed to manage admin users.", 403)
    form, auth = request.state.form, request.app.state.auth
    username, action = form.get("username", ""), form.get("action")
    try:
        if action == "unlock":
            await auth.unlock_admin(username)
            return _done(request, "unlocked")
        if action == "revoke":
            await auth.revoke_admin_tokens(username)
            return _done(request, "admin-revoked")
    except AccountError as error:
        return await _page(request, session, str(error))
    return await _page(request, session, 'Choose "unlock" or "revoke".')


async def revoke_integration(request: Request, session: Session) -> Response:
    if not session.user.is_allowed(INTEGRATIONS):
        return refused(request, session, "You are not allowed to manage integrations.", 403)
    try:
        await request.app.state.auth.revoke_integration_tokens(request.state.form.get("name", ""))
    except AccountError as error:
        return await _page(request, session, str(error))
    return _done(request, "integration-revoked")


async def create_integration(request: Request, session: Session) -> Response:
    """A new integration, its credentials shown on the answer only."""
    if not session.user.is_allowed(INTEGRATIONS):
        return refused(request, session, "You are not allowed to manage integrations.", 403)
    state, form = request.app.state, request.state.form
    resources = [part.strip() for part in form.get("resources", "").split(",") if part.strip()]
    known = state.routes.grantable_resources()
    try:
        credentials = await state.auth.create_integration(
            form.get("name", ""), resources, form.get("all_bulks") == "1", known
        )
    except AccountError as error:
        return await _page(request, session, str(error))
    return await _page(request, session, credentials=credentials)
