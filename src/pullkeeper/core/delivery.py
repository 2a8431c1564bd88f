"""Which Secrets belong in which namespaces: the desired state the sync keeps true.

Each active credential becomes a `kubernetes.io/dockerconfigjson` Secret named
after it in every namespace its scope covers:

- namespace scope: that namespace;
- project scope: every namespace of the project, by the namespace's label
  `pullkeeper.io/project=NAME`, else Rancher's `field.cattle.io/projectId`
  (`CLUSTER:PROJECT`), else the membership recorded in pullkeeper;
- cluster scope: every namespace but the excluded ones (a list, and any
  namespace labelled `pullkeeper.io/exclude=true`).

A namespace being deleted (Terminating) gets nothing and loses nothing: the
cluster refuses new objects there and removes the old ones itself.

A Secret carries labels that say who manages it and for which credential,
and an annotation with a keyed hash of its content, so that comparing two
hashes tells whether a write is needed without reading the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pullkeeper.core import dockerconfig, secret
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go import base64 as gob64

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "pullkeeper"
CREDENTIAL_LABEL = "pullkeeper.io/credential"
PROJECT_LABEL = "pullkeeper.io/project"
EXCLUDE_LABEL = "pullkeeper.io/exclude"
RANCHER_PROJECT_LABEL = "field.cattle.io/projectId"
HASH_ANNOTATION = "pullkeeper.io/content-hash"
DEFAULT_EXCLUDED = ("kube-system", "kube-public", "kube-node-lease")
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"


@dataclass(frozen=True, slots=True)
class Credential:
    """An active credential, as far as delivering it goes."""

    id: str
    name: str  # the Secret's name
    scope: str  # "namespace", "project" or "cluster"
    server: str
    username: str
    password: str = field(repr=False)
    email: str = ""
    namespace: str | None = None  # namespace scope
    project: str | None = None  # project scope: the project's name
    adopt: bool = False  # take over a same-named Secret pullkeeper did not create

    def payload(self) -> bytes:
        return dockerconfig.encode_config_json(
            {self.server: AuthEntry(self.username, self.password, self.email)}
        )


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    recorded_project: str | None = None  # the membership recorded in pullkeeper
    terminating: bool = False  # being deleted: the cluster accepts nothing new there

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Namespace:
        meta = obj.get("metadata") or {}
        terminating = bool(meta.get("deletionTimestamp")) or (
            (obj.get("status") or {}).get("phase") == "Terminating"
        )
        return cls(str(meta.get("name", "")), dict(meta.get("labels") or {}), None, terminating)


@dataclass(frozen=True, slots=True)
class Desired:
    """One Secret as it should be."""

    namespace: str
    name: str
    credential_id: str
    content_hash: str
    payload: bytes = field(repr=False)
    adopt: bool = False

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: MANAGER, CREDENTIAL_LABEL: self.credential_id},
                "annotations": {HASH_ANNOTATION: self.content_hash},
            },
            "type": secret.TYPE_DOCKERCONFIGJSON,
            "data": {secret.KEY_DOCKERCONFIGJSON: gob64.std_encode(self.payload)},
        }


@dataclass(frozen=True, slots=True)
class Collision:
    """Two credentials that would put a Secret of the same name in one namespace."""

    namespace: str
    name: str
    kept: str  # credential id delivered
    refused: str  # credential id not delivered there

    @property
    def reason(self) -> str:
        return f"another credential ({self.kept}) of a narrower scope has this name here"


def project_of(ns: Namespace, projects: Iterable[str]) -> str | None:
    """The project a namespace belongs to: its label, Rancher's label, else what is recorded."""
    known = set(projects)
    label = ns.labels.get(PROJECT_LABEL)
    if label:
        return label if label in known else None
    rancher = ns.labels.get(RANCHER_PROJECT_LABEL)
    if rancher:
        # Rancher writes "c-xxxxx:p-yyyyy"; the label value itself has no colon (p-yyyyy).
        name = rancher.rpartition(":")[2]
        return name if name in known else None
    return ns.recorded_project if ns.recorded_project in known else None


def is_excluded(ns: Namespace, excluded: Iterable[str]) -> bool:
    return ns.name in set(excluded) or ns.labels.get(EXCLUDE_LABEL, "").lower() == "true"


