"""Password hashes: argon2id through argon2-cffi (its defaults follow RFC 9106's recommendations)."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id
MIN_LENGTH = 8


class PasswordError(ValueError):
    """A password that is refused (too short)."""


def check_strength(password: str) -> None:
    """Refuses a password shorter than :data:`MIN_LENGTH` characters."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"A password needs at least {MIN_LENGTH} characters.")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; the only thing stored)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    Without a hash (an unknown user name, an SSO-only account) a dummy hash is still verified, so
    the answer takes as long as for a real account and timing does not tell which names exist.
    """
    target = password_hash or _dummy_hash()
    try:
        ok = _HASHER.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with older parameters than today's defaults."""
    return _HASHER.check_needs_rehash(password_hash)


def random_password() -> str:
    """A random password for a first start or a reset (about 96 bits, URL-safe characters)."""
    return secrets.token_urlsafe(12)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(12))
