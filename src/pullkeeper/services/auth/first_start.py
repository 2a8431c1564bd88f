"""The first start: the admin user created when the store has no users yet."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.auth.tokens import issue_token
from pullkeeper.services.auth.users import create_user
from pullkeeper.store.models import User

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class FirstStart:
    """The first-start admin's login, and the private files it was written to."""

    password: str = field(repr=False)
    token: str = field(repr=False)
    password_file: Path | None = None
    token_file: Path | None = None  # None when the admin_token setting chose the token


def bootstrap(session: Session, admin_token: str | None) -> FirstStart | None:
    """Create the admin on first start; returns its login once, None when users exist."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(18)
    user = create_user(session, SYSTEM, ADMIN, password, admin=True, viewer=False)
    issued = issue_token(session, SYSTEM, user, "initial", None, admin_token)
    return FirstStart(password, issued.token)
