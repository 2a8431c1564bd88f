"""Request-level helpers shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Unauthorized
from pullkeeper.services.server import Server

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer pk_...`")


def server(request: Request) -> Server:
    s: Server = request.app.state.server
    return s


def source(request: Request) -> str:
    return request.client.host if request.client else ""


def current_actor(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("missing API token: send Authorization: Bearer <token>")
    return server(request).authenticate(creds.credentials, source(request))


ActorDep = Annotated[Actor, Depends(current_actor)]
ServerDep = Annotated[Server, Depends(server)]
