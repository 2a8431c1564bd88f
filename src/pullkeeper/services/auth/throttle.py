"""The login throttle: failed password checks per user name and source, counted in the store."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pullkeeper.services.errors import TooManyRequests
from pullkeeper.store.models import LoginFailure, utcnow


class LoginThrottle:
    """At most `limit` failed logins per user name and source address in a minute.

    The failures are rows in the store, written in the login's own transaction (which
    commits though the login is refused: WrongPassword keeps its writes), so every server
    process sharing the store counts the same attempts.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, timedelta(seconds=window)

    def check(self, session: Session, username: str, source: str) -> None:
        since = utcnow() - self.window
        recent = list(
            session.scalars(
                select(LoginFailure.at)
                .where(
                    LoginFailure.username == username,
                    LoginFailure.source == source,
                    LoginFailure.at > since,
                )
                .order_by(LoginFailure.at)
            )
        )
        if len(recent) >= self.limit:
            wait = int((recent[0] - since).total_seconds()) + 1
            raise TooManyRequests(
                f"too many failed logins for {username!r}; try again in {wait}s", wait
            )

    def failed(self, session: Session, username: str, source: str) -> None:
        now = utcnow()
        # Old failures count no more: the table holds about a minute of them.
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
        session.add(LoginFailure(username=username[:64], source=source[:64], at=now))

    def succeeded(self, session: Session, username: str, source: str) -> None:
        session.execute(
            delete(LoginFailure).where(
                LoginFailure.username == username, LoginFailure.source == source
            )
        )
