"""The encryption keys the store records: adoption of a data directory from before, key
sources, the content-hash key, who may list and rotate keys. (Lost and swapped keys,
replicas and rotation as real processes: tests/server_ops/test_keys.py.)"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select, text

from pullkeeper.app import create_app
from pullkeeper.services import keys, kubeconfigs
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.errors import Conflict
from pullkeeper.services.server import Server, StoreUnavailable
from pullkeeper.settings import Settings
from pullkeeper.store.models import Cluster, Credential, EncryptionKey
from pullkeeper.store.vault import VaultError, fingerprint
from tests.server.conftest import ADMIN_TOKEN, Backend, Env, assert_error, build_world

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def reopen(env: Env) -> Iterator[Callable[..., Server]]:
    """Servers opened on env's store, as further processes would be."""
    opened: list[Server] = []

    def make(**overrides: object) -> Server:
        settings = {"data": env.data, "database_url": env.database_url, "sync": False}
        server = Server.open(Settings(**{**settings, **overrides}))
        opened.append(server)
        return server

    yield make
    for server in opened:
        server.close()


def _password(server: Server, credential_id: str) -> str:
    with TestClient(create_app(server), raise_server_exceptions=False) as client:
        r = client.get(f"/api/v1/credentials/{credential_id}/dockerconfigjson", headers=ADMIN)
    assert r.status_code == 200, r.text
    password: str = next(iter(r.json()["auths"].values()))["password"]
    return password


def _as_before(env: Env, legacy_id: str, hash_key: bytes) -> Path:
    """Make env's store and data directory what they were before the store recorded keys:
    a key file named by a random id, a `current` file naming it, records carrying that id,
    the content-hash key in a file, and empty key tables (as migration 0012 leaves them)."""
    keydir = env.data / "keys"
    [key_file] = keydir.glob("*.key")
    legacy = key_file.rename(keydir / f"{legacy_id}.key")
    (keydir / "current").write_text(legacy_id)
    (keydir / "content-hash.secret").write_bytes(hash_key)
    with env.server.db.engine.begin() as conn:
        conn.execute(text("UPDATE credentials SET secret_key_id = :id"), {"id": legacy_id})
        conn.execute(text("DELETE FROM encryption_keys"))
        conn.execute(text("DELETE FROM stored_secrets"))
    return legacy


def test_a_data_directory_from_before_is_adopted(env: Env, reopen: Callable[..., Server]) -> None:
    env.cluster("c1")
    old = env.cred("old", password="pw-from-before-8Qe")
    legacy_id, hash_key = secrets.token_hex(8), os.urandom(32)
    legacy = _as_before(env, legacy_id, hash_key)

    # A swapped key file is refused, and the refusal records nothing.
    original = legacy.read_bytes()
    legacy.write_bytes(os.urandom(32))
    with pytest.raises(StoreUnavailable) as refused:
        reopen()
    message = refused.value.message
    assert legacy_id in message and "does not decrypt" in message and "'old'" in message
    assert "\n" not in message
    legacy.write_bytes(original)

    server = reopen()
    with server.reading() as session:
        rows = [(r.id, r.fingerprint, r.current) for r in session.scalars(select(EncryptionKey))]
    assert rows == [(legacy_id, fingerprint(original), True)]
    assert _password(server, old["id"]) == "pw-from-before-8Qe"
    # Delivered Secrets keep their content hashes: the old content-hash key is adopted.
    assert server.content_hash_key() == hash_key
    # New secrets go under the adopted key until a rotation moves every secret to a new one.
    with TestClient(create_app(server), raise_server_exceptions=False) as client:
        body = {"name": "newer", "cluster": "c1", "scope": "cluster", "password": "pw-newer-8Qe"}
        body |= {"provider": "custom", "server": "newer.example.com", "username": "robot"}
        assert client.post("/api/v1/credentials", json=body, headers=ADMIN).status_code == 201
    assert set(_key_ids(server).values()) == {legacy_id}
    key_id, count = keys.rotate(server)
    assert count == 3  # two credentials and the content-hash key
    assert key_id == fingerprint((env.data / "keys" / f"{key_id}.key").read_bytes())
    assert set(_key_ids(server).values()) == {key_id}
    assert _password(server, old["id"]) == "pw-from-before-8Qe"
    assert server.content_hash_key() == hash_key
    assert reopen().content_hash_key() == hash_key


