"""What a running server holds: settings, the store, the vault, the login throttle."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from pullkeeper.files import write_atomic
from pullkeeper.services import auth, credentials, keys
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Conflict, KeepsWrites, ServiceError
from pullkeeper.services.read_cache import ReadCache
from pullkeeper.services.server_slots import RunningAdmission, RunningRefresh, RunningSync
from pullkeeper.settings import Settings
from pullkeeper.store import changes, db
from pullkeeper.store.changes import Change
from pullkeeper.store.vault import (
    InlineKeys,
    KeyDirectory,
    KeySource,
    KeyUnavailable,
    Vault,
    VaultError,
)

__all__ = ["Server", "StoreUnavailable"]

# Changes that can revoke a token or change a role (a deleted project or cluster takes its
# role bindings along): the cached actors are forgotten on these.
_ACTOR_KINDS = frozenset({"user", "token", "membership", "project", "cluster"})

# The first-start admin's login is written here, in the data directory, never to a log.
_ADMIN_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name
_ADMIN_TOKEN_FILE = "initial-admin-token"  # noqa: S105 - a file name


class StoreUnavailable(ServiceError):
    """The store or the encryption keys cannot be opened."""

    status, code = 503, "unavailable"


def _key_source(settings: Settings) -> KeySource:
    """The keys setting (PULLKEEPER_KEYS) when given, else the key directory."""
    if settings.keys is not None:
        return InlineKeys(settings.keys.get_secret_value())
    return KeyDirectory(settings.keys_dir or settings.data / "keys")


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.vault = Vault(_key_source(settings))
        # Request threads plus a few for health checks and background work.
        self.db = db.Database(settings.sqlalchemy_url, settings.request_threads + 4)
        self._content_hash_key: bytes | None = None
        self.egress = settings.egress  # where registry requests may connect
        self.throttle = auth.LoginThrottle(settings.login_attempts_per_minute)
        self.tokens = auth.TokenCache(settings.auth_cache_seconds)
        # Listings' answers, until the store changes.
        self.reads = ReadCache(lambda: changes.newest_committed(self.db.engine))
        # Told what each committed write transaction changed (store/changes.py), when it
        # changed anything: the sync looks at once instead of polling, the index updates.
        self.on_change: list[Callable[[Set[Change]], None]] = []
        self.sync: RunningSync | None = None  # the running sync, when the server syncs
        self.admission: RunningAdmission | None = None  # the admission webhook, once started
        self.refresher: RunningRefresh | None = None  # the cloud token refresher, once started

    @classmethod
    def open(cls, settings: Settings, *, check_keys: bool = True) -> Server:
        """A server with its store migrated and, unless told otherwise, every key the store
        needs at hand; else StoreUnavailable saying what failed."""
        try:
            server = cls(settings)
        except VaultError as e:
            raise StoreUnavailable(str(e)) from None
        try:
            server.migrate()
        except Exception as e:  # a store that cannot be reached or migrated
            server.close()
            where = settings.sqlalchemy_url.split("@")[-1]  # never the password
            first = str(e).splitlines()[0] if str(e) else ""
            raise StoreUnavailable(
                f"cannot open the store at {where}: {type(e).__name__}: {first}"
            ) from None
        if check_keys:
            try:
                keys.verify(server)
            except (VaultError, ServiceError) as e:
                server.close()
                raise StoreUnavailable(
                    e.message if isinstance(e, ServiceError) else str(e)
                ) from None
        return server

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction; a race lost to a concurrent writer is a Conflict. Once it
        is committed, the listeners in on_change hear what it changed."""
        kept: KeepsWrites | None = None
        try:
            with self.db.session() as session:
                try:
                    yield session
                except KeepsWrites as e:  # refused, but what it wrote stands
                    kept = e
            self._committed(changes.committed(session))
            if kept is not None:
                raise kept
        except KeyUnavailable as e:
            raise StoreUnavailable(str(e)) from None
        except (IntegrityError, StaleDataError):
            # StaleDataError: a row's version moved under a write flushed at commit.
            raise Conflict(
                "this conflicts with a concurrent change; look again and retry"
            ) from None

    def _committed(self, changed: frozenset[Change]) -> None:
        if not changed:
            return  # an audit row, a check's result, ...: nothing anyone holds changed
        if any(c.kind in _ACTOR_KINDS for c in changed):
            self.tokens.clear()
        for listener in self.on_change:
            listener(changed)

    def authenticate(self, token: str, source: str, *, node: bool = False) -> Actor:
        """The actor of an API token, from the token cache when it is fresh: a user's, or
        with `node` a node token's; Forbidden for the other kind."""
        actor = self.tokens.get(token, source)
        if actor is None:
            with self.reading() as session:
                actor = auth.authenticate(session, token, source, self.tokens)
        return auth.of_kind(actor, node=node)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction (writes in it would fail on SQLite's lock rules)."""
        try:
            with self.db.reading() as session:
                yield session
        except KeyUnavailable as e:
            raise StoreUnavailable(str(e)) from None

    def content_hash_key(self) -> bytes:
        """The key of delivered Secrets' content hashes (the same in every process)."""
        if self._content_hash_key is None:
            self._content_hash_key = keys.content_hash_key(self)
        return self._content_hash_key

    def migrate(self) -> None:
        db.upgrade(self.db.engine)

    def first_start(self) -> auth.FirstStart | None:
        """Create the admin if there are no users yet; its login is returned only then,
        and written to files in the data directory that only this user can read."""
        token = self.settings.admin_token.get_secret_value() if self.settings.admin_token else None
        written: auth.FirstStart | None = None
        try:
            with self.transaction() as session:
                first = auth.bootstrap(session, token)
                if first is None:
                    return None
                # Before the commit: when the files cannot be written, no admin is left whose
                # password nobody knows, and the next start tries again.
                written = self._write_first_login(first, token_given=token is not None)
                return written
        except Conflict:
            # Replicas starting together on a new store: another one made the admin, and
            # the login written here names a user that never came to be.
            if written is not None:
                for made in (written.password_file, written.token_file):
                    if made is not None:
                        made.unlink(missing_ok=True)
            return None

    def _write_first_login(self, first: auth.FirstStart, *, token_given: bool) -> auth.FirstStart:
        data = self.settings.data.resolve()
        password_file = data / _ADMIN_PASSWORD_FILE
        write_atomic(password_file, (first.password + "\n").encode())
        token_file: Path | None = data / _ADMIN_TOKEN_FILE
        if token_given:
            # The operator chose the token; a file left by an earlier store would mislead.
            data.joinpath(_ADMIN_TOKEN_FILE).unlink(missing_ok=True)
            token_file = None
        else:
            write_atomic(data / _ADMIN_TOKEN_FILE, (first.token + "\n").encode())
        return replace(first, password_file=password_file, token_file=token_file)

    def ping(self) -> None:
        db.ping(self.db.engine)

    def credential_counts(self, session: Session) -> dict[str, int]:
        return credentials.count_by_state(session)

    def close(self) -> None:
        self.db.dispose()
