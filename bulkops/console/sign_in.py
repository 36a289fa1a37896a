"""Signing in and out of the console, with the admin users and lockout of the token
endpoint."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bulkops.auth.context import GUEST
from bulkops.console.rendering import (
    base_path,
    local_target,
    read_form,
    refused,
    render,
    sessions_of,
)
from bulkops.console.session import CSRF_FIELD, Session, tokens_match
from bulkops.errors import WebapiError

SIGN_IN_COOKIE = "bulkops_console_sign_in"
"""The sign-in form's CSRF token (double submit: no session exists yet)."""


async def sign_in_form(request: Request) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    return _sign_in_page(request, token, None, 200)


def _sign_in_page(request: Request, token: str, error: str | None, status: int) -> Response:
    context = {"sign_in_token": token, "error": error, "next": request.query_params.get("next")}
    response = render(request, "sign_in.html", context, status_code=status)
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        path=base_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if not cookie or not tokens_match(cookie, form.get(CSRF_FIELD)):
        return refused(request, None, "The form has expired: reload the page.", 403)
    state = request.app.state
    try:
        # As the token endpoint: counted against the address, the same lockout.
        await state.rate_limits.count(request, GUEST)
        token = await state.auth.issue_admin_token(
            form.get("username", ""), form.get("password", "")
        )
    except WebapiError as error:
        return _sign_in_page(request, cookie, str(error), error.status_code)
    target = local_target(request.query_params.get("next"), base_path(request))
    response = RedirectResponse(target, status_code=303)
    sessions_of(request).start(request, response, token)
    response.delete_cookie(SIGN_IN_COOKIE, path=base_path(request))
    return response


async def sign_out(request: Request, session: Session) -> Response:
    await request.app.state.auth.revoke_token(session.token)
    response = RedirectResponse(f"{base_path(request)}/sign-in", status_code=303)
    sessions_of(request).end(response)
    return response
