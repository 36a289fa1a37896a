"""Values sealed at rest with Fernet (AES-128-CBC and HMAC-SHA256): OAuth secrets, and
operations' payloads. Several keys may be configured, newest first: the newest seals, every
one unseals, so a key can be rotated without making anything stored unreadable. Sealed
values carry a prefix; values stored before a key was configured are read as they are."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "fernet:"


class SealingKeyError(RuntimeError):
    """A stored value cannot be read with the configured keys (or with none)."""


def _fernet(key: str) -> Fernet:
    # Any string is a key: its SHA-256 is the Fernet key, so operators can use whatever
    # their secret store generates.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


class Sealer:
    """Seals with the first of `keys` and unseals with any; `setting` names where the keys
    are configured, for the errors."""

    def __init__(self, keys: Sequence[str], setting: str) -> None:
        fernets = [_fernet(key) for key in keys]
        self._newest = fernets[0] if fernets else None
        self._fernet = MultiFernet(fernets) if fernets else None
        self.setting = setting

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return value
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def unseal(self, stored: str) -> str:
        """The value; values stored in clear (without the prefix, which neither generated
        secrets nor JSON documents can start with) are read as they are."""
        if not is_sealed(stored):
            return stored
        if self._fernet is None:
            raise SealingKeyError(f"Stored values are encrypted: set {self.setting}.")
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX)).decode()
        except InvalidToken:
            raise SealingKeyError(
                f"Stored values were encrypted with a key {self.setting} does not hold."
            ) from None

    def reseal(self, stored: str) -> str:
        """The value sealed with the newest key (a value in clear is sealed); the same text
        when it is sealed with that key already, so that nothing needs writing."""
        if self._fernet is None or self._newest is None:
            return stored
        if not is_sealed(stored):
            return self.seal(stored)
        token = stored.removeprefix(SEALED_PREFIX)
        try:
            self._newest.decrypt(token)
            return stored
        except InvalidToken:
            pass
        try:
            return SEALED_PREFIX + self._fernet.rotate(token).decode()
        except InvalidToken:
            raise SealingKeyError(
                f"Stored values were encrypted with a key {self.setting} does not hold."
            ) from None
