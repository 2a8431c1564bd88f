"""The Deploy workload page: a Deployment with exactly the pull secrets its image needs, and
its rollout as it happens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response

from pullkeeper.core.workloads import FAILED, READY
from pullkeeper.services import clusters
from pullkeeper.services import workloads as svc
from pullkeeper.services.errors import Forbidden, ServiceError
from pullkeeper.services.schemas import WorkloadIn
from pullkeeper.web import forms, namespaces, security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other, with_query

router = APIRouter(route_class=WebRoute, include_in_schema=False)
FIELDS = ("cluster", "namespace", "name", "image", "replicas", "port")
PREVIEW_FIELDS = ("cluster", "namespace", "image")


def _url(cluster: str, namespace: str, name: str) -> str:
    return "/workloads/" + "/".join(quote(p, safe="") for p in (cluster, namespace, name))


def _preview(
    request: Request, web: session.WebSession, values: dict[str, str]
) -> tuple[dict[str, Any] | None, forms.Errors]:
    """What deploy would attach for the form's image in its namespace; nothing until the
    cluster, the namespace and the image are given."""
    errors: forms.Errors = {}
    found: list[dict[str, Any]] = []
    if not (values["cluster"] and values["namespace"] and values["image"]):
        return None, errors

    def run() -> None:
        server = session.server_of(request)
        found.append(
            svc.plan(server, web.actor, values["cluster"], values["namespace"], [values["image"]])
        )

    forms.attempt(run, errors, PREVIEW_FIELDS)
    return (found[0] if found else None), errors


def _render(
    request: Request,
    web: session.WebSession,
    values: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    if not web.actor.uses_a_project:
        return page(request, "workload_new.html", web, status=403, may_deploy_here=False)
    with session.server_of(request).reading() as s:
        known = [c.name for c in clusters.list_clusters(s, web.actor)]
    if len(known) == 1 and not values["cluster"]:
        values["cluster"] = known[0]
    plan, plan_errors = _preview(request, web, values)
    if any(errors.get(field) == message for field, message in plan_errors.items()):
        # Said at its field already: the list of pull secrets does not say it again.
        plan_errors = {"form": "none until what is marked in the form is fixed"}
    return page(
        request,
        "workload_new.html",
        web,
        status=status,
        may_deploy_here=True,
        clusters=known,
        values=values,
        errors=errors,
        plan=plan,
        plan_errors=plan_errors,
        picker=namespaces.picker(request, web, values["cluster"]),
    )


Text = Annotated[str, Form(max_length=253)]


def _values(
    cluster: Text = "",
    namespace: Text = "",
    name: Text = "",
    image: Annotated[str, Form(max_length=1024)] = "",
    replicas: Text = "1",
    port: Text = "",
) -> dict[str, str]:
    """The form's fields, trimmed (a dependency of the routes that take the form)."""
    return {
        "cluster": cluster,
        "namespace": namespace.strip(),
        "name": name.strip(),
        "image": image.strip(),
        "replicas": replicas.strip(),
        "port": port.strip(),
    }


Values = Annotated[dict[str, str], Depends(_values)]


@router.get("/workloads/new")
def new_form(request: Request) -> Response:
    return _render(request, session.required(request), _values(), {})


@router.post("/workloads/preview")
def preview(
    request: Request, values: Values, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """The pull secrets the form's workload would get: a fragment for htmx, else the page."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    if request.headers.get("hx-request") != "true":
        return _render(request, web, values, {})
    plan, errors = _preview(request, web, values)
    return page(
        request, "_workload_secrets.html", web, values=values, plan=plan, plan_errors=errors
    )


@router.post("/workloads/new")  # its own form's address: a reload shows the form
def deploy(
    request: Request, values: Values, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """The same checks and use case as POST /api/v1/.../workloads; the rollout's page after."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    errors: forms.Errors = {}
    for field, missing in (
        ("cluster", "choose the cluster to deploy to"),
        ("namespace", "write the namespace the workload runs in"),
        ("name", "write the Deployment's name, e.g. web"),
        ("image", "write the image as a pod spec names it, e.g. nginx:1.27"),
    ):
        if not values[field]:
            errors[field] = missing
    forms.check_all(
        errors,
        {
            "namespace": lambda: forms.name_problem(
                values["namespace"], "namespace", dots=False, example="shop"
            ),
            "name": lambda: forms.name_problem(values["name"], "name", dots=False, example="web"),
        },
    )
    body = forms.parse(
        WorkloadIn,
        {
            "name": values["name"],
            "image": values["image"],
            "replicas": values["replicas"] or 1,
            "port": forms.text(values["port"]),
        },
        errors,
    )
    if body is None or errors:
        return _render(request, web, values, errors, status=422)
    server, cluster, ns = session.server_of(request), values["cluster"], values["namespace"]

    def run() -> None:
        # First the checks that name their field (namespace, image), then the use case.
        svc.plan(server, web.actor, cluster, ns, [body.image or ""])
        svc.deploy(server, web.actor, cluster, ns, body.name, body.to_containers(), body.replicas)

    failed = forms.failure(run, errors, FIELDS)
    if failed is None:
        return see_other(with_query(_url(cluster, ns, body.name), created=1))
    if isinstance(failed, Forbidden):
        raise failed  # the error page: no field of the form fixes a refusal
    return _render(request, web, values, errors, status=422)


def _clock(value: str) -> str:
    """An event's ISO time to the second: events of one rollout are seconds apart."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(
    request: Request, web: session.WebSession, cluster: str, namespace: str, name: str
) -> dict[str, Any]:
    server = session.server_of(request)
    found = svc.status(server, web.actor, cluster, namespace, name)
    for e in found["events"]:
        e["at_text"] = _clock(e["at"])
    found["final"] = found["state"] in (READY, FAILED)
    return found


def _attached(
    request: Request, web: session.WebSession, w: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each attached Secret with the credential it comes from (None: not pullkeeper's, or no
    longer matching); and the matching credentials the workload lacks."""
    try:
        used = svc.credentials_for(
            session.server_of(request), web.actor, w["cluster"], w["namespace"], w["images"]
        )
    except ServiceError:
        used = []
    by_secret = {c["secret_name"]: c for c in used}
    attached = [{"secret": n, "credential": by_secret.get(n)} for n in w["image_pull_secrets"]]
    lacking = [c for c in used if c["secret_name"] not in w["image_pull_secrets"]]
    return attached, lacking


@router.get("/workloads/{cluster}/{namespace}/{name}")
def workload_page(
    request: Request, cluster: str, namespace: str, name: str, created: str = ""
) -> Response:
    web = session.required(request)
    w = _status(request, web, cluster, namespace, name)
    attached, lacking = _attached(request, web, w)
    notice = (
        f"Deployment {name} created in namespace {namespace} of cluster {w['cluster']}."
        if created
        else ""
    )
    return page(
        request,
        "workload.html",
        web,
        w=w,
        url=_url(cluster, namespace, name),
        attached=attached,
        lacking=lacking,
        notice=notice,
    )


@router.get("/workloads/{cluster}/{namespace}/{name}/rollout")
def rollout(request: Request, cluster: str, namespace: str, name: str) -> Response:
    """The rollout section alone, which polls itself while the rollout goes on."""
    web = session.required(request)
    w = _status(request, web, cluster, namespace, name)
    return page(request, "_workload_rollout.html", web, w=w, url=_url(cluster, namespace, name))


reloads(router, {"/workloads/preview": "/workloads/new"})
