"""OAuth secrets at rest. HMAC signatures are checked with the raw consumer and token secrets,
so they cannot be stored hashed as bearer tokens are; with `BULKOPS_OAUTH_SECRETS_KEY` set they
are stored encrypted (Fernet: AES-128-CBC and HMAC-SHA256), and a copy of the database alone
signs nothing. Without it they are stored as Magento stores them, in clear."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "fernet:"


class SecretsKeyError(RuntimeError):
    """A stored secret cannot be read with the configured key (or with none)."""


def _fernet(key: str) -> Fernet:
    # Any string is a key: its SHA-256 is the Fernet key, so operators can use whatever
    # their secret store generates.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


class Sealer:
    def __init__(self, key: str | None) -> None:
        self._fernet = _fernet(key) if key else None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, secret: str) -> str:
        if self._fernet is None:
            return secret
        return SEALED_PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, stored: str) -> str:
        """The secret; values stored before a key was configured are read as they are
        (generated secrets never contain the prefix's colon)."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        if self._fernet is None:
            raise SecretsKeyError("OAuth secrets are encrypted: set BULKOPS_OAUTH_SECRETS_KEY.")
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX)).decode()
        except InvalidToken:
            raise SecretsKeyError(
                "OAuth secrets were encrypted with another BULKOPS_OAUTH_SECRETS_KEY."
            ) from None
