"""The Nodes page: a cluster's node profiles and what its nodes last reported; admins
create, edit and delete the profiles, a project's owner reads them narrowed to its
projects' registries."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.core.nodeconfig.selection import default_registry_mirror, labels_from
from pullkeeper.services import clusters, node_profiles, policies
from pullkeeper.services.actor import OWNER, Actor
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, PreconditionFailed
from pullkeeper.services.schemas import NodeProfileIn
from pullkeeper.web import forms, registries_yaml, security, session
from pullkeeper.web.render import WebRoute, page, see_other, with_query

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)
LABELS = {
    "name": "Name",
    "description": "Description",
    "node_selector": "Node selector",
    "registries": "Registries",
    "credentials": "Credentials",
    "mirror_default_registry": "Docker Hub mirror",
}
FIELDS = tuple(LABELS)
Csrf = Annotated[str, Form(max_length=128)]
Version = Annotated[str, Form(max_length=128)]
# A form's registries: 256 registries (the API's limit), each with a CA of a few KiB.
REGISTRIES_LIMIT = 1024 * 1024


def _home(cluster: str) -> str:
    return f"/clusters/{quote(cluster, safe='')}/nodes"


def _profile_path(cluster: str, name: str, action: str) -> str:
    return f"/clusters/{quote(cluster, safe='')}/node-profiles/{quote(name, safe='')}/{action}"


def _cluster_names(s: Session, actor: Actor) -> list[str]:
    """The clusters whose node profiles the actor may read: every one for admins and
    viewers, those of the projects it owns for an owner."""
    if actor.sees_everything:
        return [c.name for c in clusters.list_clusters(s, actor)]
    owned = {p.cluster for p in clusters.project_choices(s, actor) if actor.role_in(p.id) == OWNER}
    return sorted(owned)


def _mirror_url(default_registry: str | None) -> str:
    """The URL the mirror checkbox makes Docker Hub's first mirror in this cluster; ""
    when its policy sets no default registry."""
    return default_registry_mirror(default_registry).url if default_registry else ""


# --------------------------------------------------------------------------- the page


@router.get("/nodes")
def choose(request: Request, cluster: Annotated[str, Query(max_length=63)] = "") -> Response:
    """Which cluster's nodes: the cluster picker, or that cluster's page."""
    web = session.required(request)
    if cluster:
        return see_other(_home(cluster))
    with session.server_of(request).reading() as s:
        names = _cluster_names(s, web.actor)
    if not names and not web.actor.sees_everything:
        raise Forbidden("only admins, viewers and the owners of a project see node profiles")
    return page(request, "nodes.html", web, clusters=names, cluster=None)


@router.get("/clusters/{cluster}/nodes")
def nodes_page(
    request: Request, cluster: str, created: str = "", saved: str = "", deleted: str = ""
) -> Response:
    web = session.required(request)
    actor = web.actor
    with session.server_of(request).reading() as s:
        c = clusters.get_cluster(s, actor, cluster)
        profiles = node_profiles.list_profiles(s, actor, c)
        states = node_profiles.list_states(s, actor, c)
        default_registry = policies.get(s, c, None).default_registry
        names = _cluster_names(s, actor)
    counts = {state: 0 for state in node_profiles.STATES}
    for st in states:
        counts[st["state"]] = counts.get(st["state"], 0) + 1
    # What the form just did, said only when the list bears it out (the query is a link's).
    listed = {p["name"] for p in profiles}
    notice = ""
    if created in listed:
        notice = f"Node profile {created} created."
    elif saved in listed:
        notice = f"Node profile {saved} saved."
    elif deleted and deleted not in listed:
        notice = f"Node profile {deleted} deleted."
    return page(
        request,
        "nodes.html",
        web,
        clusters=names,
        cluster=c.name,
        profiles=profiles,
        states=states,
        counts=counts,
        default_registry=default_registry,
        mirror_url=_mirror_url(default_registry),
        may_change=node_profiles.may_change(actor),
        narrowed=not actor.sees_everything,
        notice=notice,
    )


# --------------------------------------------------------------------------- the form


def _empty() -> dict[str, Any]:
    return {
        "name": "",
        "description": "",
        "node_selector": "",
        "registries": "",
        "credentials": [],
        "mirror_default_registry": False,
    }


def _form_of(p: dict[str, Any]) -> dict[str, Any]:
    """A saved profile as the form shows it."""
    return {
        "name": p["name"],
        "description": p["description"],
        "node_selector": "\n".join(f"{k}={v}" for k, v in p["node_selector"].items()),
        "registries": registries_yaml.dump(p["registries"]),
        "credentials": list(p["credentials"]),
        "mirror_default_registry": bool(p["mirror_default_registry"]),
    }


def _same_registries(text: str, saved: list[Any]) -> bool:
    try:
        return registries_yaml.load(text) == saved
    except registries_yaml.RegistriesError:
        return False


def _differs(shown: dict[str, Any], saved: dict[str, Any], raw: dict[str, Any]) -> list[Any]:
    """Where the typed form differs from what is saved now, with the saved value in words."""
    words = {
        "name": saved["name"],
        "description": saved["description"] or "(empty)",
        "node_selector": ", ".join(saved["node_selector"].splitlines()) or "every node",
        "registries": ", ".join(r["host"] for r in raw["registries"]) or "none",
        "credentials": ", ".join(saved["credentials"]) or "none",
        "mirror_default_registry": "yes" if saved["mirror_default_registry"] else "no",
    }
    out = []
    for key, label in LABELS.items():
        if key == "registries":
            same = _same_registries(shown[key], raw["registries"])
        elif key == "node_selector":
            same = sorted(shown[key].split()) == sorted(saved[key].split())
        elif key == "credentials":
            same = sorted(shown[key]) == sorted(saved[key])
        else:
            same = shown[key] == saved[key]
        if not same:
            out.append({"label": label, "saved": words[key]})
    return out


def _form_page(
    request: Request,
    web: session.WebSession,
    cluster: str,
    original: str | None,
    form: dict[str, Any] | None,
    errors: forms.Errors,
    status: int = 200,
    version: str = "",
    conflict: bool = False,
) -> Response:
    """The create form (original None) or the edit form of the profile `original`: as saved,
    or as typed. Its hidden version is the one the typing started from; after a conflict,
    the one saved now, so that saving again replaces it knowingly."""
    with session.server_of(request).reading() as s:
        c = clusters.get_cluster(s, web.actor, cluster)
        choices = node_profiles.credential_choices(s, web.actor, c)
        default_registry = policies.get(s, c, None).default_registry
        raw = node_profiles.get(s, web.actor, c, original) if original else None
        current = node_profiles.tag(s, c, original) if original else ""
    saved = _form_of(raw) if raw else None
    shown = form or saved or _empty()
    known = {ch["name"] for ch in choices}
    # Named by the profile (or ticked) but no longer a credential it may name: shown, ticked,
    # so that it can be unticked.
    missing = [n for n in shown["credentials"] if n not in known]
    return page(
        request,
        "node_profile_form.html",
        web,
        status=status,
        cluster=c.name,
        original=original,
        form=shown,
        errors=errors,
        choices=choices,
        missing=missing,
        default_registry=default_registry,
        mirror_url=_mirror_url(default_registry),
        example=registries_yaml.EXAMPLE,
        version=current if conflict or not version else version,
        conflict=conflict,
        differs=_differs(shown, saved, raw) if conflict and saved and raw else [],
        action=_profile_path(c.name, original, "edit")
        if original
        else f"/clusters/{quote(c.name, safe='')}/node-profiles/new",
        home=_home(c.name),
    )


def _named(field: str, message: str, registries: str) -> str:
    """A message for the field it is about; in the registries' YAML, naming the entry and
    its line."""
    if not field.startswith("registries"):
        return message  # said at its field, and naming the line's text itself
    if line := registries_yaml.line_of(registries, field):
        return f"{field} (line {line}): {message}"
    return f"{field}: {message}"


def _body(form: dict[str, Any], errors: forms.Errors) -> NodeProfileIn | None:
    """The request body the form makes, or None with its errors."""
    selector: dict[str, str] = {}
    registries: list[Any] = []
    if problem := forms.name_problem(form["name"], "name", dots=False, example="gpu-pool"):
        errors["name"] = problem
    try:
        selector = labels_from(form["node_selector"].splitlines(), "node_selector")
    except ProfileError as e:
        errors["node_selector"] = _named(e.field, e.message, "")
    try:
        registries = registries_yaml.load(form["registries"])
    except registries_yaml.RegistriesError as e:
        errors["registries"] = f"registries: {e}"
    if errors:
        return None
    values = form | {"node_selector": selector, "registries": registries}
    return forms.parse(NodeProfileIn, values, errors)


def _place(e: Invalid | Conflict, errors: forms.Errors, form: dict[str, Any]) -> None:
    """A service's refusal next to the field it names (`registries[1].ca` at Registries)."""
    field = e.field or ""
    top = re.split(r"[.\[]", field, maxsplit=1)[0]
    if top not in FIELDS:
        errors.setdefault("form", e.message)
    elif field == top and top != "registries":
        errors.setdefault(top, e.message)
    else:
        errors.setdefault(top, _named(field, e.message, form["registries"]))


