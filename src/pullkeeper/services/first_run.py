"""Where a new installation stands on its way to a first delivered Secret: a cluster, then a
project in it, then a registry (a credential). The Registries page guides through them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from pullkeeper.store.models import Cluster, Credential, Project, User

__all__ = ["STEPS", "steps_left"]

STEPS = ("cluster", "project", "registry")


def steps_left(session: Session) -> dict[str, Any] | None:
    """Which steps are done and the next one, with the admins to ask (the only ones who can
    take the first two); None once the server has a registry (one of cluster scope needs no
    project, and a server that delivers something is set up)."""
    done = {
        "cluster": bool(session.scalar(select(exists().where(Cluster.id.is_not(None))))),
        "project": bool(session.scalar(select(exists().where(Project.id.is_not(None))))),
        "registry": bool(session.scalar(select(exists().where(Credential.id.is_not(None))))),
    }
    if done["registry"]:
        return None
    ask = select(User.username).where(User.is_admin, User.disabled.is_(False))
    admins = list(session.scalars(ask.order_by(User.username)))
    return {"done": done, "next": next(s for s in STEPS if not done[s]), "admins": admins}
