"""The encryption keys: the start-up check, rotation, and the content-hash key.

A server refuses to start unless it holds every key the store's secrets need
(and the current one), each the key the store recorded and one that decrypts
a record: a lost, swapped or replica-private key is found before the server
reports ready, not by the first read that fails. Rotation makes a new key
current in the store, where every process's next encryption finds it, then
re-encrypts in small transactions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pullkeeper.services import audit
from pullkeeper.services.actor import SYSTEM, Actor
from pullkeeper.services.errors import Conflict, Forbidden
from pullkeeper.store.models import Cluster, Credential, EncryptionKey, StoredSecret
from pullkeeper.store.vault import KeyUnavailable, Vault, VaultError, current_key_id

if TYPE_CHECKING:
    from pullkeeper.services.server import Server

__all__ = [
    "KeyInfo",
    "content_hash_key",
    "current",
    "identity_bound",
    "kubeconfig_bound",
    "listing",
    "rotate",
    "verify",
]

_BATCH = 200
_CONTENT_HASH = "content-hash"
# The files a data directory held before the store kept track of keys.
_LEGACY_CURRENT, _LEGACY_CONTENT_HASH = "current", "content-hash.secret"


_Sealed = Credential | StoredSecret | Cluster


def _bound(row: _Sealed) -> str:
    """What a secret is bound to: its record (a blob moved to another record does not decrypt)."""
    if isinstance(row, Cluster):
        return kubeconfig_bound(row.id)
    return row.id if isinstance(row, Credential) else f"stored-secret:{row.name}"


def _secret(row: _Sealed) -> tuple[str, bytes]:
    """A record's sealed secret: (key id, blob); a cluster's is its uploaded kubeconfig."""
    if isinstance(row, Cluster):
        # Only clusters with an upload are selected (_sealed): both columns are set.
        return row.kubeconfig_key_id or "", row.kubeconfig_blob or b""
    return row.secret_key_id, row.secret_blob


def _reseal(row: _Sealed, sealed: tuple[str, bytes]) -> None:
    if isinstance(row, Cluster):
        row.kubeconfig_key_id, row.kubeconfig_blob = sealed
    else:
        row.secret_key_id, row.secret_blob = sealed


def kubeconfig_bound(cluster_id: str) -> str:
    """What a cluster's uploaded kubeconfig is bound to (it decrypts for no other record)."""
    return f"cluster-kubeconfig:{cluster_id}"


def identity_bound(credential_id: str) -> str:
    """What a credential's cloud identity's secret is bound to: the credential, apart from
    its password (neither blob decrypts in the other's place)."""
    return f"{credential_id}:identity"


def _sealed(session: Session, key_id: str, *, under: bool, limit: int) -> list[_Sealed]:
    """Up to `limit` secrets encrypted (under) or not encrypted (not under) with key_id,
    row-locked for the re-encryption."""
    rows: list[_Sealed] = []
    c_key, s_key = Credential.secret_key_id, StoredSecret.secret_key_id
    i_key = Credential.identity_key_id
    k_key = Cluster.kubeconfig_key_id
    c_where = c_key == key_id if under else or_(c_key != key_id, i_key != key_id)
    s_where = s_key == key_id if under else s_key != key_id
    k_where = k_key == key_id if under else k_key != key_id  # NULL (no upload) never matches
    rows += session.scalars(select(Credential).where(c_where).limit(limit).with_for_update())
    if len(rows) < limit:
        more = select(StoredSecret).where(s_where).limit(limit - len(rows)).with_for_update()
        rows += session.scalars(more)
    if len(rows) < limit:
        kubeconfigs = select(Cluster).where(k_where).limit(limit - len(rows)).with_for_update()
        rows += session.scalars(kubeconfigs)
    return rows


# --------------------------------------------------------------------------- the start-up check


def _needs(session: Session) -> dict[str, int]:
    """Key id -> how many secrets are encrypted with it."""
    needs: dict[str, int] = {}
    for column in (
        Credential.secret_key_id,
        Credential.identity_key_id,
        StoredSecret.secret_key_id,
        Cluster.kubeconfig_key_id,
    ):
        rows = session.execute(
            select(column, func.count()).where(column.is_not(None)).group_by(column)
        )
        for key_id, n in rows:
            if key_id is not None:
                needs[key_id] = needs.get(key_id, 0) + n
    return needs


