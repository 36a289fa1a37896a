"""Secret values masked in the payloads responses show (`serialized_data`,
`result_serialized_data`): the value of every key whose name contains one of the configured
words, at any depth, including inside `meta_information` (the item's JSON, itself a JSON
string). The documents keep Magento's bytes apart from the masked values."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bulkops.services.php_json import php_json

MASK = "****"
"""Magento's DEBUG_KEYS_MASK: what its payment and carrier logs write in place of a private
value."""

KEYS_REMEMBERED = 4096
"""Keys whose verdict is remembered (`Redactor.is_secret`)."""

ITEM_KEY = "meta_information"
"""The key of Magento's operation payload whose value is the item, as JSON text."""


class Redactor:
    """Masks the values of keys containing any of `words` (ASCII, compared without regard to
    case). Containing, not equal: `newPassword`, `password_confirmation`, `access_token` and
    `client_secret` are what Magento's own APIs and their clients call secrets."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(sorted({word.lower() for word in words}))
        # The same few keys come again in every item: each is tested once.
        self.is_secret: Callable[[str], bool] = functools.lru_cache(maxsize=KEYS_REMEMBERED)(
            self._is_secret
        )

    @property
    def redacts(self) -> bool:
        return bool(self.words)

    def _is_secret(self, key: str) -> bool:
        lowered = key.lower()
        return key.isascii() and any(word in lowered for word in self.words)

    def document(self, text: str | None) -> str | None:
        """A stored JSON document with its secret values masked. Stored documents are written
        ASCII-only with the words' characters unescaped, so one that does not contain any
        word (most) is returned as it is, unparsed."""
        if text is None or not self._may_hold_secret(text):
            return text
        try:
            value = _loads(text)
        except ValueError:
            # Not ours to read, and it may hold a secret.
            return MASK
        return php_json(self._masked(value))

    def _may_hold_secret(self, text: str) -> bool:
        lowered = text.lower()
        # A plain loop: twice as fast as any() over a generator, on every row a search shows.
        for word in self.words:  # noqa: SIM110
            if word in lowered:
                return True
        return False

    def _masked(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._masked_entry(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._masked(item) for item in value]
        return value

    def _masked_entry(self, key: str, value: Any) -> Any:
        if self.is_secret(key):
            return MASK
        if key == ITEM_KEY and isinstance(value, str):
            return self.document(value)
        return self._masked(value)


def _loads(text: str) -> Any:
    """orjson where it reads the document (most), the standard library where it does not
    (integers past 64 bits, NaN): both read what they read alike."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
