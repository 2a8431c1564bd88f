"""Deactivating or deleting several credentials at once: what a choice of ids comes to (those
the actor may change, those they may not, those gone), then each allowed one changed and
audited exactly as one at a time, in one transaction: all of them or none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from pullkeeper.core.delivery import DEFAULT_EXCLUDED
from pullkeeper.services import credentials
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Invalid, NotFound
from pullkeeper.store.models import Cluster, Credential

__all__ = ["ACTIONS", "MAX_IDS", "Plan", "apply", "plan"]

ACTIONS = ("deactivate", "delete")
MAX_IDS = 500  # a listing's largest page
REFUSED = "only an admin or the owner of the credential's project can change it"


@dataclass
class Plan:
    """What a bulk action would do: to which credentials, and which it would leave alone."""

    action: str
    allowed: list[Credential] = field(default_factory=list)
    refused: list[Credential] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids the actor sees no credential of
    unchanged: list[Credential] = field(default_factory=list)  # inactive already: no change
    namespaces: list[str] = field(default_factory=list)  # (cluster/namespace) losing Secrets

    def as_dict(self) -> dict[str, Any]:
        def brief(c: Credential) -> dict[str, str]:
            return {"id": c.id, "name": c.name}

        return {
            "action": self.action,
            "changed": [brief(c) for c in self.allowed],
            "refused": [brief(c) | {"reason": REFUSED} for c in self.refused],
            "missing": list(self.missing),
            "unchanged": [brief(c) for c in self.unchanged],
            "namespaces": list(self.namespaces),
        }


def _check(action: str, ids: Sequence[str]) -> list[str]:
    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}", "action")
    unique = list(dict.fromkeys(i for i in ids if i))
    if not unique:
        raise Invalid("choose at least one registry", "ids")
    if len(unique) > MAX_IDS:
        raise Invalid(f"choose at most {MAX_IDS} registries at once", "ids")
    return unique


def plan(
    session: Session,
    actor: Actor,
    action: str,
    ids: Sequence[str],
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
) -> Plan:
    """Sort the chosen credentials into those the actor may change and those they may not
    (checked one by one, as a single change checks it), and name the namespaces whose
    Secrets of theirs go (an inactive credential's Secrets are removed too)."""
    found = Plan(action)
    reached: set[str] = set()
    for credential_id in _check(action, ids):
        try:
            cred = credentials.get(session, actor, credential_id)
        except NotFound:
            found.missing.append(credential_id)
            continue
        if not credentials.may_manage(session, actor, cred):
            found.refused.append(cred)
            continue
        if action == "deactivate" and cred.state != "active":
            found.unchanged.append(cred)
            continue
        found.allowed.append(cred)
        if cred.state == "active":
            cluster = session.get(Cluster, cred.cluster_id)
            where = cluster.name if cluster is not None else cred.cluster_id
            reached |= {f"{where}/{n}" for n in credentials.reach(session, actor, cred, excluded)}
    found.namespaces = sorted(reached)
    return found


def apply(
    session: Session,
    actor: Actor,
    action: str,
    ids: Sequence[str],
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
) -> Plan:
    """Do the action to every chosen credential the actor may change, each audited as alone;
    leave the others as they are and say which (the caller's transaction holds them all)."""
    done = plan(session, actor, action, ids, excluded)
    for cred in done.allowed:
        if action == "delete":
            credentials.delete(session, actor, cred)
        else:
            credentials.set_state(session, actor, cred, "inactive")
    return done
