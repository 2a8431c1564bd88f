"""Users and their API tokens (admins), and changing one's own password (everyone)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from pullkeeper.core import passwords
from pullkeeper.services import auth
from pullkeeper.services.errors import Invalid, TooManyRequests
from pullkeeper.services.schemas import UserIn
from pullkeeper.web import forms, security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other

router = APIRouter(route_class=WebRoute, include_in_schema=False)
USER_FIELDS = ("username", "password", "role")
# The one role on the server a new user has: the form's choice -> (admin, viewer).
SERVER_ROLES = {"admin": (True, False), "viewer": (False, True), "none": (False, False)}
Csrf = Annotated[str, Form(max_length=128)]
PASSWORD_FIELDS = ("current", "new", "again")


def _users_page(
    request: Request,
    web: session.WebSession,
    values: dict[str, Any],
    errors: forms.Errors,
    status: int = 200,
    notice: str = "",
) -> Response:
    with session.server_of(request).reading() as s:
        users = [auth.user_dict(u) for u in auth.list_users(s)]
    return page(
        request,
        "users.html",
        web,
        status=status,
        users=users,
        values=values,
        errors=errors,
        notice=notice,
    )


@router.get("/users")
def users_page(request: Request, created: str = "", deleted: str = "") -> Response:
    web = session.required(request)
    auth.check_admin(web.actor, "list users")
    notice = f"User {created} created." if created else ""
    if deleted:
        notice = f"User {deleted} deleted, with their memberships and tokens."
    return _users_page(request, web, {"role": "none"}, {}, notice=notice)


def _weak(password: str, username: str) -> str | None:
    """Why the password may not be used (the rule every page and the API apply), or None."""
    try:
        passwords.check(password, username)
    except passwords.WeakPassword as e:
        return str(e)
    return None


def _differ(password: str, again: str, words: str) -> str | None:
    return None if password == again else f"{words}; type the same one twice"


@router.post("/users")
def create_user(
    request: Request,
    csrf: Annotated[str, Form(max_length=128)] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form(max_length=8)] = "none",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "create users")  # refused before the form is checked
    errors: forms.Errors = {}
    if role not in SERVER_ROLES:
        errors["role"] = "choose the user's role on the server: admin, viewer or none"
    admin, viewer = SERVER_ROLES.get(role, (False, False))
    values: dict[str, Any] = {
        "username": username.strip(),
        "password": password,
        "admin": admin,
        "viewer": viewer,
    }
    forms.check_all(
        errors,
        {
            "username": lambda: forms.name_problem(
                values["username"], "user name", dots=False, example="jane-doe"
            ),
            "password": lambda: _weak(values["password"], values["username"]),
        },
    )
    body = forms.parse(UserIn, values, errors) if not errors else None
    server = session.server_of(request)

    def run() -> None:
        if body is None:
            return
        with server.transaction() as s:
            auth.create_user(
                s, web.actor, body.username, body.password, admin=body.admin, viewer=body.viewer
            )

    if body is not None and forms.attempt(run, errors, USER_FIELDS):
        return see_other(f"/users?created={values['username']}")
    values["password"] = ""  # never sent back
    values["role"] = role
    return _users_page(request, web, values, errors, status=422)


def _user_page(
    request: Request,
    web: session.WebSession,
    ref: str,
    errors: forms.Errors,
    notice: str = "",
    status: int = 200,
    refused: str = "",
) -> Response:
    with session.server_of(request).reading() as s:
        user = auth.get_user(s, ref)
        tokens = [auth.token_dict(t) for t in auth.list_user_tokens(s, web.actor, user)]
        projects = auth.user_projects(s, user)
        shown = auth.user_dict(user)
    return page(
        request,
        "user.html",
        web,
        status=status,
        user=shown,
        tokens=tokens,
        projects=projects,
        current_token=web.token_id,
        errors=errors,
        notice=notice,
        refused=refused,
    )


@router.get("/users/{ref}")
def user_page(
    request: Request,
    ref: str,
    revoked: str = "",
    reset: str = "",
    disabled: str = "",
    enabled: str = "",
) -> Response:
    web = session.required(request)
    notice = "Token revoked." if revoked else ""
    if reset.isdigit():
        notice = f"Password reset; {reset} of the user's sessions and tokens were revoked."
    if disabled.isdigit():
        notice = f"User disabled; {disabled} of their sessions and tokens were revoked."
    if enabled:
        notice = "User enabled: they can log in again. Their old tokens stay revoked."
    return _user_page(request, web, ref, {}, notice)


@router.post("/users/{ref}/password")
def reset_password(
    request: Request,
    ref: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "reset another user's password")  # before the form is checked
    errors: forms.Errors = {}
    done: list[tuple[str, int]] = []
    with session.server_of(request).reading() as s:
        username = auth.get_user(s, ref).username
    forms.check_all(
        errors,
        {
            "password": lambda: _weak(password, username),
            "again": lambda: _differ(password, again, "the two passwords differ"),
        },
    )

    def run() -> None:
        with session.server_of(request).transaction() as s:
            user = auth.get_user(s, ref)
            done.append((user.id, auth.reset_password(s, web.actor, user, password)))

    if not errors and forms.attempt(run, errors, ("password", "again")):
        user_id, revoked = done[0]
        return see_other(f"/users/{user_id}?reset={revoked}")
    return _user_page(request, web, ref, errors, status=422)


@router.post("/users/{ref}/tokens/{token_id}/revoke")
def revoke(
    request: Request,
    ref: str,
    token_id: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    with session.server_of(request).transaction() as s:
        user = auth.get_user(s, ref)
        if token_id not in {t.id for t in auth.list_user_tokens(s, web.actor, user)}:
            raise Invalid(f"user {user.username!r} has no token {token_id!r}")
        auth.revoke_token(s, web.actor, token_id)
        user_id = user.id
    if token_id == web.token_id:
        return see_other("/login")
    return see_other(f"/users/{user_id}?revoked=1")


@router.post("/users/{ref}/disable")
def disable(request: Request, ref: str, csrf: Csrf = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "disable users")
    done: list[tuple[str, int]] = []

    def run() -> None:
        with session.server_of(request).transaction() as s:
            user = auth.get_user(s, ref)
            done.append((user.id, auth.disable_user(s, web.actor, user)))

    failed = forms.failure(run, {}, ())
    if failed is None:
        user_id, revoked = done[0]
        return see_other(f"/users/{user_id}?disabled={revoked}")
    return _user_page(request, web, ref, {}, status=failed.status, refused=failed.message)


@router.post("/users/{ref}/enable")
def enable(request: Request, ref: str, csrf: Csrf = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "enable users")  # before the user is looked up
    with session.server_of(request).transaction() as s:
        user = auth.get_user(s, ref)
        auth.enable_user(s, web.actor, user)
        user_id = user.id
    return see_other(f"/users/{user_id}?enabled=1")


def _deletion(request: Request, web: session.WebSession, ref: str) -> dict[str, Any]:
    with session.server_of(request).reading() as s:
        user = auth.get_user(s, ref)
        return {
            "user": auth.user_dict(user),
            "projects": auth.user_projects(s, user),
            "gone": auth.deletion(s, user),
            "yourself": user.id == web.actor.user_id,
        }


@router.get("/users/{ref}/delete")
def delete_confirm(request: Request, ref: str) -> Response:
    web = session.required(request)
    auth.check_admin(web.actor, "delete users")
    return page(request, "user_delete.html", web, refused="", **_deletion(request, web, ref))


@router.post("/users/{ref}/delete")
def delete(request: Request, ref: str, csrf: Csrf = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "delete users")
    done: list[str] = []

    def run() -> None:
        with session.server_of(request).transaction() as s:
            user = auth.get_user(s, ref)
            done.append(user.username)
            auth.delete_user(s, web.actor, user)

    failed = forms.failure(run, {}, ())
    if failed is None:
        return see_other(f"/users?deleted={done[0]}")
    context = _deletion(request, web, ref)
    return page(
        request, "user_delete.html", web, status=failed.status, refused=failed.message, **context
    )


# --------------------------------------------------------------------------- own password


@router.get("/account/password")
def password_form(request: Request, changed: str = "") -> Response:
    web = session.required(request)
    notice = "Password changed; your other sessions and tokens are revoked." if changed else ""
    return page(request, "password.html", web, errors={}, notice=notice)


@router.post("/account/password")
def change_password(
    request: Request,
    csrf: Annotated[str, Form(max_length=128)] = "",
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    errors: forms.Errors = {}
    server = session.server_of(request)
    forms.check_all(
        errors,
        {
            "new": lambda: _weak(new, web.actor.username),
            "again": lambda: _differ(new, again, "the two new passwords differ"),
        },
    )

    def run() -> None:
        if errors:
            return
        with server.transaction() as s:
            user = auth.get_user(s, web.actor.user_id)
            auth.change_password(
                s, server.throttle, web.actor, user, current, new, keep_token=web.token_id
            )

    failed = forms.failure(run, errors, PASSWORD_FIELDS)
    if failed is None and not errors:
        return see_other("/account/password?changed=1")
    status = 429 if isinstance(failed, TooManyRequests) else 422
    # No password is ever sent back into the form.
    return page(request, "password.html", web, status=status, errors=errors)


reloads(
    router,
    {
        "/users/{ref}/password": "/users/{ref}",
        "/users/{ref}/tokens/{token_id}/revoke": "/users/{ref}",
    },
)