def content_hash(key: bytes, payload: bytes, name: str, namespace: str) -> str:
    """A keyed hash: equal content gives equal hashes, and nobody without the key can test
    a guessed password against it."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (namespace.encode(), name.encode(), payload):
        mac.update(len(part).to_bytes(4, "big") + part)
    return "hmac-sha256:" + mac.hexdigest()


def covers(cred: Credential, ns: Namespace, project: str | None, excluded: Sequence[str]) -> bool:
    if cred.scope == "namespace":
        return cred.namespace == ns.name
    if cred.scope == "project":
        return project is not None and cred.project == project
    return not is_excluded(ns, excluded)


_SCOPE_ORDER = {"namespace": 0, "project": 1, "cluster": 2}


def desired_state(
    credentials: Sequence[Credential],
    namespaces: Sequence[Namespace],
    projects: Iterable[str],
    key: bytes,
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
) -> tuple[dict[tuple[str, str], Desired], list[Collision]]:
    """Every Secret that should exist, by (namespace, name), and the name collisions.

    The narrowest scope wins a collision (namespace over project over cluster,
    then the name's credential id, for a stable answer).
    """
    known = list(projects)
    ordered = sorted(credentials, key=lambda c: (_SCOPE_ORDER[c.scope], c.id))
    payloads = {c.id: c.payload() for c in ordered}
    out: dict[tuple[str, str], Desired] = {}
    collisions: list[Collision] = []
    for ns in namespaces:
        if ns.terminating:
            continue
        project = project_of(ns, known)
        for cred in ordered:
            if not covers(cred, ns, project, excluded):
                continue
            slot = (ns.name, cred.name)
            if slot in out:
                collisions.append(Collision(ns.name, cred.name, out[slot].credential_id, cred.id))
                continue
            payload = payloads[cred.id]
            out[slot] = Desired(
                ns.name,
                cred.name,
                cred.id,
                content_hash(key, payload, cred.name, ns.name),
                payload,
                cred.adopt,
            )
    return out, collisions


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True, slots=True)
class Existing:
    """A Secret found in the cluster, as far as the comparison needs it."""

    namespace: str
    name: str
    managed: bool
    credential_id: str | None
    content_hash: str | None
    resource_version: str = ""
    # The hash of what the Secret really holds, when read with the key: a hand edit of
    # the data shows here even though the annotation still claims the old content.
    payload_hash: str | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], key: bytes | None = None) -> Existing:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        payload_hash = None
        if key is not None:
            encoded = (obj.get("data") or {}).get(secret.KEY_DOCKERCONFIGJSON, "")
            try:
                payload = gob64.std_decode(str(encoded))
            except ValueError:
                payload = b""
            payload_hash = content_hash(key, payload, name, namespace)
        return cls(
            namespace=namespace,
            name=name,
            managed=labels.get(MANAGED_BY) == MANAGER,
            credential_id=labels.get(CREDENTIAL_LABEL),
            content_hash=annotations.get(HASH_ANNOTATION),
            resource_version=str(meta.get("resourceVersion", "")),
            payload_hash=payload_hash,
        )

    def differs(self, want: Desired) -> bool:
        return (
            self.credential_id != want.credential_id
            or self.content_hash != want.content_hash
            or (self.payload_hash is not None and self.payload_hash != want.content_hash)
        )


@dataclass(slots=True)
class Plan:
    create: list[Desired] = field(default_factory=list)
    update: list[tuple[Desired, Existing]] = field(default_factory=list)
    delete: list[Existing] = field(default_factory=list)
    in_sync: list[Desired] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.update) + len(self.delete)


def plan(
    desired: Mapping[tuple[str, str], Desired],
    existing: Mapping[tuple[str, str], Existing],
    namespaces: Iterable[str] | None = None,
) -> Plan:
    """What to write so that the managed Secrets (of these namespaces, or all) are as desired.

    An unmanaged Secret of a desired name is planned as a create: the write will
    meet it (409), and only an adopting credential may then replace it.
    """
    only = set(namespaces) if namespaces is not None else None
    out = Plan()
    for slot, want in desired.items():
        if only is not None and slot[0] not in only:
            continue
        have = existing.get(slot)
        if have is None or not have.managed:
            out.create.append(want)
        elif have.differs(want):
            out.update.append((want, have))
        else:
            out.in_sync.append(want)
    for slot, have in existing.items():
        if only is not None and slot[0] not in only:
            continue
        if have.managed and slot not in desired:
            out.delete.append(have)
    return out
