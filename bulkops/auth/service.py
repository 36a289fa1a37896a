"""Signing in, resolving bearer tokens, and managing admin users and integrations."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.auth import oauth, passwords
from bulkops.auth.context import ALL_RESOURCES, UserContext
from bulkops.auth.token_cache import ResolvedTokens
from bulkops.auth.tokens import new_token, token_hash
from bulkops.errors import AuthenticationError
from bulkops.sealing import Sealer, SealingKeyError
from bulkops.services.webhook_targets import check_callback_url
from bulkops.settings import Settings
from bulkops.status import UserType
from bulkops.store import oauth as oauth_store
from bulkops.store import users
from bulkops.store.database import Database
from bulkops.store.types import storable_text

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
# Longer nonces than the column holds are refused as Magento refuses them (its column is
# shorter still: 32).
NONCE_MAX_LENGTH = 128

log = logging.getLogger("bulkops.auth")


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class IntegrationCredentials:
    """What Magento's admin shows for an integration, to configure its client with."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


@dataclass(frozen=True, slots=True)
class AdminSummary:
    """An admin user as `bulkops admin list` shows it."""

    username: str
    id: int
    active: bool
    failures: int
    """Failed sign-ins that still count towards the lockout."""
    locked_until: datetime | None
    created: datetime


@dataclass(frozen=True, slots=True)
class IntegrationSummary:
    """An integration as `bulkops integration list` shows it."""

    name: str
    id: int
    status: str
    """`active`; `revoked` when its access token is; `inactive` when the integration is."""
    resources: list[str]
    bulks: str
    """The bulks it reads: `own` or `all`."""
    created: datetime


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


def _integration(integration_id: int, resources_json: str, all_bulks: bool) -> UserContext:
    resources = frozenset(orjson.loads(resources_json))
    return UserContext(UserType.INTEGRATION, integration_id, resources, all_bulks=bool(all_bulks))


def _integration_status(is_active: bool, token_revoked: bool | None) -> str:
    if not is_active:
        return "inactive"
    # No token at all (no OAuth consumer) is as good as a revoked one.
    return "revoked" if token_revoked is None or token_revoked else "active"


