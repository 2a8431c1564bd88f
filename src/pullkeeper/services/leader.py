"""One replica at a time does a job (the Kubernetes sync): a lease in the store.

The holder renews the lease well before it runs out and gives it up when it stops;
another replica takes it once it has run out, or at once when its holder was a process
of this host that is gone (so a restart after a crash does not wait out the lease).
Replicas compare their own clocks with the lease's times: keep them in time (NTP), as
any lease-based election needs.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from pullkeeper import process
from pullkeeper.store.db import Database
from pullkeeper.store.models import Lease as LeaseRow
from pullkeeper.store.models import utcnow

__all__ = ["SYNC", "Lease"]

SYNC = "sync"


def _new_holder() -> str:
    """Who this replica is: host, process, and an instance (two servers in one process)."""
    return f"{process.identity()}:{uuid.uuid4().hex[:8]}"


def _gone(holder: str) -> bool:
    """Whether holder names a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        return False
    return False


class Lease:
    def __init__(self, db: Database, name: str, ttl: float, holder: str | None = None) -> None:
        self.db, self.name, self.ttl = db, name, timedelta(seconds=ttl)
        self.holder = holder or _new_holder()
        self.until: datetime | None = None  # while held: when it runs out
        self.other = ""  # who holds it, when another replica does

    @property
    def held(self) -> bool:
        return self.until is not None and utcnow() < self.until

    def hold(self) -> bool:
        """Take or renew the lease; whether this replica holds it now. A store that cannot
        be reached counts as not renewed: the lease runs out and another replica goes on."""
        now = utcnow()
        if self.until is not None and self.until - now > self.ttl * 2 / 3:
            return True  # renewed lately: no write on every poke of a busy server
        until = now + self.ttl
        try:
            if self.until is None:
                # A follower looks first, without taking the store's write lock each poll.
                with self.db.reading() as session:
                    seen = session.get(LeaseRow, self.name)
                    if (
                        seen is not None
                        and seen.holder != self.holder
                        and seen.expires_at > now
                        and not _gone(seen.holder)
                    ):
                        self.other = seen.holder
                        return False
            with self.db.session() as session:
                row = session.get(LeaseRow, self.name, with_for_update=True)
                if row is None:
                    session.add(
                        LeaseRow(
                            name=self.name, holder=self.holder, acquired_at=now, expires_at=until
                        )
                    )
                elif row.holder == self.holder:
                    row.expires_at = until
                elif row.expires_at <= now or _gone(row.holder):
                    row.holder, row.acquired_at, row.expires_at = self.holder, now, until
                else:
                    self.other = row.holder
                    self.until = None
                    return False
        except (IntegrityError, OperationalError):
            # Another replica took it in the same instant, or the store is away for now.
            return self.held
        self.until, self.other = until, ""
        return True

    def release(self) -> None:
        """Give the lease up (when stopping), so another replica need not wait it out."""
        self.until = None
        try:
            with self.db.session() as session:
                session.execute(
                    delete(LeaseRow).where(
                        LeaseRow.name == self.name, LeaseRow.holder == self.holder
                    )
                )
        except SQLAlchemyError:
            pass  # the store is away or not what it was: the lease runs out by itself
