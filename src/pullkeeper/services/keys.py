"""Rotation of the encryption key: a new key, then every secret re-encrypted under it."""

from __future__ import annotations

from sqlalchemy import select

from pullkeeper.services import audit
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.store.models import Credential

_BATCH = 200


def rotate(server: Server) -> tuple[str, int]:
    """Make a new key current and re-encrypt in small transactions; returns (key id, count).

    Readers keep working throughout: each record names its key, and old keys stay.
    """
    vault = server.vault
    key_id = vault.rotate()
    done = 0
    while True:
        with server.transaction() as session:
            rows = session.scalars(
                select(Credential)
                .where(Credential.secret_key_id != key_id)
                .limit(_BATCH)
                .with_for_update()
            ).all()
            for cred in rows:
                plain = vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id)
                cred.secret_key_id, cred.secret_blob = vault.encrypt(plain, cred.id)
            done += len(rows)
            if not rows:
                audit.record(
                    session, SYSTEM, "keys.rotate", "key", key_id, after={"reencrypted": done}
                )
                return key_id, done