def _key_ids(server: Server) -> dict[str, str]:
    with server.reading() as session:
        rows = session.execute(text("SELECT name, secret_key_id FROM credentials"))
        return {name: key_id for name, key_id in rows}


def test_key_sources_are_checked(make_server: Callable[..., Server], tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="give one"):
        Settings(keys=_key(), keys_dir=tmp_path / "keys")

    bad = f"{_key()},not-a-key-but-a-secret-9z"
    with pytest.raises(StoreUnavailable) as refused:
        make_server(keys=bad)
    assert "entry 2 of PULLKEEPER_KEYS" in refused.value.message
    assert "not-a-key" not in refused.value.message

    keydir = tmp_path / "odd-keys"
    keydir.mkdir()
    (keydir / "x.key").write_text("too short")
    with pytest.raises(StoreUnavailable, match=r"x\.key is not an encryption key"):
        make_server(keys_dir=keydir)

    # A new store cannot tell which of several keys to start with.
    with pytest.raises(StoreUnavailable, match="holds 2: keep only the one to start with"):
        make_server(data="several", keys=f"{_key()},{_key()}")
    # Keys given as base64 text in files (a Secret's stringData) are read as well.
    (keydir / "x.key").write_text(_key() + "\n")
    server = make_server(data="b64", keys_dir=keydir)
    assert keys.current(server) == fingerprint(base64.b64decode((keydir / "x.key").read_text()))


