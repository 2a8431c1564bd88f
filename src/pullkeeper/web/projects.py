"""The Projects pages: the projects one sees, a project's namespaces, and its members."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from pullkeeper.services import auth, clusters, live_namespaces
from pullkeeper.services.actor import OWNER, PROJECT_ROLES, Actor
from pullkeeper.services.errors import Forbidden, Invalid, NotFound
from pullkeeper.web import forms, security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ADD_FIELDS = ("user", "role")
Role = Annotated[str, Form(max_length=16)]
Csrf = Annotated[str, Form(max_length=128)]


def _role_word(actor: Actor, project_id: str) -> str:
    if role := actor.role_in(project_id):
        return role
    if actor.is_admin:
        return "admin"
    return "viewer (reads everything)" if actor.viewer else ""


@router.get("/projects")
def projects_page(request: Request, left: str = "") -> Response:
    web = session.required(request)
    with session.server_of(request).reading() as s:
        found = clusters.list_projects(s, web.actor)
        ids = [p["id"] for p in found]
        namespaces = clusters.namespace_counts(s, ids)
        members = auth.member_counts(s, ids)
    rows = [
        {
            **p,
            "namespaces": namespaces.get(p["id"], 0),
            "members": members.get(p["id"], 0),
            "role": _role_word(web.actor, p["id"]),
        }
        for p in found
    ]
    notice = f"You left project {left}; you no longer have access to it." if left else ""
    return page(request, "projects.html", web, projects=rows, notice=notice)


def _project_page(
    request: Request,
    web: session.WebSession,
    ref: str,
    values: dict[str, str] | None = None,
    errors: forms.Errors | None = None,
    row_errors: forms.Errors | None = None,
    status: int = 200,
    saved: str = "",
    removed: str = "",
    namespace: str = "",
    ns_errors: forms.Errors | None = None,
    added: str = "",
) -> Response:
    with session.server_of(request).reading() as s:
        p = clusters.get_project(s, web.actor, ref)
        cluster = clusters.get_cluster(s, web.actor, p.cluster_id)
        members = auth.members(s, p)
        may_change = auth.may_change_members(web.actor, p)
        # Owners type a name: only admins may list the users.
        known = [u.username for u in auth.list_users(s)] if web.actor.is_admin else []
        project = clusters.project_dict(p, cluster.name)
    # One look at the cluster: the project's namespaces, and the admin's picker of them all.
    live = live_namespaces.list_live(session.server_of(request), web.actor, cluster.id)
    namespaces = [n for n in live["items"] if n["project_id"] == project["id"]]
    roles = {m["user"]: m["role"] for m in members}
    notice = ""
    if added:
        notice = f"Namespace {added} is now in {project['name']}."
    elif saved in roles:
        notice = f"{saved} is now {roles[saved]} of {project['name']}."
    elif removed and removed not in roles:
        notice = f"{removed} is no longer in {project['name']}."
    return page(
        request,
        "project.html",
        web,
        status=status,
        project=project,
        namespaces=namespaces,
        picker={"cluster": cluster.name, "options": live["items"], "note": live["note"]},
        namespace=namespace,
        ns_errors=ns_errors or {},
        members=members,
        may_change=may_change,
        users=[u for u in known if u not in roles],
        roles=PROJECT_ROLES,
        values=values or {"user": "", "role": "member"},
        errors=errors or {},
        row_errors=row_errors or {},
        your_role=_role_word(web.actor, project["id"]),
        notice=notice,
    )


@router.get("/projects/{ref}")
def project_page(
    request: Request, ref: str, saved: str = "", removed: str = "", added: str = ""
) -> Response:
    web = session.required(request)
    return _project_page(request, web, ref, saved=saved, removed=removed, added=added)


@router.post("/projects/{ref}/namespaces")
def add_namespace(
    request: Request,
    ref: str,
    csrf: Csrf = "",
    namespace: Annotated[str, Form(max_length=253)] = "",
) -> Response:
    """An admin puts a namespace into the project: a new one, or one moved from another."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    name = namespace.strip()
    errors: forms.Errors = {}
    project_id = ""
    if not web.actor.is_admin:
        raise Forbidden("only an admin can add namespaces to a project")
    if not name:
        errors["namespace"] = "pick or type the name of the namespace to add"
    else:
        try:
            with session.server_of(request).transaction() as s:
                p = clusters.get_project(s, web.actor, ref)
                project_id = p.id
                cluster = clusters.get_cluster(s, web.actor, p.cluster_id)
                clusters.put_namespace(s, web.actor, cluster, name, p)
        except Invalid as e:
            errors["namespace"] = e.message
    if errors:
        return _project_page(request, web, ref, namespace=name, ns_errors=errors, status=422)
    return see_other(f"/projects/{project_id}?added={quote(name)}")


def _changeable(request: Request, web: session.WebSession, ref: str) -> str:
    """The project's id: Not found for a project the actor cannot see, Not allowed for one
    whose members they may not change, before any of the form is looked at."""
    with session.server_of(request).reading() as s:
        p = clusters.get_project(s, web.actor, ref)
        auth.check_may_change_members(web.actor, p)
        return p.id


