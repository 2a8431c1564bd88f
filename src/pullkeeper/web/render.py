"""Templates, the error pages, and the route class that turns service errors into pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from pullkeeper import __version__
from pullkeeper.services.errors import ServiceError
from pullkeeper.services.paging import Page
from pullkeeper.web import cloud_identity, forms
from pullkeeper.web.session import LoginRequired, WebSession, optional

HERE = Path(__file__).parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: str | None) -> str:
    """An ISO time as 2024-05-01 12:34 UTC; empty for none."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _parts(value: object) -> Markup:
    """A name or address that may wrap after each "." and "/" (registry.example.com/team):
    on a narrow screen it breaks between its parts, not inside one."""
    return Markup("<wbr>").join(re.split(r"(?<=[./])", str(value)))


env.filters["when"] = _when
env.filters["parts"] = _parts
env.filters["without"] = lambda d, *keys: {k: v for k, v in d.items() if k not in keys}
env.filters["from_now"] = cloud_identity.from_now
env.filters["token_badge"] = cloud_identity.badge
env.globals["version"] = __version__
# How a form's error summary names a field it links to (else its name in words).
env.globals["field_labels"] = {
    "server": "Registry address",
    "username": "User name",
    "token_hosts": "Token servers on other hosts",
    "identity": "Cloud identity",
    "secret_access_key": "Secret access key",
    "role_arn": "Role to assume",
    "gcp_key": "Service-account JSON key",
    "azure_auth": "How it signs in to Microsoft Entra",
    "tenant_id": "Tenant",
    "port": "Container port",
    "mirror_default_registry": "Docker Hub mirror",
    "user": "User name",
    "current": "Current password",
    "new": "New password",
    "again": "New password again",
}
env.globals["identity_words"] = {
    "kinds": cloud_identity.KIND_WORDS,
    "fields": cloud_identity.FIELD_WORDS,
}


def page(
    request: Request,
    template: str,
    web: WebSession | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = env.get_template(template).render(
        request=request,
        path=request.url.path,
        actor=web.actor if web else None,
        may_audit=web is not None,
        csrf=web.csrf if web else context.pop("login_csrf", ""),
        htmx=request.headers.get("hx-request") == "true",
        **context,
    )
    return HTMLResponse(html, status_code=status)


def see_other(url: str) -> RedirectResponse:
    """After a successful form POST: the browser GETs the result (no resubmit on reload)."""
    return RedirectResponse(url, status_code=303)


def reloads(router: APIRouter, targets: Mapping[str, str]) -> None:
    """GET on an address only a form POSTs to (the page its answer showed, reloaded or typed
    again) goes to the form's page instead of "Method Not Allowed". A target may name the
    path's parameters ({ref}); the query is kept."""

    def to(target: str) -> Callable[[Request], Response]:
        def go(request: Request) -> Response:
            params = {k: quote(str(v), safe="") for k, v in request.path_params.items()}
            url = target.format(**params)
            return see_other(f"{url}?{request.url.query}" if request.url.query else url)

        return go

    for path, target in targets.items():
        router.add_api_route(path, to(target), methods=["GET"], include_in_schema=False)


def with_query(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def pages(
    path: str, filters: dict[str, str], page_no: int, total: int, size: int
) -> dict[str, Any]:
    """A paged listing's place: this page's number, how many there are, and the links to the
    pages before and after it (with the same filters), "" where there is none."""
    last = max(1, -(-total // size))
    return {
        "page_no": page_no,
        "pages": last,
        "prev_url": with_query(path, **filters, page=page_no - 1) if 1 < page_no <= last else "",
        "next_url": with_query(path, **filters, page=page_no + 1) if page_no < last else "",
        **_past_last(path, filters, page_no, total, last),
    }


def _past_last(
    path: str, filters: dict[str, str], page_no: int, total: int, last: int
) -> dict[str, Any]:
    """Whether the page asked for is past the last one (an old link, a typed number): the
    page says so, with a link to the last page, rather than show an empty table."""
    past = total > 0 and page_no > last
    return {
        "past_last": past,
        "last_url": with_query(path, **filters, page=last if last > 1 else None) if past else "",
    }


def keyset_pages(
    path: str, filters: dict[str, str], page_no: int, page: Page, size: int
) -> dict[str, Any]:
    """As pages(), for a listing read by cursor: the links carry the next or previous page's
    cursor (and its number, to show), so a page deep down costs what the first one does."""
    last = max(1, -(-page.total // size))
    back = page_no - 1
    if not page.prev:
        prev_url = ""
    elif back <= 1:  # the first page needs no cursor
        prev_url = with_query(path, **filters)
    else:
        prev_url = with_query(path, **filters, page=back, cursor=page.prev)
    return {
        "page_no": page_no,
        "pages": last,
        "prev_url": prev_url,
        "next_url": with_query(path, **filters, page=page_no + 1, cursor=page.next)
        if page.next
        else "",
        **_past_last(path, filters, page_no, page.total, last),
    }


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a static file): errors are pages too."""
    path = request.url.path
    if path.startswith(("/api/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        web = optional(request)
    except ServiceError:
        web = None
    titles = {
        403: "Not allowed",
        404: "Not found",
        405: "Not allowed",
        429: "Too many attempts",
    }
    return page(
        request,
        "error.html",
        web,
        status=status,
        title=titles.get(status, "Something is wrong"),
        message=message,
    )


# What a page says for a request no page route answered.
_UNANSWERED = {
    404: "There is no page at this address. Check it, or start again from the registries.",
    405: "This page cannot be used that way; go back and use its form or link.",
}


def unanswered_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """No page at the address, or not with that method (detail: the framework's words)."""
    return error_page(request, status, _UNANSWERED.get(status, detail))


def server_error_page(request: Request) -> HTMLResponse:
    """A bug, never the input's fault: the page says no more than that."""
    return error_page(request, 500, "Something went wrong on the server; its log says what.")


class WebRoute(APIRoute):
    """A page route: no session sends the browser to log in; a ServiceError is a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method != "GET":
                    target = "/"
                return see_other("/login?next=" + quote(target, safe="/"))
            except ServiceError as e:
                return error_page(request, e.status, e.message)
            except RequestValidationError as e:
                # Input no form field of the page can hold (typed past its length, a link
                # changed by hand): each problem in words, once.
                said = "; ".join(dict.fromkeys(forms.words(item) for item in e.errors()))
                return error_page(
                    request, 422, f"This was not read: {said or 'the request is not valid'}."
                )

        return route
