"""A credential's Secret as a manifest to download: exactly what the sync writes in each
namespace the credential reaches (core/delivery.py's Desired), as YAML. It holds the password,
so only its project's owners and admins get it, and each read is audited like `credential
config`'s (credential.read_secret)."""

from __future__ import annotations

from collections.abc import Sequence

import yaml
from sqlalchemy.orm import Session

from pullkeeper.core import delivery
from pullkeeper.services import audit, credentials
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden
from pullkeeper.services.server import Server
from pullkeeper.store.models import Credential
from pullkeeper.store.vault import Vault

__all__ = ["download", "may_download", "secret_yaml"]


def may_download(session: Session, actor: Actor, cred: Credential) -> bool:
    """Whether the actor may read the credential's secret: admins and its project's owners."""
    return actor.owns(credentials.project_of(session, cred))


def secret_yaml(
    session: Session,
    actor: Actor,
    vault: Vault,
    hash_key: bytes,
    cred: Credential,
    excluded: Sequence[str] = delivery.DEFAULT_EXCLUDED,
) -> str:
    """One Secret document per namespace the credential reaches, as the sync writes it there
    (labels and content hash included); with none known yet, one without a namespace (and so
    without a hash) for `kubectl apply -n`."""
    project_id = credentials.project_of(session, cred)
    if not actor.owns(project_id):
        raise Forbidden(
            "only an admin or the owner of the registry's project may download its Secret: "
            "it holds the password"
        )
    payload = delivery.Credential(
        cred.id,
        cred.name,
        cred.scope,
        cred.server,
        cred.username,
        vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id),
        cred.email,
    ).payload()
    namespaces = credentials.reach(session, actor, cred, excluded)
    docs = []
    for ns in namespaces:
        digest = delivery.content_hash(hash_key, payload, cred.name, ns)
        docs.append(delivery.Desired(ns, cred.name, cred.id, digest, payload).manifest())
    if not docs:
        unplaced = delivery.Desired("", cred.name, cred.id, "", payload).manifest()
        del unplaced["metadata"]["namespace"], unplaced["metadata"]["annotations"]
        docs.append(unplaced)
    audit.record(
        session,
        actor,
        "credential.read_secret",
        "credential",
        cred.id,
        project_id=project_id,
        after={"as": "secret manifest", "namespaces": namespaces},
    )
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def download(server: Server, actor: Actor, credential_id: str) -> tuple[str, str]:
    """(the credential's name, its Secrets as YAML) for the faces' downloads, audited."""
    # The key first: made on first use in a write of its own, which must not wait on ours.
    key = server.content_hash_key()
    with server.transaction() as session:
        cred = credentials.get(session, actor, credential_id)
        text = secret_yaml(
            session, actor, server.vault, key, cred, server.settings.sync_excluded_namespaces
        )
        return cred.name, text
