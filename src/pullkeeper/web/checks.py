"""The Pull check page: can an image be pulled in a namespace, with which credential, why not."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from pullkeeper.core.pullpolicy import POLICIES
from pullkeeper.services import checks, clusters
from pullkeeper.services.schemas import CHECK_CONFIG_LIMIT
from pullkeeper.web import forms, namespaces, security, session
from pullkeeper.web.render import WebRoute, page

router = APIRouter(route_class=WebRoute, include_in_schema=False)
FIELDS = ("image", "cluster", "namespace", "platform", "pull_policy", "config")


def _render(
    request: Request,
    web: session.WebSession,
    values: dict[str, Any],
    errors: forms.Errors,
    result: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    with session.server_of(request).reading() as s:
        known = [c.name for c in clusters.list_clusters(s, web.actor)]
    if len(known) == 1:
        values.setdefault("cluster", known[0])
    return page(
        request,
        "check.html",
        web,
        status=status,
        clusters=known,
        values=values,
        errors=errors,
        result=result,
        pull_policies=POLICIES,
        picker=namespaces.picker(request, web, values.get("cluster") or ""),
    )


@router.get("/checks")
def check_form(request: Request) -> Response:
    web = session.required(request)
    return _render(
        request, web, {"image": "", "namespace": "", "try_all": False, "on_node": False}, {}
    )


@router.post("/checks")
def run_check(
    request: Request,
    csrf: Annotated[str, Form(max_length=128)] = "",
    image: Annotated[str, Form(max_length=1024)] = "",
    cluster: Annotated[str, Form(max_length=253)] = "",
    namespace: Annotated[str, Form(max_length=63)] = "",
    platform: Annotated[str, Form(max_length=64)] = "",
    pull_policy: Annotated[str, Form(max_length=16)] = "",
    try_all: Annotated[str, Form(alias="all", max_length=3)] = "",
    on_node: Annotated[str, Form(max_length=3)] = "",
    config: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """The same server-side check as POST /api/v1/checks, shown in words; with a credential
    file uploaded, that file's entries are tried instead of the namespace's credentials."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    upload = config if config is not None and config.filename else None
    content = upload.file.read(CHECK_CONFIG_LIMIT + 1) if upload is not None else b""
    values: dict[str, Any] = {
        "image": image.strip(),
        "cluster": cluster,
        "namespace": namespace.strip(),
        "platform": platform.strip(),
        "pull_policy": pull_policy,
        "try_all": try_all == "on",
        "on_node": on_node == "on",
    }
    # The form keeps a cluster filled in (a lone one is a hidden field, a chosen one stays
    # chosen): beside a file it counts only with a namespace written too.
    given_cluster = cluster if upload is None or values["namespace"] else ""
    req = checks.CheckRequest(
        values["image"],
        given_cluster,
        values["namespace"],
        forms.text(platform),
        forms.text(pull_policy),
        values["try_all"],
        values["on_node"],
    )
    errors: forms.Errors = {}
    if not values["image"]:
        errors["image"] = "write the image as a pod spec names it, e.g. nginx:1.27"
    if len(content) > CHECK_CONFIG_LIMIT:
        errors["config"] = (
            f"the file is over {CHECK_CONFIG_LIMIT // 1024} KiB: upload a docker config.json, "
            "a .dockercfg or a Secret manifest"
        )
    elif upload is not None and not content.strip():
        errors["config"] = "the file is empty: upload a docker config.json or a Secret manifest"
    # The check asks these too; asked here, their answers show beside the others.
    if values["image"]:
        for field_name, message in checks.input_problems(
            req.image, req.platform, req.pull_policy
        ).items():
            errors.setdefault(field_name, message)
    forms.attempt(partial(checks.check_source, req, with_file=upload is not None), errors, FIELDS)
    found: list[dict[str, Any]] = []

    def run() -> None:
        server = session.server_of(request)
        if upload is not None:
            found.append(
                checks.run_with_file(server, web.actor, req, content, upload.filename or "")
            )
        else:
            found.append(checks.run(server, web.actor, req))

    if not errors:
        forms.attempt(run, errors, FIELDS)
    result = found[0] if found else None
    return _render(request, web, values, errors, result, status=422 if errors else 200)