def test_the_content_hash_key_is_one_for_every_process(
    backend: Backend, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    old, new = _key(), _key()
    url = backend.fresh_url("pk_hash") or f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_server(data="one", database_url=url, keys=old)
    second = make_server(data="two", database_url=url, keys=old)
    value = first.content_hash_key()
    assert second.content_hash_key() == value
    # A rotation re-encrypts it, and leaves it as it was: delivered Secrets do not change.
    keys.rotate(make_server(data="three", database_url=url, keys=f"{old},{new}"))
    assert make_server(data="four", database_url=url, keys=new).content_hash_key() == value
    assert not list(tmp_path.glob("*/keys"))  # nothing written beside the data


def test_a_rotation_takes_the_one_key_added_to_the_source(env: Env) -> None:
    keydir = env.data / "keys"
    added = os.urandom(32)
    (keydir / "added-by-hand.key").write_bytes(added)
    key_id, _ = keys.rotate(env.server)
    assert key_id == fingerprint(added) == keys.current(env.server)
    (keydir / "a.key").write_bytes(os.urandom(32))
    (keydir / "b.key").write_bytes(os.urandom(32))
    with pytest.raises(Conflict, match=r"2 keys in the key directory .* are new to the store"):
        keys.rotate(env.server)
    assert keys.current(env.server) == key_id


def test_only_admins_list_and_rotate_keys(env: Env) -> None:
    w = build_world(env, ("owner-a", "member-a", "viewer-a", "gviewer"))
    before = keys.current(env.server)
    for who in ("owner-a", "member-a", "viewer-a", "gviewer"):
        assert_error(w.as_(who).post("keys/rotate"), 403)
        assert_error(w.as_(who).get("keys"), 403)
    assert_error(env.anon.post("keys/rotate"), 401)
    assert keys.current(env.server) == before

    listed = env.admin.ok("GET", "keys")["items"]
    assert [(k["id"], k["current"], k["secrets"]) for k in listed] == [(before, True, 7)]
    rotated = env.admin.ok("POST", "keys/rotate")
    assert rotated == {"key": keys.current(env.server), "reencrypted": 7}
    listed = env.admin.ok("GET", "keys")["items"]
    assert [(k["id"], k["current"], k["secrets"]) for k in listed] == [
        (rotated["key"], True, 7),
        (before, False, 0),
    ]
    events = env.audit(action="keys.rotate")
    assert [(e["actor"], e["object_id"], e["after"]) for e in events] == [
        ("admin", rotated["key"], {"reencrypted": 7})
    ]


def test_the_store_holds_one_current_key_whatever_races(env: Env) -> None:
    # Two replicas adopting their own key, or two rotations, at the same moment: the second
    # current key cannot be written, so no write ever lands under a key others lack.
    with pytest.raises(Conflict), env.server.transaction() as session:
        session.add(EncryptionKey(id="b" * 32, fingerprint="b" * 32, current=True))
    with env.server.reading() as session:
        assert session.scalar(select(func.count()).where(EncryptionKey.current.is_(True))) == 1
    # Not current, any number of keys may be recorded.
    with env.server.transaction() as session:
        session.add(EncryptionKey(id="c" * 32, fingerprint="c" * 32, current=False))
        session.add(EncryptionKey(id="d" * 32, fingerprint="d" * 32, current=False))


def test_a_rotation_reencrypts_a_cloud_identitys_secret_bound_to_its_credential(
    env: Env,
) -> None:
    env.cluster("c1")
    server = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    made = env.cred("ecr", provider="ecr", server=server, username="AWS")
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    bound = keys.identity_bound(made["id"])
    with env.server.transaction() as session:
        cred = session.get(Credential, made["id"])
        assert cred is not None
        cred.identity_kind = "aws"
        cred.identity_key_id, cred.identity_blob = env.server.vault.encrypt(session, secret, bound)
    old = keys.current(env.server)
    (env.data / "keys" / "next.key").write_bytes(os.urandom(32))
    key_id, count = keys.rotate(env.server)
    assert count == 1 and key_id != old
    with env.server.reading() as session:
        cred = session.get(Credential, made["id"])
        assert cred is not None and cred.identity_blob is not None
        assert cred.identity_key_id == cred.secret_key_id == key_id
        assert env.server.vault.decrypt(key_id, cred.identity_blob, bound) == secret
        # Bound apart: the identity's blob is not the password's, nor decrypts as it.
        with pytest.raises(VaultError):
            env.server.vault.decrypt(key_id, cred.identity_blob, made["id"])


_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]
users:
- {name: u, user: {token: kube-s3cret-token}}
- {name: other, user: {token: other-s3cret-token}}
contexts:
- {name: x, context: {cluster: c, user: u}}
- {name: y, context: {cluster: c, user: other}}
current-context: x
"""


def test_a_rotation_reencrypts_an_uploaded_kubeconfig_bound_to_its_cluster(env: Env) -> None:
    made = env.cluster("c1")
    env.admin.ok("PUT", "clusters/c1/kubeconfig", json={"content": _KUBECONFIG})
    old = keys.current(env.server)
    with env.server.reading() as session:
        row = session.get(Cluster, made["id"])
        assert row is not None and row.kubeconfig_key_id == old and row.kubeconfig_blob
        # Encrypted at rest, and only the chosen context's user kept.
        assert b"kube-s3cret-token" not in row.kubeconfig_blob
        plain = env.server.vault.decrypt(old, row.kubeconfig_blob, keys.kubeconfig_bound(row.id))
        assert "kube-s3cret-token" in plain and "other-s3cret-token" not in plain
    assert {k.id: k.secrets for k in keys.listing(env.server, SYSTEM)}[old] == 1
    (env.data / "keys" / "next.key").write_bytes(os.urandom(32))
    key_id, count = keys.rotate(env.server)
    assert count == 1 and key_id != old
    with env.server.reading() as session:
        row = session.get(Cluster, made["id"])
        assert row is not None and row.kubeconfig_key_id == key_id
        assert row.kubeconfig_blob is not None
        access = kubeconfigs.access_of(env.server.vault, row)
    assert access.config is not None and access.context == "x"
    assert access.config["users"] == [{"name": "u", "user": {"token": "kube-s3cret-token"}}]
    keys.verify(env.server)  # the start-up check decrypts it with the new key
