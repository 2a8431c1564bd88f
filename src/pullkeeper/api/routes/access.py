"""Login, users, API tokens, project members, and the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from pullkeeper.api.deps import ActorDep, ServerDep, source
from pullkeeper.api.listing import listing
from pullkeeper.services import audit, auth, clusters
from pullkeeper.services.schemas import LoginIn, MemberIn, PasswordIn, TokenIn, UserIn

router = APIRouter(tags=["access"])


@router.post("/login", status_code=201)
def login(body: LoginIn, request: Request, server: ServerDep) -> dict[str, Any]:
    """Exchange a user name and password for an API token (shown once)."""
    ttl = timedelta(days=server.settings.token_ttl_days)
    with server.transaction() as session:
        issued = auth.login(
            session, server.throttle, body.username, body.password, source(request), ttl
        )
    return {
        "token": issued.token,
        "id": issued.id,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
    }


@router.get("/me")
def me(actor: ActorDep) -> dict[str, Any]:
    return {
        "username": actor.username,
        "admin": actor.is_admin,
        "viewer": actor.viewer,
        "projects": actor.projects,
    }


@router.get("/users")
def list_users(actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    auth.check_admin(actor, "list users")
    with server.reading() as session:
        return {"items": [auth.user_dict(u) for u in auth.list_users(session)]}


@router.post("/users", status_code=201)
def create_user(body: UserIn, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.transaction() as session:
        user = auth.create_user(
            session, actor, body.username, body.password, admin=body.admin, viewer=body.viewer
        )
        return auth.user_dict(user)


@router.put("/users/{user}/password")
def reset_password(
    user: str, body: PasswordIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """An admin sets another user's password; every token of that user is revoked. Audited."""
    auth.check_admin(actor, "reset another user's password")  # before the user is looked up
    with server.transaction() as session:
        u = auth.get_user(session, user)
        revoked = auth.reset_password(session, actor, u, body.password)
        return {"user": u.username, "revoked_tokens": revoked}


@router.get("/users/{user}")
def show_user(user: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """A user, the projects they belong to with their role, and how many of their tokens
    are valid: admins, or the user."""
    with server.reading() as session:
        u = auth.get_user(session, user)
        if u.id != actor.user_id:
            auth.check_admin(actor, "see another user")
        projects = [p._asdict() for p in auth.user_projects(session, u)]
        valid = auth.deletion(session, u).tokens
        return {**auth.user_dict(u), "projects": projects, "valid_tokens": valid}


@router.post("/users/{user}/disable")
def disable_user(user: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Disable a user (admins): kept with their audit history, no login; every token and
    session of theirs is revoked. Not yourself, nor the last active admin. Audited."""
    auth.check_admin(actor, "disable users")  # before the user is looked up
    with server.transaction() as session:
        u = auth.get_user(session, user)
        revoked = auth.disable_user(session, actor, u)
        return {**auth.user_dict(u), "revoked_tokens": revoked}


@router.post("/users/{user}/enable")
def enable_user(user: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Let a disabled user log in again (admins); their revoked tokens stay revoked."""
    auth.check_admin(actor, "enable users")
    with server.transaction() as session:
        u = auth.get_user(session, user)
        auth.enable_user(session, actor, u)
        return auth.user_dict(u)


@router.delete("/users/{user}", status_code=204)
def delete_user(user: str, actor: ActorDep, server: ServerDep) -> Response:
    """Delete a user with their project memberships and tokens (admins); the audit trail
    keeps what they did. Not yourself, nor the last active admin. Audited."""
    auth.check_admin(actor, "delete users")
    with server.transaction() as session:
        auth.delete_user(session, actor, auth.get_user(session, user))
    return Response(status_code=204)


@router.get("/tokens")
def list_tokens(actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.reading() as session:
        return {"items": [auth.token_dict(t) for t in auth.list_tokens(session, actor)]}


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """A new token for the caller; the plaintext is in this response only."""
    days = body.expires_in_days or server.settings.token_ttl_days
    with server.transaction() as session:
        user = auth.get_user(session, actor.user_id)
        issued = auth.issue_token(session, actor, user, body.name, timedelta(days=days))
    return {
        "token": issued.token,
        "id": issued.id,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
    }


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, actor: ActorDep, server: ServerDep) -> Response:
    with server.transaction() as session:
        auth.revoke_token(session, actor, token_id)
    return Response(status_code=204)


@router.get("/projects/{project}/members")
def list_members(project: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.reading() as session:
        p = clusters.get_project(session, actor, project)
        return {"items": auth.members(session, p)}


@router.put("/projects/{project}/members/{user}")
def set_member(
    project: str, user: str, body: MemberIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    with server.transaction() as session:
        p = clusters.get_project(session, actor, project)
        u = auth.set_member(session, actor, p, user, body.role)
        return {"user": u.username, "role": body.role}


@router.delete("/projects/{project}/members/{user}", status_code=204)
def remove_member(project: str, user: str, actor: ActorDep, server: ServerDep) -> Response:
    with server.transaction() as session:
        auth.remove_member(session, actor, clusters.get_project(session, actor, project), user)
    return Response(status_code=204)


@router.get("/audit", response_model=dict[str, Any])
def list_audit(
    actor: ActorDep,
    server: ServerDep,
    action: str | None = None,
    user: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9, description="Events to skip; cursor is cheaper."),
    cursor: str | None = Query(
        None, max_length=256, description="The `next` or `prev` of an earlier answer."
    ),
) -> Response:
    """Audit events, newest first. `next` is the cursor of the page after this one (null on
    the last page), `prev` of the page before it."""
    with server.reading() as session:
        found = audit.page(
            session,
            actor,
            action=action,
            actor_name=user,
            object_type=object_type,
            object_id=object_id,
            since=since,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    return listing(found, limit, offset)