class AuthService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.resolved = ResolvedTokens(settings.token_cache_seconds, settings.token_cache_size)
        # HMAC signatures are checked with the raw consumer and token secrets, so they
        # cannot be stored hashed as bearer tokens are: sealed, a copy of the database alone
        # signs nothing. Without a key they are stored as Magento stores them, in clear.
        key = settings.oauth_secrets_key
        self.sealer = Sealer([key.get_secret_value()] if key else [], "BULKOPS_OAUTH_SECRETS_KEY")

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
        async with self.database.read() as connection:
            stored = await users.admin_password_hash(connection, username)
        if stored is not None and await asyncio.to_thread(
            passwords.verify_password, stored, password
        ):
            # The same password: the user is only reactivated and unlocked, its tokens kept.
            async with self.database.write() as connection:
                await users.reset_admin(connection, username, stored)
            return
        password_hash = await _hash(password)
        try:
            async with self.database.write() as connection:
                if stored is None:
                    await users.insert_admin(connection, username, password_hash, _now())
                else:
                    # At start: this process has resolved no token yet, none to forget.
                    await self._change_password(connection, username, password_hash)
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
            user = UserContext(UserType.ADMIN, owner["user_id"], ADMIN_RESOURCES, all_bulks=True)
        elif not self.settings.integration_as_bearer:
            return None
        else:
            user = _integration(owner["user_id"], owner["resources"], owner["all_bulks"])
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

    async def list_admins(self) -> list[AdminSummary]:
        now, max_failures = _now(), self.settings.login_max_failures
        async with self.database.read() as connection:
            rows = await users.list_admins(connection)
        summaries = []
        for row in rows:
            # As `users.start_sign_in` reads them: failures count until lock_expires passes.
            counting = row["lock_expires"] is not None and row["lock_expires"] > now
            failures = row["failures_count"] if counting else 0
            summaries.append(
                AdminSummary(
                    username=row["username"],
                    id=row["id"],
                    active=bool(row["is_active"]),
                    failures=failures,
                    locked_until=row["lock_expires"] if failures >= max_failures else None,
                    created=row["created_at"],
                )
            )
        return summaries

    async def unlock_admin(self, username: str) -> None:
        """Forget the admin user's failed sign-ins: it can sign in again at once."""
        async with self.database.write() as connection:
            await users.clear_failures(connection, await _admin_id(connection, username))

    async def set_admin_password(self, username: str, password: str) -> None:
        """A new password; the user is also reactivated and unlocked, and every token it
        had is revoked."""
        passwords.check_strength(password)
        password_hash = await _hash(password)
        async with self.database.write() as connection:
            admin_id = await self._change_password(connection, username, password_hash)
        if admin_id is None:
            raise AccountError(f'There is no admin user named "{username}".')
        # Once committed: forgotten earlier, a token could be cached again before it.
        self.resolved.forget_user(UserType.ADMIN, admin_id)

    @staticmethod
    async def _change_password(
        connection: AsyncConnection, username: str, password_hash: str
    ) -> int | None:
        """Sets the password and revokes the user's tokens; the user's id, or None if there
        is no such user."""
        if not await users.reset_admin(connection, username, password_hash):
            return None
        admin_id = await users.find_admin_id(connection, username)
        assert admin_id is not None
        await users.revoke_user_tokens(connection, UserType.ADMIN, admin_id)
        return admin_id

    async def token_user_type(self, token: str) -> UserType | None:
        """The kind of user the token is of (live, expired or revoked); None if unknown."""
        async with self.database.read() as connection:
            user_type = await users.token_user_type(connection, token_hash(token))
        return None if user_type is None else UserType(user_type)

    async def revoke_token(self, token: str) -> bool:
        """Revokes one token, of any user; False if it is unknown."""
        hashed = token_hash(token)
        async with self.database.write() as connection:
            revoked = await users.revoke_token(connection, hashed)
        self.resolved.forget(hashed)
        return revoked

    async def revoke_user_tokens(self, user_type: UserType, user_id: int) -> bool:
        """Revokes every token of an admin user or an integration; False if there is no such
        user."""
        async with self.database.write() as connection:
            if not await users.user_exists(connection, user_type, user_id):
                return False
            await users.revoke_user_tokens(connection, user_type, user_id)
        self.resolved.forget_user(user_type, user_id)
        return True

    async def revoke_admin_tokens(self, username: str) -> None:
        async with self.database.read() as connection:
            admin_id = await _admin_id(connection, username)
        await self.revoke_user_tokens(UserType.ADMIN, admin_id)

    async def revoke_integration_tokens(self, name: str) -> None:
        await self.revoke_user_tokens(UserType.INTEGRATION, await self._integration_id(name))

    async def _integration_id(self, name: str) -> int:
        async with self.database.read() as connection:
            integration_id = await users.find_integration_id(connection, name)
        if integration_id is None:
            raise AccountError(f'There is no integration named "{name}".')
        return integration_id

    async def list_integrations(self) -> list[IntegrationSummary]:
        async with self.database.read() as connection:
            rows = await users.list_integrations(connection)
        return [
            IntegrationSummary(
                name=row["name"],
                id=row["id"],
                status=_integration_status(row["is_active"], row["token_revoked"]),
                resources=orjson.loads(row["resources"]),
                bulks="all" if row["all_bulks"] else "own",
                created=row["created_at"],
            )
            for row in rows
        ]

    async def set_integration_webhook(self, name: str, url: str | None) -> None:
        """The callback URL of the integration's bulks submitted without one (None: none),
        checked as a submission's is."""
        if url is not None:
            check_callback_url(url, self.settings)
        integration_id = await self._integration_id(name)
        async with self.database.write() as connection:
            await users.set_integration_webhook(connection, integration_id, url)

    async def set_integration_scope(self, name: str, all_bulks: bool) -> None:
        """Whether the integration reads every bulk or only its own; its tokens resolved
        in this process are forgotten (other processes see it within their cache time)."""
        integration_id = await self._integration_id(name)
        async with self.database.write() as connection:
            await users.set_integration_scope(connection, integration_id, all_bulks)
        self.resolved.forget_user(UserType.INTEGRATION, integration_id)

    async def create_integration(
        self,
        name: str,
        resources: Sequence[str] = (ALL_RESOURCES,),
        all_bulks: bool = False,
        known_resources: Collection[str] | None = None,
    ) -> IntegrationCredentials:
        """A new integration with these ACL resources (each one of `known_resources`, when
        given), and its OAuth consumer and access token (which also works as a Bearer token),
        each 32 characters as Magento's. It reads only the bulks it submits, unless
        `all_bulks`."""
        if not name.strip():
            raise AccountError("The integration name cannot be empty.")
        if len(name) > INTEGRATION_NAME_MAX_LENGTH:
            raise AccountError(
                f"The integration name must be at most {INTEGRATION_NAME_MAX_LENGTH} characters."
            )
        if not resources:
            raise AccountError("An integration needs at least one ACL resource.")
        for resource in resources:
            if known_resources is not None and resource not in known_resources:
                raise AccountError(
                    f'"{resource}" is not an ACL resource of this service; it knows '
                    + ", ".join(sorted(known_resources))
                    + "."
                )
            if not RESOURCE_ID.fullmatch(resource):
                raise AccountError(
                    f'"{resource}" is not an ACL resource id (such as "Magento_Backend::all").'
                )
        granted = list(dict.fromkeys(resources))
        credentials = IntegrationCredentials(new_token(), new_token(), new_token(), new_token())
        seal, now = self.sealer.seal, _now()
        try:
            async with self.database.write() as connection:
                integration_id = await users.insert_integration(
                    connection, name, orjson.dumps(granted).decode(), all_bulks, now
                )
                token_id = await users.insert_token(
                    connection,
                    token_hash(credentials.access_token),
                    UserType.INTEGRATION,
                    integration_id,
                    now,
                    None,
                )
                await oauth_store.insert_consumer(
                    connection,
                    integration_id,
                    credentials.consumer_key,
                    seal(credentials.consumer_secret),
                    token_id,
                    seal(credentials.access_token),
                    seal(credentials.access_token_secret),
                    now,
                )
        except IntegrityError:
            raise AccountError(f'An integration named "{name}" already exists.') from None
        return credentials

    async def reauthorize_integration(self, name: str) -> IntegrationCredentials:
        """Magento's "Reauthorize": a new access token and secret for the integration (its
        consumer key and secret are kept); every earlier token is revoked."""
        integration_id = await self._integration_id(name)
        access_token, access_token_secret = new_token(), new_token()
        seal, now = self.sealer.seal, _now()
        async with self.database.write() as connection:
            await users.revoke_user_tokens(connection, UserType.INTEGRATION, integration_id)
            token_id = await users.insert_token(
                connection,
                token_hash(access_token),
                UserType.INTEGRATION,
                integration_id,
                now,
                None,
            )
            await oauth_store.replace_access_token(
                connection, integration_id, token_id, seal(access_token), seal(access_token_secret)
            )
        self.resolved.forget_user(UserType.INTEGRATION, integration_id)
        return await self.integration_credentials(name)

    async def integration_credentials(self, name: str) -> IntegrationCredentials:
        async with self.database.read() as connection:
            consumer = await oauth_store.find_integration_consumer(connection, name)
        if consumer is None:
            raise AccountError(f'There is no integration named "{name}" with OAuth credentials.')
        try:
            return IntegrationCredentials(
                consumer["consumer_key"],
                self.sealer.unseal(consumer["consumer_secret"]),
                self.sealer.unseal(consumer["access_token"]),
                self.sealer.unseal(consumer["access_token_secret"]),
            )
        except SealingKeyError as error:
            raise AccountError(str(error)) from None

    async def resolve_signed(self, request: oauth.SignedRequest) -> UserContext | None:
        """The integration of a request signed with its consumer and access token, or None
        when the integration is inactive; Magento's errors for anything else."""
        protocol = request.protocol
        oauth.check_protocol(protocol)
        key = protocol["oauth_consumer_key"]
        async with self.database.read() as connection:
            consumer = None
            if storable_text(key):
                consumer = await oauth_store.find_consumer(connection, key)
            hashed = token_hash(protocol["oauth_token"])
            token_known = consumer is not None and (
                consumer["token_hash"] == hashed
                or await oauth_store.token_exists(connection, hashed)
            )
        if consumer is None:
            raise AuthenticationError("A consumer having the specified key does not exist")
        now = int(datetime.now(UTC).timestamp())
        window = self.settings.oauth_timestamp_window_seconds
        timestamp = oauth.check_timestamp(protocol, now, window)
        if not token_known:
            raise AuthenticationError("Specified token does not exist")
        if consumer["token_hash"] != hashed:
            raise AuthenticationError("Token is not associated with the specified consumer")
        if consumer["revoked"]:
            raise AuthenticationError("Access token has been revoked")
        try:
            secrets = (
                self.sealer.unseal(consumer["consumer_secret"]),
                self.sealer.unseal(consumer["access_token_secret"]),
            )
        except SealingKeyError:
            log.exception("cannot read the secrets of OAuth consumer %s", consumer["id"])
            raise AuthenticationError(oauth.INVALID_SIGNATURE) from None
        if not oauth.signature_matches(request, *secrets):
            raise AuthenticationError(oauth.INVALID_SIGNATURE)
        # Only a correctly signed request spends its nonce: nobody can spend another's.
        await self._spend_nonce(
            consumer["id"], protocol["oauth_nonce"], timestamp, now - 2 * window
        )
        if not consumer["is_active"]:
            return None
        return _integration(
            consumer["integration_id"], consumer["resources"], consumer["all_bulks"]
        )

    async def _spend_nonce(self, consumer_id: int, nonce: str, timestamp: int, oldest: int) -> None:
        """Records the nonce, refused if the consumer used it already; deletes nonces
        timestamped before `oldest` now and then."""
        if not nonce or len(nonce) > NONCE_MAX_LENGTH or not storable_text(nonce):
            raise AuthenticationError("An error occurred validating the nonce")
        try:
            async with self.database.write() as connection:
                await oauth_store.insert_nonce(connection, consumer_id, nonce, timestamp)
        except IntegrityError:
            raise AuthenticationError(
                "The nonce is already being used by the consumer with ID %1", [str(consumer_id)]
            ) from None
        # Now and then, as Magento (`Integration\Model\Oauth\Nonce::afterSave`). Requests
        # older than the window are refused, so their nonces are useless; they are kept a
        # window more for API hosts whose clocks are behind.
        if random.randrange(self.settings.oauth_nonce_cleanup_probability) == 0:
            async with self.database.write() as connection:
                await oauth_store.delete_nonces_before(connection, oldest)


async def _admin_id(connection: AsyncConnection, username: str) -> int:
    admin_id = await users.find_admin_id(connection, username)
    if admin_id is None:
        raise AccountError(f'There is no admin user named "{username}".')
    return admin_id
