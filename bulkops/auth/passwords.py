"""Admin passwords: Magento's strength rules, and argon2 hashes."""

from __future__ import annotations

import re
import secrets
import string
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 7

_hasher = PasswordHasher()


class WeakPasswordError(ValueError):
    """The password breaks Magento's admin password rules; the message says which."""


def check_strength(password: str) -> None:
    """Magento's rules for admin passwords: 7 characters or more, letters and digits."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"Your password must be at least {MIN_LENGTH} characters.")
    if not (re.search("[A-Za-z]", password) and re.search("[0-9]", password)):
        raise WeakPasswordError(
            "Your password must include both numeric and alphabetic characters."
        )


def generate_password(length: int = 20) -> str:
    """A random password that passes `check_strength`, with nothing to escape in a shell."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            check_strength(password)
        except WeakPasswordError:
            continue
        return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def spend_verification_time(password: str) -> None:
    """Verify against a hash nothing matches: a sign-in with an unknown or locked username
    takes as long as one with a wrong password, so timing reveals neither."""
    verify_password(_dummy_hash(), password)
