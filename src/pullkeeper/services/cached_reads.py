"""Credential reads answered through the read cache (services/read_cache.py).

The API and the web pages ask the same questions of the same listings: kept once, as the
bytes the API sends, an answer serves either (the web decodes it, a fraction of what
making it costs).
"""

from __future__ import annotations

import orjson

from pullkeeper.services import clusters, credentials
from pullkeeper.services.actor import Actor
from pullkeeper.services.server import Server

__all__ = ["credential_page", "effective"]


def credential_page(
    server: Server,
    actor: Actor,
    f: credentials.Filters,
    limit: int,
    offset: int,
    cursor: str | None,
    sort: str | None = None,
) -> bytes:
    """A page of the credentials the actor sees, in the sort's order, as the API's JSON body."""

    def make() -> bytes:
        with server.reading() as session:
            found = credentials.list_page(
                session, actor, f, limit, offset, cursor=cursor, sort=sort
            )
        return found.body(limit, offset)

    return server.reads.answer(actor, ("credentials", f, limit, offset, cursor, sort), make)


def effective(
    server: Server,
    actor: Actor,
    cluster: str,
    namespace: str,
    image: str | None,
) -> bytes:
    """A namespace's effective credentials (credentials.effective), as JSON."""
    excluded = server.settings.sync_excluded_namespaces

    def make() -> bytes:
        with server.reading() as session:
            c = clusters.get_cluster(session, actor, cluster)
            found = credentials.effective(session, actor, c, namespace, image, excluded)
        return orjson.dumps(found)

    return server.reads.answer(actor, ("effective", namespace, cluster, image), make)
