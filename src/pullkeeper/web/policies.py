"""The Policies page: a cluster's or project's policy, and a preview of what it does to an image."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.imagepolicy import MODES
from pullkeeper.core.policy import (
    Policy,
    PolicyError,
    check_allowlist_entry,
    check_default_registry,
    policy_warnings,
)
from pullkeeper.services import clusters, policies, preview
from pullkeeper.services.errors import PreconditionFailed
from pullkeeper.services.schemas import PolicyIn
from pullkeeper.web import forms, security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other, with_query

if TYPE_CHECKING:
    from pullkeeper.store.models import Cluster, Project

router = APIRouter(route_class=WebRoute, include_in_schema=False)
FIELDS = ("default_registry", "allowlist", "always_pull", "require_digest", "forbid_latest", "mode")
SWITCHES = ("always_pull", "require_digest", "forbid_latest")
LABELS = {
    "default_registry": "Default registry",
    "allowlist": "Allowlist",
    "always_pull": "Always pull",
    "require_digest": "Require a digest",
    "forbid_latest": "Forbid latest",
    "mode": "Mode",
}


def _form_of(p: Policy) -> dict[str, str]:
    """A policy as the form shows it: "" where a field inherits."""
    out = {
        "default_registry": p.default_registry or "",
        "allowlist": "\n".join(p.allowlist) if p.allowlist is not None else "",
        "mode": p.mode or "",
    }
    for name in SWITCHES:
        value = getattr(p, name)
        out[name] = "" if value is None else "yes" if value else "no"
    return out


def _values_of(form: dict[str, str]) -> dict[str, Any]:
    """Form fields as policy values; an empty field inherits (null)."""
    lines = [line.strip() for line in form["allowlist"].splitlines() if line.strip()]
    values: dict[str, Any] = {
        "default_registry": forms.text(form["default_registry"]),
        "allowlist": lines or None,
        "mode": forms.text(form["mode"]),
    }
    for name in SWITCHES:
        values[name] = forms.tristate(form[name])
    return values


def _render(
    request: Request,
    web: session.WebSession,
    cluster: str,
    project: str,
    form: dict[str, str] | None,
    errors: forms.Errors,
    image: str = "",
    result: preview.Preview | None = None,
    status: int = 200,
    notice: str = "",
    version: str = "",
    conflict: bool = False,
) -> Response:
    """The page: the policy as saved, or the form as typed. The form's hidden version is the
    one the typing started from; after a conflict, the one saved now, so that saving again
    replaces it knowingly."""
    with session.server_of(request).reading() as s:
        known_clusters = [c.name for c in clusters.list_clusters(s, web.actor)]
        known_projects = clusters.project_choices(s, web.actor)
        c: Cluster | None = None
        p: Project | None = None
        if cluster or project:  # else the page asks which policy to show
            c, p = policies.addressed(s, web.actor, cluster=cluster, project=project)
        own = policies.get(s, c, p) if c is not None else Policy()
        inherited = policies.get(s, c, None) if c is not None and p is not None else None
        current = policies.tag(s, c, p) if c is not None else ""
    saved = _form_of(own)
    shown = form or saved
    differs = [
        {"label": label, "saved": saved[k].replace("\n", ", ")}
        for k, label in LABELS.items()
        if conflict and shown[k] != saved[k]
    ]
    return page(
        request,
        "policies.html",
        web,
        status=status,
        clusters=known_clusters,
        projects=known_projects,
        cluster=c,
        project=p,
        form=shown,
        inherited=_form_of(inherited) if inherited is not None else None,
        warnings=policy_warnings(own),
        errors=errors,
        modes=MODES,
        may_change=c is not None and policies.may_change(web.actor, p),
        image=image,
        result=result,
        notice=notice,
        version=current if conflict or not version else version,
        conflict=conflict,
        differs=differs,
    )


@router.get("/policies")
def policies_page(
    request: Request,
    cluster: Annotated[str, Query(max_length=63)] = "",
    project: Annotated[str, Query(max_length=63)] = "",
    saved: str = "",
) -> Response:
    web = session.required(request)
    notice = "Policy saved." if saved else ""
    return _render(request, web, cluster, project, None, {}, notice=notice)


def _read_form(
    default_registry: str,
    allowlist: str,
    always_pull: str,
    require_digest: str,
    forbid_latest: str,
    mode: str,
) -> dict[str, str]:
    return {
        "default_registry": default_registry,
        "allowlist": allowlist,
        "always_pull": always_pull,
        "require_digest": require_digest,
        "forbid_latest": forbid_latest,
        "mode": mode,
    }


def _checks(values: dict[str, Any]) -> dict[str, Callable[[], str | None]]:
    """The rules the use case applies to the fields (core/policy.py), each field's checked
    on its own so that the page says every field's problem at once."""

    def rule(check: Callable[[str], str], texts: list[str]) -> Callable[[], str | None]:
        def run() -> str | None:
            try:
                for text in texts:
                    check(text)
            except PolicyError as e:
                return str(e)
            return None

        return run

    registry = values["default_registry"]
    return {
        "default_registry": rule(check_default_registry, [registry] if registry else []),
        "allowlist": rule(check_allowlist_entry, values["allowlist"] or []),
    }