def _read_form(
    name: str,
    description: str,
    node_selector: str,
    registries: str,
    credentials: list[str],
    mirror_default_registry: str,
) -> dict[str, Any]:
    return {
        "name": name.strip(),
        "description": description.strip(),
        "node_selector": node_selector,
        "registries": registries,
        "credentials": list(dict.fromkeys(credentials)),
        "mirror_default_registry": mirror_default_registry == "on",
    }


def _save(
    request: Request,
    web: session.WebSession,
    cluster: str,
    original: str | None,
    form: dict[str, Any],
    version: str,
) -> Response:
    """Create or replace the profile from the form: to the cluster's page when saved, else
    the form again with what was typed and why it was refused."""
    errors: forms.Errors = {}
    body = _body(form, errors)
    # The version the form was shown with: saved only if nobody saved another since.
    if_match = IfMatch(frozenset({version})) if version else None
    failed: Invalid | Conflict | PreconditionFailed | None = None
    if body is not None:
        try:
            with session.server_of(request).transaction() as s:
                c = clusters.get_cluster(s, web.actor, cluster)
                if original is None:
                    node_profiles.create(s, web.actor, c, body.spec())
                else:
                    # The credentials kept in the order the profile names them (the first
                    # named wins where two log in to one registry), the new ones after.
                    before = node_profiles.get(s, web.actor, c, original)["credentials"]
                    picked = body.credentials
                    kept = [n for n in before if n in picked] + [
                        n for n in picked if n not in before
                    ]
                    spec = dataclasses.replace(body.spec(), credentials=kept)
                    node_profiles.update(s, web.actor, c, original, spec, if_match=if_match)
        except (Invalid, Conflict, PreconditionFailed) as e:
            failed = e
    if body is not None and failed is None:
        key = "created" if original is None else "saved"
        return see_other(with_query(_home(cluster), **{key: body.name}))
    if isinstance(failed, PreconditionFailed):  # the page says it in its own words
        return _form_page(request, web, cluster, original, form, errors, 409, conflict=True)
    if failed is not None:
        _place(failed, errors, form)
    return _form_page(request, web, cluster, original, form, errors, 422, version=version)


