"""Signing in, resolving bearer tokens, and managing admin users and integrations."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import IntegrityError

from bulkops.auth import oauth, passwords
from bulkops.auth.context import ALL_RESOURCES, UserContext
from bulkops.auth.token_cache import ResolvedTokens
from bulkops.auth.tokens import new_token, token_hash
from bulkops.errors import AuthenticationError
from bulkops.sealing import Sealer, SealingKeyError
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
        elif not self.settings.integration_as_bearer:
            return None
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
    ) -> IntegrationCredentials:
        """A new integration with these ACL resources, and its OAuth consumer and access
        token (which also works as a Bearer token), each 32 characters as Magento's."""
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
        credentials = IntegrationCredentials(new_token(), new_token(), new_token(), new_token())
        seal, now = self.sealer.seal, _now()
        try:
            async with self.database.write() as connection:
                integration_id = await users.insert_integration(
                    connection, name, orjson.dumps(granted).decode(), now
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
        resources = frozenset(orjson.loads(consumer["resources"]))
        return UserContext(UserType.INTEGRATION, consumer["integration_id"], resources)

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