@router.post("/policies")
def save(
    request: Request,
    csrf: Annotated[str, Form(max_length=128)] = "",
    cluster: Annotated[str, Form(max_length=63)] = "",
    project: Annotated[str, Form(max_length=63)] = "",
    default_registry: Annotated[str, Form()] = "",
    allowlist: Annotated[str, Form()] = "",
    always_pull: Annotated[str, Form(max_length=3)] = "",
    require_digest: Annotated[str, Form(max_length=3)] = "",
    forbid_latest: Annotated[str, Form(max_length=3)] = "",
    mode: Annotated[str, Form(max_length=16)] = "",
    image: Annotated[str, Form(max_length=1024)] = "",
    version: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    form = _read_form(default_registry, allowlist, always_pull, require_digest, forbid_latest, mode)
    errors: forms.Errors = {}
    values = _values_of(form)
    forms.check_all(errors, _checks(values))
    body = forms.parse(PolicyIn, values, errors) if not errors else None
    server = session.server_of(request)
    # The version the form was shown with: saved only if nobody saved another since.
    if_match = IfMatch(frozenset({version})) if version else None

    def run() -> None:
        if body is None:
            return
        with server.transaction() as s:
            c, p = policies.addressed(s, web.actor, cluster=cluster, project=project)
            values = body.model_dump(include=set(FIELDS))
            policies.put(s, web.actor, c, p, values, if_match=if_match)

    failed = forms.failure(run, errors, FIELDS) if body is not None else None
    if body is not None and failed is None:
        where = {"project": project} if project else {"cluster": cluster}
        return see_other(with_query("/policies", **where, saved=1))
    if isinstance(failed, PreconditionFailed):
        del errors["form"]  # the page says it in its own words
        return _render(
            request, web, cluster, project, form, errors, image=image, status=409, conflict=True
        )
    return _render(
        request, web, cluster, project, form, errors, image=image, status=422, version=version
    )


@router.post("/policies/preview")
def preview_page(
    request: Request,
    csrf: Annotated[str, Form(max_length=128)] = "",
    cluster: Annotated[str, Form(max_length=63)] = "",
    project: Annotated[str, Form(max_length=63)] = "",
    default_registry: Annotated[str, Form(max_length=512)] = "",
    allowlist: Annotated[str, Form(max_length=65536)] = "",
    always_pull: Annotated[str, Form(max_length=3)] = "",
    require_digest: Annotated[str, Form(max_length=3)] = "",
    forbid_latest: Annotated[str, Form(max_length=3)] = "",
    mode: Annotated[str, Form(max_length=16)] = "",
    image: Annotated[str, Form(max_length=1024)] = "",
    version: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """The unsaved form's policy applied to the image: a fragment for htmx, else the page
    (with the version the form started from)."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    form = _read_form(default_registry, allowlist, always_pull, require_digest, forbid_latest, mode)
    errors: forms.Errors = {}
    found: list[preview.Preview] = []

    def run() -> None:
        with session.server_of(request).reading() as s:
            c, p = policies.addressed(s, web.actor, cluster=cluster, project=project)
            found.append(preview.preview(image, preview.proposed(s, c, p, _values_of(form))))

    forms.attempt(run, errors, (*FIELDS, "image"))
    result = found[0] if found else None
    if request.headers.get("hx-request") == "true":
        return page(request, "_preview.html", web, result=result, errors=errors, image=image)
    return _render(
        request, web, cluster, project, form, errors, image=image, result=result, version=version
    )


reloads(router, {"/policies/preview": "/policies"})
