"""Log in and log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from pullkeeper.services.errors import ServiceError
from pullkeeper.web import security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _next(value: str | None) -> str:
    # Only a path on this site: never an open redirect to another host.
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/credentials"


@router.get("/")
def home() -> Response:
    return see_other("/credentials")


@router.get("/registries")
@router.get("/registries/{rest:path}")
def moved(request: Request, rest: str = "") -> Response:
    """Pages once under /registries: the same page under /credentials, query kept."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/credentials{'/' if rest else ''}{rest}{query}", status_code=308)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if session.optional(request) is not None:
        return see_other(_next(next))
    token = security.new_login_csrf()
    response = page(request, "login.html", None, login_csrf=token, next=_next(next), error="")
    session.set_login_csrf(request, response, token)
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    expected = request.cookies.get(security.LOGIN_CSRF_COOKIE)
    security.check(request, csrf, expected)
    response = see_other(_next(next))
    try:
        session.log_in(request, response, username, password)
    except ServiceError as e:
        token = expected or security.new_login_csrf()
        failed = page(
            request,
            "login.html",
            None,
            status=e.status,
            login_csrf=token,
            next=_next(next),
            username=username,
            error=e.message,
        )
        session.set_login_csrf(request, failed, token)
        return failed
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    response = see_other("/login")
    session.log_out(request, response, web)
    return response


reloads(router, {"/logout": "/credentials"})
