"""Request-level helpers shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pullkeeper.services import auth
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Unauthorized
from pullkeeper.services.server import Server

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer pk_...`")


# Dependencies that read only memory are coroutines: a plain function would cost a hop to
# the thread pool and back on every request.
async def server(request: Request) -> Server:
    return _server(request)


def _server(request: Request) -> Server:
    s: Server = request.app.state.server
    return s


def source(request: Request) -> str:
    return request.client.host if request.client else ""


async def _authenticated(
    request: Request, creds: HTTPAuthorizationCredentials | None, *, node: bool
) -> Actor:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("missing API token: send Authorization: Bearer <token>")
    s, token, where = _server(request), creds.credentials, source(request)
    # A token seen lately is answered from memory; any other is looked up in the store.
    actor = s.tokens.get(token, where)
    if actor is None:
        return await run_in_threadpool(lambda: s.authenticate(token, where, node=node))
    return auth.of_kind(actor, node=node)


async def current_actor(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """A user's actor; a node token is refused (403)."""
    return await _authenticated(request, creds, node=False)


async def current_node(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """A node token's actor; a user's token is refused (403)."""
    return await _authenticated(request, creds, node=True)


ActorDep = Annotated[Actor, Depends(current_actor)]
NodeDep = Annotated[Actor, Depends(current_node)]
ServerDep = Annotated[Server, Depends(server)]
