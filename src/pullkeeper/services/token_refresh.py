"""The token refresher: each credential holding a cloud identity gets its next token before
half the current one's life is gone, and a failed exchange is tried again with backoff.

It runs in the replica that syncs (the sync lease's holder), or, with the sync off, in the
one holding a lease of its own: one replica exchanges each token. An exchange holds no
transaction; its token is stored in a short one, and only a token that differs from the
stored one changes the credential's password (which the sync then delivers in place).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import select

from pullkeeper.core.cloud import AwsIdentity, AzureIdentity, ExchangeError, Token
from pullkeeper.services import cloud_exchange, cloud_tokens, leader
from pullkeeper.services.server import Server
from pullkeeper.store.models import Credential, utcnow

__all__ = ["RESULTS", "Refresher", "start"]

_log = logging.getLogger("pullkeeper.tokens")

# What became of a due credential: a new token (refreshed), the same token again
# (unchanged), no token (failed), or nothing to do any more: edited, deleted, or refreshed
# by another replica meanwhile (skipped).
RESULTS = ("refreshed", "unchanged", "failed", "skipped")
_LEASE = "token-refresh"
_BATCH = 500  # due credentials read at a time

Exchange = Callable[[Server, str, AwsIdentity | AzureIdentity | None, str], Token]


class Refresher:
    def __init__(
        self,
        server: Server,
        *,
        clock: Callable[[], datetime] = utcnow,
        exchange: Exchange = cloud_exchange.exchange,
        rng: random.Random = cloud_tokens.JITTER,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        settings = server.settings
        self.server, self.clock, self._exchange, self._rng = server, clock, exchange, rng
        self.poll_seconds = settings.token_refresh_poll_seconds
        self.workers = settings.token_refresh_workers
        self._lease: leader.Lease | None = None
        if leading is None and server.sync is None:  # no sync lease to follow: its own
            self._lease = leader.Lease(server.db, _LEASE, 3 * self.poll_seconds)
        self.leading = leading or self._holds_lease
        self.results: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-refresh", daemon=True)

    def _holds_lease(self) -> bool:
        """Whether this replica refreshes now: it syncs, or holds the refresher's lease."""
        if self._lease is not None:
            return self._lease.hold()
        return self.server.sync is not None and self.server.sync.leading

    def due(self, now: datetime) -> list[str]:
        """The credentials whose token is due for refreshing, the most overdue first."""
        with self.server.reading() as session:
            return list(
                session.scalars(
                    select(Credential.id)
                    .where(
                        Credential.identity_kind.is_not(None),
                        Credential.token_refresh_at <= now,
                    )
                    .order_by(Credential.token_refresh_at)
                    .limit(_BATCH)
                )
            )

    def run_once(self) -> Counter[str]:
        """Refresh every credential due now; what became of them."""
        done: Counter[str] = Counter()
        while ids := self.due(now := self.clock()):
            with ThreadPoolExecutor(self.workers, thread_name_prefix="token-exchange") as pool:
                done.update(pool.map(lambda i: self.refresh(i, now), ids))
            if len(ids) < _BATCH:
                break
        return done

    def refresh(self, credential_id: str, now: datetime) -> str:
        """A new token for the credential, if it is still due at `now`; one of RESULTS."""
        server = self.server
        with server.reading() as session:
            cred = session.get(Credential, credential_id)
            if cred is None or not _due(cred, now):
                return self._count("skipped")
            identity, secret = cloud_tokens.secret_of(server.vault, cred)
            given = _identity(cred)
            address, name = cred.server, cred.name
        error: ExchangeError | None = None
        try:
            token = self._exchange(server, address, identity, secret)
        except ExchangeError as e:
            error = e
        with server.transaction() as session:
            cred = session.get(Credential, credential_id)
            # An identity replaced meanwhile has a token of its own; a refresh another
            # replica made is not due any more.
            if cred is None or not _due(cred, now) or given != _identity(cred):
                return self._count("skipped")
            if error is not None:
                cloud_tokens.failed(cred, error, now, self._rng)
                _log.warning(
                    "token refresh of credential %s (%s) failed (%s, %d in a row): %s",
                    name,
                    credential_id,
                    error.cause,
                    cred.token_failures,
                    error.message,
                )
                return self._count("failed")
            changed = cloud_tokens.renewed(session, server.vault, cred, token, self._rng)
        return self._count("refreshed" if changed else "unchanged")

    def _count(self, result: str) -> str:
        with self._lock:
            self.results[result] += 1
        return result

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # At once on start: tokens due while no replica ran are overdue.
        while True:
            try:
                if self.leading():
                    self.run_once()
            except Exception:  # the store may be briefly unreachable; look again later
                _log.exception("token refresh: cannot read the due credentials")
            if self._stop.wait(self.poll_seconds):
                break

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._lease is not None and self._lease.held:
            self._lease.release()


def _due(cred: Credential, now: datetime) -> bool:
    return (
        bool(cred.identity_kind)
        and cred.token_refresh_at is not None
        and (cred.token_refresh_at <= now)
    )


def _identity(cred: Credential) -> tuple[object, ...]:
    return (cred.identity_kind, cred.identity, cred.identity_blob)


def start(server: Server) -> Refresher:
    """The server's refresher, running; after the sync has started, whose lease it follows."""
    refresher = Refresher(server)
    server.refresher = refresher
    refresher.start()
    return refresher