def _first_current(vault: Vault, used: set[str], names: dict[str, str]) -> str:
    """The key a store that records none yet starts with: the old `current` file's, else the
    one key its records use, else the one key in the source, else a new one."""
    legacy = vault.source.legacy(_LEGACY_CURRENT)
    if legacy is not None and legacy.decode(errors="replace").strip() in names:
        return legacy.decode().strip()
    held = vault.fingerprints()
    if len(used) == 1:
        return next(iter(used))
    if len(held) == 1:
        return next(iter(held))
    if not held:
        return vault.generate()
    raise KeyUnavailable(
        f"the store records no encryption key yet and {vault.source} holds {len(held)}: "
        "keep only the one to start with there"
    )


def _adopt(session: Session, vault: Vault) -> None:
    """Record the keys of a store that records none: a new store, or one from before."""
    vault.reload()
    names = vault.file_names()
    used = set(_needs(session))
    for key_id in sorted(used):
        if vault.find(key_id) is None and key_id not in names:
            raise KeyUnavailable(f"encryption key {key_id} {vault.problem(key_id)}")
    current = _first_current(vault, used, names)
    rows: dict[str, str] = {fp: fp for fp in vault.fingerprints()}
    for name, fp in names.items():  # old-style ids: the records' and the `current` file's
        if name in used or name == current:
            rows.pop(fp, None)
            rows[name] = fp
    for key_id, fp in rows.items():
        session.add(EncryptionKey(id=key_id, fingerprint=fp, current=key_id == current))
    session.flush()


def _check(session: Session, vault: Vault) -> None:
    recorded = {row.id: row for row in session.scalars(select(EncryptionKey))}
    for row in recorded.values():
        if row.id != row.fingerprint:
            vault.alias(row.id, row.fingerprint)
    needs = _needs(session)
    current = current_key_id(session)
    for key_id in sorted({current, *needs}):
        n = needs.get(key_id, 0)
        role = "the current key" if key_id == current else "a key"
        what = f"{role}, which {n} secret{'' if n == 1 else 's'} need{'s' if n == 1 else ''}"
        if vault.find(key_id) is None:
            raise KeyUnavailable(f"encryption key {key_id} ({what}) {vault.problem(key_id)}")
        for sample in _sealed(session, key_id, under=True, limit=1):
            try:
                vault.decrypt(key_id, _secret(sample)[1], _bound(sample))
            except VaultError:
                raise KeyUnavailable(
                    f"encryption key {key_id} ({what}) from {vault.source} does not decrypt "
                    f"the secret of {sample.name!r}: that key or the record was altered; put "
                    "back the key the store was written with"
                ) from None


def verify(server: Server) -> None:
    """Refuse (KeyUnavailable, VaultError) unless this process holds every key the store needs.

    A store that records no keys yet adopts the source's (or a new one); the check runs in
    the same transaction, so a refused adoption records nothing.
    """
    for attempt in range(2):
        try:
            with server.transaction() as session:
                if session.scalar(select(func.count()).select_from(EncryptionKey)) == 0:
                    _adopt(session, server.vault)
                _check(session, server.vault)
            return
        except Conflict:  # another process adopted at the same moment: check against its keys
            if attempt:
                raise


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class KeyInfo:
    id: str
    current: bool
    secrets: int
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "current": self.current,
            "secrets": self.secrets,
            "created_at": self.created_at.isoformat(),
        }


def _admin_only(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"only an admin can {what}")


def listing(server: Server, actor: Actor) -> list[KeyInfo]:
    """The keys the store knows, newest first, with how many secrets each still encrypts."""
    _admin_only(actor, "see the encryption keys")
    with server.reading() as session:
        needs = _needs(session)
        rows = session.scalars(select(EncryptionKey).order_by(EncryptionKey.created_at.desc()))
        return [KeyInfo(r.id, r.current, needs.get(r.id, 0), r.created_at) for r in rows]


