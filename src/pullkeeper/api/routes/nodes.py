"""What a cluster's nodes read (their credentials, with a node token), and the node tokens
admins issue for them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from pullkeeper.api.deps import ActorDep, NodeDep, ServerDep
from pullkeeper.core.credential_provider import CacheKeyType
from pullkeeper.services import clusters
from pullkeeper.services.auth import node_tokens
from pullkeeper.services.node_credentials import node_credentials
from pullkeeper.services.schemas import TokenIn

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
