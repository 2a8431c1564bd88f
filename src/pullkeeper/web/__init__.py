"""The web UI: server-rendered pages over the same services as the API, mounted beside it on
the server's one application (pullkeeper.app)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pullkeeper.web import (
    apidocs,
    audit,
    checks,
    clusters,
    credential_bulk,
    credentials,
    login,
    namespaces,
    nodes,
    policies,
    projects,
    users,
    workload_list,
    workloads,
)
from pullkeeper.web.render import HERE
from pullkeeper.web.security import SecurityHeaders


def mount(app: FastAPI) -> None:
    """Add the pages, the API docs, their static files and the security headers to the app."""
    app.include_router(projects.creating)  # before /projects/{ref} would take /projects/new
    for module in (
        login,
        credential_bulk,  # before credentials: /credentials/bulk is no registry's id
        credentials,
        policies,
        nodes,
        projects,
        checks,
        workloads,
        workload_list,
        audit,
        users,
        apidocs,
        clusters,
        namespaces,
    ):
        app.include_router(module.router)
    app.mount(apidocs.ASSETS, apidocs.assets(), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)
