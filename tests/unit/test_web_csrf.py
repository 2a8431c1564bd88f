"""The CSRF token of a web session: an HMAC of the session token under the server's key."""

from __future__ import annotations

import hashlib
import re

from pullkeeper.web.security import session_csrf

KEY, OTHER_KEY = b"k" * 32, b"o" * 32
SESSION, OTHER_SESSION = "pk_session-one-0123456789", "pk_session-two-0123456789"


def test_the_same_key_and_session_give_the_same_token() -> None:
    # What lets every replica, loading the same key, check a token another one issued.
    assert session_csrf(KEY, SESSION) == session_csrf(b"k" * 32, SESSION)


def test_the_token_depends_on_the_session_and_on_the_key() -> None:
    token = session_csrf(KEY, SESSION)
    assert token != session_csrf(KEY, OTHER_SESSION)
    assert token != session_csrf(OTHER_KEY, SESSION)


def test_the_token_is_no_bare_hash_of_the_session() -> None:
    token = session_csrf(KEY, SESSION)
    for bare in (SESSION.encode(), b"pullkeeper web csrf\0" + SESSION.encode()):
        assert token != hashlib.sha256(bare).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", token)  # the hex of an HMAC-SHA256
