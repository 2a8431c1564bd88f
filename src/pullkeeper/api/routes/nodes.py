"""What a cluster's nodes read with a node token (their credentials, their node profile)
and report (their state); the node tokens admins issue for them, and the node profiles
admins keep."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, NodeDep, ServerDep
from pullkeeper.core import etag
from pullkeeper.core.credential_provider import CacheKeyType
from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.core.nodeconfig.selection import labels_from
from pullkeeper.services import clusters, node_profiles
from pullkeeper.services.auth import node_tokens
from pullkeeper.services.errors import Invalid
from pullkeeper.services.node_credentials import node_credentials
from pullkeeper.services.schemas import NodeProfileIn, NodeReportIn, TokenIn

router = APIRouter(tags=["nodes"])


@router.get("/node-credentials")
def read_node_credentials(
    node: NodeDep,
    server: ServerDep,
    cluster: Annotated[str, Query(description="The node's cluster (name or id): its token's.")],
    image: Annotated[str, Query(description="The repository the kubelet asks credentials for.")],
    cache_key_type: Annotated[
        CacheKeyType, Query(description="What the kubelet will reuse the answer for.")
    ] = CacheKeyType.REGISTRY,
) -> dict[str, Any]:
    """The auth entries the kubelet's keyring would use for the image among the cluster's
    credentials of cluster scope, with their passwords; node tokens only, each read audited."""
    with server.transaction() as session:
        return node_credentials(session, node, server.vault, cluster, image, cache_key_type)


@router.get("/clusters/{cluster}/node-tokens")
def list_node_tokens(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        return {"items": node_tokens.list_node_tokens(session, actor, c)}


@router.post("/clusters/{cluster}/node-tokens", status_code=201)
def create_node_token(
    cluster: str, body: TokenIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """A new node token for the cluster (admins); the plaintext is in this response only."""
    ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        issued = node_tokens.issue_node_token(session, actor, c, body.name, ttl)
        name = c.name
    return {
        "token": issued.token,
        "id": issued.id,
        "cluster": name,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
    }


@router.delete("/clusters/{cluster}/node-tokens/{token_id}", status_code=204)
def revoke_node_token(cluster: str, token_id: str, actor: ActorDep, server: ServerDep) -> Response:
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        node_tokens.revoke_node_token(session, actor, c, token_id)
    return Response(status_code=204)


@router.get("/clusters/{cluster}/node-profiles")
def list_node_profiles(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """The cluster's node profiles (a project's owner sees its projects' registries only)."""
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        return {"items": node_profiles.list_profiles(session, actor, c)}


@router.post("/clusters/{cluster}/node-profiles", status_code=201, responses=conditional.CREATE)
def create_node_profile(
    cluster: str, body: NodeProfileIn, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    """A new node profile (admins): `registries` as in a node profile file, `credentials`
    the names of the cluster's credentials of cluster scope that become the nodes' logins."""
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        created = node_profiles.create(session, actor, c, body.spec())
        tagged(response, node_profiles.tag(session, c, body.name))
        return created


@router.get("/clusters/{cluster}/node-profiles/{name}", responses=conditional.READ)
def get_node_profile(
    cluster: str, name: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        found = node_profiles.get(session, actor, c, name)
        tagged(response, node_profiles.tag(session, c, name))
        return found


@router.put("/clusters/{cluster}/node-profiles/{name}", responses=conditional.WRITE)
def put_node_profile(
    cluster: str,
    name: str,
    body: NodeProfileIn,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Replace the node profile (admins); a new `name` renames it."""
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        written = node_profiles.update(session, actor, c, name, body.spec(), if_match=if_match)
        tagged(response, node_profiles.tag(session, c, body.name))
        return written


@router.delete(
    "/clusters/{cluster}/node-profiles/{name}", status_code=204, responses=conditional.DELETE
)
def delete_node_profile(
    cluster: str, name: str, actor: ActorDep, server: ServerDep, if_match: IfMatchDep
) -> Response:
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        node_profiles.delete(session, actor, c, name, if_match=if_match)
    return Response(status_code=204)


@router.get("/clusters/{cluster}/nodes")
def list_node_states(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """What each node's agent last reported: applied, drifted or failed."""
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        return {"items": node_profiles.list_states(session, actor, c)}


@router.get("/node-profile", responses={304: {"description": "Unchanged since the ETag."}})
def read_node_profile(
    node: NodeDep,
    server: ServerDep,
    response: Response,
    cluster: Annotated[str, Query(description="The node's cluster (name or id): its token's.")],
    name: Annotated[str, Query(alias="node", description="The node's name.")],
    label: Annotated[
        list[str] | None, Query(description="The node's labels, KEY=VALUE (repeatable).")
    ] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Any:
    """The node profile a node with these labels gets, as a node profile document with its
    logins' passwords (node tokens only; each password read is audited). With the ETag of
    the last answer in If-None-Match, 304 when nothing in it changed (nothing read)."""
    try:
        labels = labels_from(label or [], "label")
    except ProfileError as e:
        raise Invalid(e.message, e.field) from None
    seen = if_none_match.strip().removeprefix("W/").strip('"') if if_none_match else None
    with server.transaction() as session:
        digest, found = node_profiles.for_node(
            session, node, server.vault, cluster, name, labels, seen
        )
    if found is None:
        return Response(status_code=304, headers={"ETag": etag.header(digest)})
    response.headers["ETag"] = etag.header(digest)
    response.headers["Cache-Control"] = "no-store"
    return found


@router.post("/node-reports", status_code=204)
def report_node_state(body: NodeReportIn, node: NodeDep, server: ServerDep) -> Response:
    """A node's agent says how its files are (node tokens only)."""
    with server.transaction() as session:
        node_profiles.report(
            session,
            node,
            body.cluster,
            body.node,
            profile=body.profile,
            digest=body.digest,
            state=body.state,
            detail=body.detail,
        )
    return Response(status_code=204)