@router.post("/projects/{ref}/members")
def add_member(
    request: Request,
    ref: str,
    csrf: Csrf = "",
    user: Annotated[str, Form(max_length=253)] = "",
    role: Role = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    project_id = _changeable(request, web, ref)
    values = {"user": user.strip(), "role": role}
    errors: forms.Errors = {}
    if not values["user"]:
        errors["user"] = "type the user name of the new member"
    else:
        try:
            with session.server_of(request).transaction() as s:
                p = clusters.get_project(s, web.actor, project_id)
                auth.set_member(s, web.actor, p, values["user"], role)
        except (Invalid, NotFound) as e:
            # Forbidden is not caught: it is the 403 page. The only NotFound left is the user's.
            errors[e.field if e.field in ADD_FIELDS else "user"] = e.message
    if errors:
        return _project_page(request, web, project_id, values, errors, status=422)
    return see_other(f"/projects/{project_id}?saved={values['user']}")


@router.post("/projects/{ref}/members/{username}")
def change_role(
    request: Request, ref: str, username: str, csrf: Csrf = "", role: Role = ""
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    project_id = _changeable(request, web, ref)
    try:
        with session.server_of(request).transaction() as s:
            p = clusters.get_project(s, web.actor, project_id)
            auth.set_member(s, web.actor, p, username, role)
    except Invalid as e:
        errors = {username: e.message}
        return _project_page(request, web, project_id, row_errors=errors, status=422)
    return see_other(f"/projects/{project_id}?saved={username}")


def _member_role(members: list[dict[str, str]], username: str, project: str) -> str:
    for m in members:
        if m["user"] == username:
            return m["role"]
    raise NotFound(f"{username!r} has no role in project {project!r}")


@router.get("/projects/{ref}/members/{username}/remove")
def remove_confirm(request: Request, ref: str, username: str) -> Response:
    web = session.required(request)
    with session.server_of(request).reading() as s:
        p = clusters.get_project(s, web.actor, ref)
        auth.check_may_change_members(web.actor, p)
        members = auth.members(s, p)
        project = clusters.project_dict(p, clusters.cluster_name(s, p.cluster_id))
    role = _member_role(members, username, project["name"])
    owners = [m["user"] for m in members if m["role"] == OWNER and m["user"] != username]
    context: dict[str, Any] = {
        "project": project,
        "username": username,
        "role": role,
        "yourself": username == web.actor.username and not web.actor.sees_everything,
        "last_owner": role == OWNER and not owners,
    }
    return page(request, "project_member_remove.html", web, **context)


@router.post("/projects/{ref}/members/{username}/remove")
def remove_member(request: Request, ref: str, username: str, csrf: Csrf = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    with session.server_of(request).transaction() as s:
        p = clusters.get_project(s, web.actor, ref)
        auth.remove_member(s, web.actor, p, username)
        project_id, name = p.id, p.name
    if username == web.actor.username and not web.actor.sees_everything:
        return see_other(f"/projects?left={name}")
    return see_other(f"/projects/{project_id}?removed={username}")


# --------------------------------------------------------------------------- add a project

PROJECT_FIELDS = ("name", "cluster", "description")
# Mounted before `router`, whose /projects/{ref} would otherwise take /projects/new.
creating = APIRouter(route_class=WebRoute, include_in_schema=False)


def _new_project_form(
    request: Request,
    web: session.WebSession,
    values: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    with session.server_of(request).reading() as s:
        names = [c.name for c in clusters.list_clusters(s, web.actor)]
    values.setdefault("cluster", names[0] if names else "")
    return page(
        request,
        "project_new.html",
        web,
        status=status,
        clusters=names,
        values=values,
        errors=errors,
        first_run=values.get("next") == "first-run",
    )


@creating.get("/projects/new")
def new_project_form(request: Request, cluster: str = "", next: str = "") -> Response:
    web = session.required(request)
    auth.check_admin(web.actor, "create projects")
    values = {"cluster": cluster, "next": "first-run" if next == "first-run" else ""}
    if not cluster:
        del values["cluster"]
    return _new_project_form(request, web, values, {})


@creating.post("/projects/new")
def create_project(
    request: Request,
    csrf: Csrf = "",
    name: Annotated[str, Form(max_length=253)] = "",
    cluster: Annotated[str, Form(max_length=253)] = "",
    description: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    auth.check_admin(web.actor, "create projects")
    values = {"name": name.strip(), "cluster": cluster, "description": description, "next": next}
    errors: forms.Errors = {}
    if not values["name"]:
        errors["name"] = "the name is required: a lowercase DNS label such as team-a"
    if not cluster:
        errors["cluster"] = "choose the cluster the project is in; add a cluster first if none"
    made: list[str] = []

    def run() -> None:
        with session.server_of(request).transaction() as s:
            c = clusters.get_cluster(s, web.actor, cluster)
            made.append(clusters.create_project(s, web.actor, c, values["name"], description).id)

    if not errors and forms.attempt(run, errors, PROJECT_FIELDS):
        if next == "first-run":
            return see_other("/credentials")
        return see_other(f"/projects/{made[0]}")
    return _new_project_form(request, web, values, errors, status=422)


reloads(
    router,
    {
        "/projects/{ref}/namespaces": "/projects/{ref}",
        "/projects/{ref}/members": "/projects/{ref}",
        "/projects/{ref}/members/{username}": "/projects/{ref}",
    },
)
