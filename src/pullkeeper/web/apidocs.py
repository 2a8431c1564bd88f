"""The interactive API docs (Swagger UI) at /api/v1/docs, served like the pages.

Swagger UI's files come from the installed package (fastapi-offline ships swagger-ui-dist
unchanged), pinned with their hashes by the lock; no CDN. The page carries the pages' CSP,
so it has no inline script: a static file of ours starts Swagger UI.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pullkeeper.web.render import env
from pullkeeper.web.security import API_DOCS

router = APIRouter(include_in_schema=False)
# Where Swagger UI's own files are served; mounted before /static, which would take them.
ASSETS = "/static/swagger-ui"


def assets() -> StaticFiles:
    return StaticFiles(packages=[("fastapi_offline", "static")])


@router.get(API_DOCS)
def api_docs(request: Request) -> HTMLResponse:
    html = env.get_template("api_docs.html").render(
        assets=ASSETS, openapi_url=request.app.openapi_url
    )
    return HTMLResponse(html)
