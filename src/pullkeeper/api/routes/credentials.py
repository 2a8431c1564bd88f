"""Credentials ("registries"): CRUD, (de)activation, secret reads, effective sets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.api.listing import encoded
from pullkeeper.core.etag import IfMatch
from pullkeeper.services import (
    cached_reads,
    cloud_exchange,
    credential_bulk,
    secret_manifests,
    sync,
)
from pullkeeper.services import credentials as svc
from pullkeeper.services.actor import Actor
from pullkeeper.services.schemas import CredentialIn, CredentialPatch
from pullkeeper.services.server import Server

router = APIRouter(tags=["credentials"])


class ListQuery(BaseModel):
    cluster: str | None = None
    project: str | None = None
    namespace: str | None = None
    provider: str | None = None
    state: str | None = Field(
        None,
        description="active or inactive (as stored); effective (active and used) or "
        "superseded (active, but a newer one for the same address and scope is used).",
    )
    q: str | None = Field(None, max_length=253, description="Part of the name.")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10**9, description="Rows to skip; cursor is cheaper.")
    cursor: str | None = Field(
        None, max_length=2048, description="The `next` or `prev` of an earlier answer."
    )
    sort: str | None = Field(
        None,
        max_length=16,
        description="name (the default), server, scope, state or updated; a leading - "
        "sorts the other way (-updated: the last changed first). Ties go by id; pass the "
        "same sort with a cursor.",
    )


@router.get("/credentials", response_model=dict[str, Any])
def list_credentials(
    actor: ActorDep, server: ServerDep, query: Annotated[ListQuery, Query()]
) -> Response:
    """Credentials by name (then id), or in the `sort` asked. `next` is the cursor of the page
    after this one (null on the last page), `prev` of the page before it."""
    q = query
    f = svc.Filters(q.cluster, q.project, q.namespace, q.provider, q.state, q.q)
    return encoded(
        cached_reads.credential_page(server, actor, f, q.limit, q.offset, q.cursor, q.sort)
    )


@router.post("/credentials", status_code=201, responses=conditional.CREATE)
def create_credential(
    body: CredentialIn, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    """Create a credential. One with a cloud identity is refused (422) unless its first
    token is made: the message says what the cloud refused and what to do."""
    scope = (body.scope, body.cluster, body.project, body.namespace)
    cloud = None
    if (i := body.identity) is not None:
        cloud = cloud_exchange.login_for_scope(
            server, actor, scope, body.provider, body.server, i.kind, i.fields(), i.secret
        )
    with server.transaction() as session:
        where = svc.find_scope(session, actor, *scope)
        cred = svc.create(session, actor, server.vault, body.spec(where, cloud))
        tagged(response, svc.tag(cred))
        return svc.describe(session, cred)


@router.get("/credentials/{credential_id}", responses=conditional.READ)
def get_credential(
    credential_id: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.reading() as session:
        cred = svc.get(session, actor, credential_id)
        tagged(response, svc.tag(cred))
        return svc.describe(session, cred)


@router.patch("/credentials/{credential_id}", responses=conditional.WRITE)
def update_credential(
    credential_id: str,
    body: CredentialPatch,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Change a credential; a new user name or email needs the password again. A new cloud
    identity is given whole, its secret again, and exchanged before anything changes."""
    changes = body.changes()
    if (i := body.identity) is not None:
        changes["cloud"] = cloud_exchange.login_for_credential(
            server, actor, credential_id, i.kind, i.fields(), i.secret
        )
        del changes["identity"]
    with server.transaction() as session:
        cred = svc.get(session, actor, credential_id)
        cred = svc.update(session, actor, server.vault, cred, changes, if_match=if_match)
        tagged(response, svc.tag(cred))
        return svc.describe(session, cred)


def _set_state(
    server: Server,
    actor: Actor,
    credential_id: str,
    state: str,
    if_match: IfMatch | None,
    response: Response,
) -> dict[str, Any]:
    with server.transaction() as session:
        cred = svc.get(session, actor, credential_id)
        cred = svc.set_state(session, actor, cred, state, if_match=if_match)
        tagged(response, svc.tag(cred))
        return svc.describe(session, cred)


@router.post("/credentials/{credential_id}/activate", responses=conditional.WRITE)
def activate(
    credential_id: str,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    return _set_state(server, actor, credential_id, "active", if_match, response)


@router.post("/credentials/{credential_id}/deactivate", responses=conditional.WRITE)
def deactivate(
    credential_id: str,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    return _set_state(server, actor, credential_id, "inactive", if_match, response)


@router.delete("/credentials/{credential_id}", status_code=204, responses=conditional.DELETE)
def delete_credential(
    credential_id: str, actor: ActorDep, server: ServerDep, if_match: IfMatchDep
) -> Response:
    with server.transaction() as session:
        cred = svc.get(session, actor, credential_id)
        svc.delete(session, actor, cred, if_match=if_match)
    return Response(status_code=204)


@router.get("/credentials/{credential_id}/dockerconfigjson")
def dockerconfigjson(credential_id: str, actor: ActorDep, server: ServerDep) -> Response:
    """The rendered .dockerconfigjson; project owners and admins only, audited."""
    with server.transaction() as session:
        cred = svc.get(session, actor, credential_id)
        payload = svc.secret_config(session, actor, server.vault, cred)
    return Response(payload, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/credentials/{credential_id}/status")
def credential_status(credential_id: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Where the credential's Secrets stand in each namespace: in_sync, pending, conflict or
    error, with the reason."""
    with server.reading() as session:
        cred = svc.get(session, actor, credential_id)
        return sync.status_of(server, cred, show_paths=actor.is_admin)


@router.get("/namespaces/{namespace}/effective-credentials", response_model=dict[str, Any])
def effective_credentials(
    namespace: str,
    actor: ActorDep,
    server: ServerDep,
    cluster: str = Query(..., description="Cluster name or id."),
    image: str | None = Query(
        None, max_length=1024, description="Only what the kubelet would try for this image."
    ),
) -> Response:
    return encoded(cached_reads.effective(server, actor, cluster, namespace, image))


class BulkIn(BaseModel):
    action: str = Field(description="deactivate or delete")
    ids: list[str] = Field(max_length=500, description="The credentials' ids.")


@router.post("/credentials/bulk")
def bulk(body: BulkIn, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Deactivate or delete several credentials: each one the caller may change is changed and
    audited as alone (all in one transaction); those they may not are left as they are and
    listed under `refused`, ids of none they see under `missing`."""
    with server.transaction() as session:
        done = credential_bulk.apply(
            session, actor, body.action, body.ids, server.settings.sync_excluded_namespaces
        )
        return done.as_dict()


@router.get("/credentials/{credential_id}/secret.yaml")
def secret_manifest(credential_id: str, actor: ActorDep, server: ServerDep) -> Response:
    """The credential's Secret as the sync writes it, one YAML document per namespace it
    reaches; project owners and admins only, audited (credential.read_secret)."""
    _, text = secret_manifests.download(server, actor, credential_id)
    return Response(text, media_type="application/yaml", headers={"Cache-Control": "no-store"})
