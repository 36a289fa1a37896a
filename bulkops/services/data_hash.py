"""`data_hash` of accepted items, as Magento's `MassSchedule` computes it:
`Encryptor::hash($serializedData, Encryptor::HASH_VERSION_SHA256)`, which is
`hash_hmac('sha256', $data, <newest crypt key>)` (framework/Encryption/Encryptor.php)."""

from __future__ import annotations

import hmac
import re
import secrets
from hashlib import sha256

from bulkops.settings import Settings
from bulkops.store.database import Database
from bulkops.store.installation import installation_value

CRYPT_KEY = "crypt/key"
"""The installation value holding the generated key (Magento's name for its key)."""

# PHP's trim() and PCRE's \s (without the u flag), as in Encryptor's constructor:
# `preg_split('/\s+/s', trim($deploymentConfig->get('crypt/key')))`.
_PHP_TRIMMED = " \t\n\r\0\x0b"
_PCRE_SPACES = re.compile(r"[ \t\n\x0b\f\r]+")


def newest_key(crypt_key: str) -> str:
    """The key Magento hashes with: the last of `crypt/key`'s whitespace-separated keys (a
    key change appends the new one). Used as written, as `Encryptor::hash` uses it: it
    decodes no `base64` prefix (Magento 2.4.0 to 2.4.4)."""
    return _PCRE_SPACES.split(crypt_key.strip(_PHP_TRIMMED))[-1]


def generated_key() -> str:
    """32 hexadecimal characters, as Magento's installer generates them (2.4.4:
    setup/src/Magento/Setup/Model/CryptKeyGenerator.php, `md5` of a random string)."""
    return secrets.token_hex(16)


class DataHasher:
    """HMAC-SHA256 with one key. The key is a secret: it is kept only inside, never shown."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        # Keyed once: each hash copies it instead of deriving the key's pads again.
        self._keyed = hmac.new(key, digestmod=sha256)

    def hash(self, serialized_data: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(serialized_data.encode())
        return keyed.hexdigest()

    def keyed(self) -> hmac.HMAC:
        """An HMAC with the key, to feed with data in parts."""
        return self._keyed.copy()

    @classmethod
    async def of_installation(cls, settings: Settings, database: Database) -> DataHasher:
        """With the key of the setting, or else the one generated for the installation."""
        configured = settings.crypt_key.get_secret_value() if settings.crypt_key else ""
        if newest := newest_key(configured):
            return cls(newest.encode())
        return cls((await installation_value(database, CRYPT_KEY, generated_key)).encode())
