"""`pullkeeper keys rotate` as a process: one line when it works, one line when it cannot."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from pullkeeper.services import clusters, credentials
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import Credential
from tests.integration.conftest import assert_one_line_error, pk


def _store_with_a_credential(data: Path) -> str:
    server = Server.open(Settings(data=data, sync=False))
    try:
        with server.transaction() as session:
            cluster = clusters.create_cluster(session, SYSTEM, "c1")
            scope = credentials.resolve_scope(session, SYSTEM, "cluster", cluster, None, None)
            spec = credentials.CredentialSpec(
                name="quay", scope=scope, provider="custom", server="quay.io",
                username="robot", password="pw-rotate-cli-7Hq",
            )  # fmt: skip
            made = credentials.create(session, SYSTEM, server.vault, spec)
            return str(made.id)
    finally:
        server.close()


def test_a_rotation_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _store_with_a_credential(data)
    done = pk("keys", "rotate", "--data", str(data))
    assert done.returncode == 0, done.describe()
    assert done.stdout.endswith(" is current; 1 secrets re-encrypted\n"), done.describe()
    assert done.stderr == ""


def test_a_record_that_does_not_decrypt_is_one_line_of_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cred_id = _store_with_a_credential(data)
    server = Server.open(Settings(data=data, sync=False))
    try:
        with server.transaction() as session:
            session.execute(
                update(Credential).where(Credential.id == cred_id).values(secret_blob=b"\0" * 64)
            )
    finally:
        server.close()
    # The store's check of its keys finds the record before any rotation starts.
    message = assert_one_line_error(pk("keys", "rotate", "--data", str(data)))
    assert message.startswith("error: encryption key "), message
    assert "does not decrypt the secret of 'quay'" in message
    assert "pw-rotate-cli" not in message
