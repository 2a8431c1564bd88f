"""The one password rule of pullkeeper's users: one row per password, accepted or refused."""

from __future__ import annotations

import pytest

from pullkeeper.core import passwords
from pullkeeper.core.passwords import IS_USERNAME, ONLY_SPACE, TOO_SHORT, WeakPassword

# (password, user name, the refusal or None when accepted)
CASES = [
    ("correct-horse", "alice", None),
    ("twelve-chars", "alice", None),  # exactly the minimum
    ("  spaced  pass  ", "alice", None),  # spaces count, as long as there is more
    ("élan-vital-ü", "alice", None),  # characters, not bytes
    ("Release-Manager", "alice", None),  # another user's name is fine
    ("", "alice", TOO_SHORT),
    ("1234567", "alice", TOO_SHORT),
    ("Xy7!pq2Z", "alice", TOO_SHORT),  # 8 characters, once enough for a new user
    ("eleven-char", "alice", TOO_SHORT),
    ("äöü" * 3, "alice", TOO_SHORT),  # 9 characters in 18 bytes
    (" " * 12, "alice", ONLY_SPACE),
    (" " * 40, "alice", ONLY_SPACE),
    ("\t\n \r\u3000\u00a0      ", "alice", ONLY_SPACE),  # any white space
    ("release-manager", "release-manager", IS_USERNAME),
    ("Release-Manager", "release-manager", IS_USERNAME),  # without case
    ("  release-manager ", "release-manager", IS_USERNAME),  # nor surrounding spaces
    ("release-manager1", "release-manager", None),
]


@pytest.mark.parametrize(("password", "username", "refusal"), CASES)
def test_the_password_rule(password: str, username: str, refusal: str | None) -> None:
    if refusal is None:
        passwords.check(password, username)
        return
    with pytest.raises(WeakPassword) as e:
        passwords.check(password, username)
    assert str(e.value) == refusal
    if password.strip():
        assert password.strip() not in str(e.value)  # never repeated back


def test_the_messages_say_what_to_do() -> None:
    assert TOO_SHORT == "a password needs at least 12 characters"
    assert passwords.MIN_LENGTH == 12
    assert "only spaces" in ONLY_SPACE and "user name" in IS_USERNAME
