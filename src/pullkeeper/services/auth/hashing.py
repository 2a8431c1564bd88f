"""How passwords and API tokens are kept: argon2 hashes of passwords, sha256 of tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this keeps a check without a stored hash (an unknown user) as slow as one
# with a hash.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    """Whether `stored` is a hash of `password`; False, as slowly, when nothing is stored."""
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(stored)


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough to store them.
    return hashlib.sha256(token.encode()).hexdigest()
