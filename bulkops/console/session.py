"""The console's session: a cookie holding the admin token its sign-in was issued (so the
token's expiry, revocation and the user's password changes end the session as they end the
token) and the session's CSRF token, which every form posts back. The cookie is sealed with
Fernet (encrypted and signed, with its time): the token in it is as secret as a password."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from bulkops.auth.context import UserContext
from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.installation import installation_value

COOKIE = "bulkops_console"
SESSION_KEY = "console/session_key"
"""The installation value the cookie is sealed with: the same in every process."""
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf_token: str
    user: UserContext


class Sessions:
    def __init__(self, key: str, path: str, lifetime_seconds: int) -> None:
        self.fernet = Fernet(key.encode())
        self.path = path
        self.lifetime_seconds = lifetime_seconds

    @classmethod
    async def of_installation(cls, settings: Settings, database: Database) -> Sessions:
        key = await installation_value(
            database, SESSION_KEY, lambda: Fernet.generate_key().decode()
        )
        # As long as the admin token it holds lives.
        lifetime = max(1, round(settings.admin_token_lifetime_hours * 3600))
        return cls(key, settings.console_path, lifetime)

    async def current(self, request: Request) -> Session | None:
        """The request's session, if its cookie is genuine, recent and its token lives."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            value = orjson.loads(self.fernet.decrypt(cookie, ttl=self.lifetime_seconds))
        except (InvalidToken, orjson.JSONDecodeError):
            return None
        if not isinstance(value, dict):
            return None
        token, csrf_token = value.get("token"), value.get("csrf")
        if not isinstance(token, str) or not isinstance(csrf_token, str):
            return None
        user = await request.app.state.auth.resolve_bearer(token)
        return None if user is None else Session(token, csrf_token, user)

    def start(self, request: Request, response: Response, token: str) -> None:
        """Sets the cookie of a new session on `token`, with a new CSRF token."""
        session = {"token": token, "csrf": secrets.token_urlsafe(24)}
        value = self.fernet.encrypt(orjson.dumps(session)).decode()
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.lifetime_seconds,
            path=self.path,
            httponly=True,
            samesite="lax",
            # Behind a proxy, the scheme it forwards (uvicorn's forwarded_allow_ips).
            secure=request.url.scheme == "https",
        )

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=self.path, httponly=True, samesite="lax")


def tokens_match(expected: str, sent: object) -> bool:
    """Whether a form sent the CSRF token expected (compared in constant time)."""
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())