# Bounds on what is read at all; the request body's (63, 1024) are said at the field.
Name = Annotated[str, Form(max_length=253)]
Description = Annotated[str, Form(max_length=4096)]
Selector = Annotated[str, Form(max_length=8192)]
Registries = Annotated[str, Form(max_length=REGISTRIES_LIMIT)]
Credentials = Annotated[list[str], Form(max_length=64)]
Switch = Annotated[str, Form(max_length=3)]


@router.get("/clusters/{cluster}/node-profiles/new")
def new_form(request: Request, cluster: str) -> Response:
    web = session.required(request)
    node_profiles.check_may_change(web.actor)
    return _form_page(request, web, cluster, None, None, {})


@router.post("/clusters/{cluster}/node-profiles/new")
def create(
    request: Request,
    cluster: str,
    csrf: Csrf = "",
    name: Name = "",
    description: Description = "",
    node_selector: Selector = "",
    registries: Registries = "",
    credentials: Credentials = [],  # noqa: B006 - FastAPI copies a default
    mirror_default_registry: Switch = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    node_profiles.check_may_change(web.actor)
    form = _read_form(
        name, description, node_selector, registries, credentials, mirror_default_registry
    )
    return _save(request, web, cluster, None, form, "")


@router.get("/clusters/{cluster}/node-profiles/{name}/edit")
def edit_form(request: Request, cluster: str, name: str) -> Response:
    web = session.required(request)
    node_profiles.check_may_change(web.actor)
    return _form_page(request, web, cluster, name, None, {})


@router.post("/clusters/{cluster}/node-profiles/{original}/edit")
def edit(
    request: Request,
    cluster: str,
    original: str,
    csrf: Csrf = "",
    version: Version = "",
    name: Name = "",
    description: Description = "",
    node_selector: Selector = "",
    registries: Registries = "",
    credentials: Credentials = [],  # noqa: B006 - FastAPI copies a default
    mirror_default_registry: Switch = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    node_profiles.check_may_change(web.actor)
    form = _read_form(
        name, description, node_selector, registries, credentials, mirror_default_registry
    )
    return _save(request, web, cluster, original, form, version)


# --------------------------------------------------------------------------- delete


def _delete_page(
    request: Request,
    web: session.WebSession,
    cluster: str,
    name: str,
    status: int = 200,
    changed: bool = False,
) -> Response:
    """The confirmation, with the version of the profile it shows: a delete confirmed on a
    profile someone changed since is refused, and the page shows it as it is now."""
    with session.server_of(request).reading() as s:
        c = clusters.get_cluster(s, web.actor, cluster)
        profile = node_profiles.get(s, web.actor, c, name)
        version = node_profiles.tag(s, c, name)
        # The nodes that last reported this profile: their agents undo what it wrote.
        nodes = [
            st["node"] for st in node_profiles.list_states(s, web.actor, c) if st["profile"] == name
        ]
    return page(
        request,
        "node_profile_delete.html",
        web,
        status=status,
        cluster=c.name,
        profile=profile,
        nodes=nodes,
        version=version,
        changed=changed,
        action=_profile_path(c.name, name, "delete"),
        home=_home(c.name),
    )


@router.get("/clusters/{cluster}/node-profiles/{name}/delete")
def delete_confirm(request: Request, cluster: str, name: str) -> Response:
    web = session.required(request)
    node_profiles.check_may_change(web.actor)
    return _delete_page(request, web, cluster, name)


@router.post("/clusters/{cluster}/node-profiles/{name}/delete")
def delete(
    request: Request, cluster: str, name: str, csrf: Csrf = "", version: Version = ""
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    if_match = IfMatch(frozenset({version})) if version else None
    try:
        with session.server_of(request).transaction() as s:
            c = clusters.get_cluster(s, web.actor, cluster)
            node_profiles.delete(s, web.actor, c, name, if_match=if_match)
            home = _home(c.name)
    except PreconditionFailed:
        return _delete_page(request, web, cluster, name, 409, changed=True)
    return see_other(with_query(home, deleted=name))
