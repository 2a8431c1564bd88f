"""The encryption keys of secret material: which the store knows, and rotation; admins only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import keys

router = APIRouter(tags=["keys"])


@router.get("/keys")
def list_keys(actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """The keys the store knows (ids are fingerprints, never key material), newest first,
    with how many secrets each still encrypts: a key with none may leave the key source."""
    return {"items": [k.as_dict() for k in keys.listing(server, actor)]}


@router.post("/keys/rotate")
def rotate(actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Make a new key current and re-encrypt every secret with it; audited as keys.rotate.

    Every server process on the store encrypts with the new key from its next write. With a
    key source pullkeeper cannot write (PULLKEEPER_KEYS, a mounted Secret), the new key is
    the one key there the store does not know yet.
    """
    key_id, count = keys.rotate(server, actor)
    return {"key": key_id, "reencrypted": count}
