"""The password rule of pullkeeper's own users, written once for every way a password is set.

A password is at least MIN_LENGTH characters, not only white space, and not the user
name (compared without case and surrounding white space). The same rule holds for a new
user, a password change, an admin's reset and the first-start admin, whether it comes
through the API, the CLI or the web pages. Messages never repeat the password.
"""

from __future__ import annotations

MIN_LENGTH = 12


class WeakPassword(ValueError):
    """A password the rule refuses; the message says what to change."""


TOO_SHORT = f"a password needs at least {MIN_LENGTH} characters"
ONLY_SPACE = "a password cannot be only spaces; use letters, digits or other signs too"
IS_USERNAME = "a password cannot be the user name; choose another"


def check(password: str, username: str) -> None:
    """Raise WeakPassword when the rule refuses password for the user username."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(TOO_SHORT)
    if not password.strip():
        raise WeakPassword(ONLY_SPACE)
    if password.strip().casefold() == username.strip().casefold():
        raise WeakPassword(IS_USERNAME)
