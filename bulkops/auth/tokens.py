"""Opaque access tokens, shaped as Magento 2.3's, and the hash under which they are stored."""

from __future__ import annotations

import hashlib
import secrets
import string

TOKEN_LENGTH = 32
TOKEN_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> str:
    """32 characters of [a-z0-9] (about 165 random bits)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def token_hash(token: str) -> str:
    """SHA-256 hex: tokens are random and long, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()
