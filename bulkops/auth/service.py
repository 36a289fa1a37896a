"""Signing in, resolving bearer tokens, and managing admin users and integrations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import IntegrityError

from bulkops.auth import passwords
from bulkops.auth.context import ALL_RESOURCES, UserContext
from bulkops.auth.token_cache import ResolvedTokens
from bulkops.auth.tokens import new_token, token_hash
from bulkops.errors import AuthenticationError
from bulkops.settings import Settings
from bulkops.status import UserType
from bulkops.store import users
from bulkops.store.database import Database

SIGN_IN_FAILED = (
    "The account sign-in was incorrect or your account is disabled temporarily. "
    "Please wait and try again later."
)
FIRST_ADMIN = "admin"
USERNAME_MAX_LENGTH = 40
INTEGRATION_NAME_MAX_LENGTH = 255
# Magento's ACL resource ids look like `Magento_Backend::stores`.
RESOURCE_ID = re.compile(r"\S+::\S+")
ADMIN_RESOURCES = frozenset({ALL_RESOURCES})


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


def _now() -> datetime:
    """UTC, naive, in whole seconds as the Timestamp columns store it."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _expiry(lifetime: timedelta) -> datetime:
    expires = datetime.now(UTC).replace(tzinfo=None) + lifetime
    # Rounded up to the stored whole second, so that tokens live and locks last at least as
    # long as configured.
    if expires.microsecond:
        expires = expires.replace(microsecond=0) + timedelta(seconds=1)
    return expires


def _check_username(username: str) -> None:
    if not username.strip():
        raise AccountError("The username cannot be empty.")
    if len(username) > USERNAME_MAX_LENGTH:
        raise AccountError(f"The username must be at most {USERNAME_MAX_LENGTH} characters.")


async def _hash(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(passwords.hash_password, password)


class AuthService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.resolved = ResolvedTokens(settings.token_cache_seconds, settings.token_cache_size)

    async def bootstrap_admin(self) -> None:
        """At start: create or reset the configured admin user; with none configured, make
        sure some admin user exists, creating `admin` with a printed random password."""
        username = self.settings.admin_username or None
        secret = self.settings.admin_password
        password = (secret.get_secret_value() if secret else None) or None
        if (username is None) != (password is None):
            raise AccountError(
                "Set both BULKOPS_ADMIN_USERNAME and BULKOPS_ADMIN_PASSWORD, or neither."
            )
        if username is None or password is None:
            await self._create_first_admin()
            return
        _check_username(username)
        try:
            passwords.check_strength(password)
        except passwords.WeakPasswordError as error:
            raise AccountError(f"BULKOPS_ADMIN_PASSWORD is too weak. {error}") from None
        password_hash = await _hash(password)
        try:
            async with self.database.write() as connection:
                if not await users.reset_admin(connection, username, password_hash):
                    await users.insert_admin(connection, username, password_hash, _now())
        except IntegrityError:
            # Another process starting with the same settings created the user first.
            pass

    async def _create_first_admin(self) -> None:
        async with self.database.read() as connection:
            if await users.count_admins(connection):
                return
        password = passwords.generate_password()
        password_hash = await _hash(password)
        try:
            async with self.database.write() as connection:
                if await users.count_admins(connection):
                    return
                await users.insert_admin(connection, FIRST_ADMIN, password_hash, _now())
        except IntegrityError:
            # Another process created it at the same moment, and printed its password.
            return
        print(
            f'bulkops: created admin user "{FIRST_ADMIN}" with password {password} '
            f"(change it with: bulkops admin passwd {FIRST_ADMIN})",
            flush=True,
        )

    async def issue_admin_token(self, username: str, password: str) -> str:
        """Magento's admin token for valid credentials. Wrong credentials, an unknown,
        inactive or locked user all get the same 401."""
        now = _now()
        failures_expire = _expiry(timedelta(minutes=self.settings.login_lock_minutes))
        user = None
        # No stored username has a NUL, and PostgreSQL refuses one even in a query.
        if "\x00" not in username:
            async with self.database.write() as connection:
                user = await users.start_sign_in(
                    connection, username, now, self.settings.login_max_failures, failures_expire
                )
        if user is None:
            await asyncio.to_thread(passwords.spend_verification_time, password)
            raise AuthenticationError(SIGN_IN_FAILED)
        valid = await asyncio.to_thread(passwords.verify_password, user["password_hash"], password)
        if not (valid and user["is_active"]):
            raise AuthenticationError(SIGN_IN_FAILED)
        token = new_token()
        expires_at = _expiry(timedelta(hours=self.settings.admin_token_lifetime_hours))
        async with self.database.write() as connection:
            await users.clear_failures(connection, user["id"])
            await users.insert_token(
                connection, token_hash(token), UserType.ADMIN, user["id"], now, expires_at
            )
        return token

    async def resolve_bearer(self, token: str) -> UserContext | None:
        """The user of a live token, or None. Runs on every request: one indexed query,
        unless this process resolved the token a moment ago."""
        hashed, now = token_hash(token), _now()
        user = self.resolved.get(hashed, now)
        if user is not None:
            return user
        async with self.database.read() as connection:
            owner = await users.find_token_owner(connection, hashed, now)
        if owner is None:
            return None
        if owner["user_type"] == UserType.ADMIN:
            user = UserContext(UserType.ADMIN, owner["user_id"], ADMIN_RESOURCES)
        else:
            resources = frozenset(orjson.loads(owner["resources"]))
            user = UserContext(UserType.INTEGRATION, owner["user_id"], resources)
        self.resolved.put(hashed, user, owner["expires_at"])
        return user

    async def create_admin(self, username: str, password: str) -> None:
        _check_username(username)
        passwords.check_strength(password)
        password_hash = await _hash(password)
        try:
            async with self.database.write() as connection:
                await users.insert_admin(connection, username, password_hash, _now())
        except IntegrityError:
            raise AccountError(f'An admin user named "{username}" already exists.') from None

    async def set_admin_password(self, username: str, password: str) -> None:
        """A new password; the user is also reactivated and unlocked."""
        passwords.check_strength(password)
        password_hash = await _hash(password)
        async with self.database.write() as connection:
            if not await users.reset_admin(connection, username, password_hash):
                raise AccountError(f'There is no admin user named "{username}".')

    async def create_integration(
        self, name: str, resources: Sequence[str] = (ALL_RESOURCES,)
    ) -> str:
        """A new integration with these ACL resources; returns its long-lived token, which
        is shown only this once."""
        if not name.strip():
            raise AccountError("The integration name cannot be empty.")
        if len(name) > INTEGRATION_NAME_MAX_LENGTH:
            raise AccountError(
                f"The integration name must be at most {INTEGRATION_NAME_MAX_LENGTH} characters."
            )
        if not resources:
            raise AccountError("An integration needs at least one ACL resource.")
        for resource in resources:
            if not RESOURCE_ID.fullmatch(resource):
                raise AccountError(
                    f'"{resource}" is not an ACL resource id (such as "Magento_Backend::all").'
                )
        granted = list(dict.fromkeys(resources))
        token, now = new_token(), _now()
        try:
            async with self.database.write() as connection:
                integration_id = await users.insert_integration(
                    connection, name, orjson.dumps(granted).decode(), now
                )
                await users.insert_token(
                    connection, token_hash(token), UserType.INTEGRATION, integration_id, now, None
                )
        except IntegrityError:
            raise AccountError(f'An integration named "{name}" already exists.') from None
        return token