def current(server: Server) -> str:
    with server.reading() as session:
        return current_key_id(session)


def _next_key(server: Server) -> str:
    """The key to rotate to: the one key in the source the store does not know yet (put there
    by whoever manages a read-only source), else a new one written into the source."""
    vault = server.vault
    with server.reading() as session:
        known = set(session.scalars(select(EncryptionKey.fingerprint)))
    vault.reload()
    new = sorted(vault.fingerprints() - known)
    if len(new) > 1:
        raise Conflict(
            f"{len(new)} keys in {vault.source} are new to the store ({', '.join(new)}): "
            "leave only the one to rotate to"
        )
    if new:
        return new[0]
    try:
        return vault.generate()
    except KeyUnavailable as e:
        raise Conflict(str(e)) from None


def _reencrypt_batch(session: Session, vault: Vault) -> int:
    # The store's current key, not the one this rotation made: after a concurrent rotation
    # both converge on the newer key instead of undoing each other.
    current = current_key_id(session)
    rows = _sealed(session, current, under=False, limit=_BATCH)
    for row in rows:
        sealed_with, blob = _secret(row)
        if sealed_with != current:
            plain = vault.decrypt(sealed_with, blob, _bound(row))
            _reseal(row, vault.encrypt(session, plain, _bound(row)))
        if isinstance(row, Credential) and row.identity_blob is not None:
            key_id = row.identity_key_id
            if key_id is not None and key_id != current:
                bound = identity_bound(row.id)
                plain = vault.decrypt(key_id, row.identity_blob, bound)
                row.identity_key_id, row.identity_blob = vault.encrypt(session, plain, bound)
    return len(rows)


def rotate(server: Server, actor: Actor = SYSTEM) -> tuple[str, int]:
    """Make a new key current and re-encrypt in small transactions; returns (key id, count).

    Readers keep working throughout: each record names its key, and old keys stay. Every
    process's next encryption uses the new key: it asks the store which key is current.
    """
    _admin_only(actor, "rotate the encryption key")
    key_id = _next_key(server)
    try:
        with server.transaction() as session:
            # Locking the current row waits for writes that already chose it (see
            # current_key_id), so none lands under the old key after the re-encryption.
            for row in session.scalars(
                select(EncryptionKey).where(EncryptionKey.current.is_(True)).with_for_update()
            ):
                row.current = False
            session.add(EncryptionKey(id=key_id, fingerprint=key_id, current=True))
    except Conflict:  # the store holds one current key: another rotation made its own
        raise Conflict(
            "another rotation made a key current at the same moment; see which with "
            "GET /api/v1/keys, and rotate again only if you still need to"
        ) from None
    done = 0
    while True:
        with server.transaction() as session:
            n = _reencrypt_batch(session, server.vault)
            done += n
            if not n:
                audit.record(
                    session, actor, "keys.rotate", "key", key_id, after={"reencrypted": done}
                )
                return key_id, done


# --------------------------------------------------------------------------- the content-hash key


def content_hash_key(server: Server) -> bytes:
    """The key of content hashes (delivered Secrets' annotations), one for every process.

    Kept in the store, encrypted: separate from the encryption keys, so a rotation does not
    make every delivered Secret look changed. A data directory's old key file is adopted.
    """
    with server.reading() as session:
        row = session.get(StoredSecret, _CONTENT_HASH)
        if row is not None:
            return bytes.fromhex(
                server.vault.decrypt(row.secret_key_id, row.secret_blob, _bound(row))
            )
    value = server.vault.source.legacy(_LEGACY_CONTENT_HASH) or secrets.token_bytes(32)
    try:
        with server.transaction() as session:
            stored = StoredSecret(name=_CONTENT_HASH, secret_key_id="", secret_blob=b"")
            stored.secret_key_id, stored.secret_blob = server.vault.encrypt(
                session, value.hex(), _bound(stored)
            )
            session.add(stored)
    except Conflict:  # another process stored one first: that one holds for all
        return content_hash_key(server)
    return value
