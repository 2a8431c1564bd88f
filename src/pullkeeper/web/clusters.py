"""The Clusters pages (admins): list, add (a kubeconfig uploaded or pasted, or in-cluster
access), detail with its sync state and Test connection, edit, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.kubeconfig import Contexts
from pullkeeper.services import cluster_connection, cluster_removal, clusters, kubeconfigs
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, PreconditionFailed
from pullkeeper.services.sync.statuses import SyncState, cluster_state
from pullkeeper.web import forms, security, session
from pullkeeper.web.render import WebRoute, page, reloads, see_other

if TYPE_CHECKING:  # the face reads clusters through the services; the type only
    from pullkeeper.store.models import Cluster

router = APIRouter(route_class=WebRoute, include_in_schema=False)
FIELDS = ("name", "description", "access", "kubeconfig", "context")
Csrf = Annotated[str, Form(max_length=128)]
Text = Annotated[str, Form(max_length=4096)]
STATE_WORDS = {
    SyncState.IN_SYNC: "in sync",
    SyncState.PENDING: "pending",
    SyncState.CONFLICT: "in conflict",
    SyncState.ERROR: "in error",
}


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only an admin can see and change clusters")


def sync_words(state: dict[str, Any]) -> str:
    """A cluster's delivered Secrets in a few words."""
    if state["sync"] == "off":
        return "sync off"
    if state["error"]:
        return "cannot be synced"
    parts = [f"{n} {STATE_WORDS[s]}" for s, n in state["summary"].items() if n]
    return ", ".join(parts) or "no Secret delivered yet"


def _access_word(c: Cluster) -> str:
    if c.access == "in-cluster":
        return "in-cluster (the server's own service account)"
    if kubeconfigs.stored(c):
        return "uploaded kubeconfig (kept encrypted)"
    return "kubeconfig file on the server"


def _row(server: Any, c: Cluster) -> dict[str, Any]:
    state = cluster_state(server, c.id, show_paths=True)
    return {
        **clusters.cluster_dict(c),
        "access_word": _access_word(c),
        "state": state,
        "sync_words": sync_words(state),
    }


# --------------------------------------------------------------------------- list


@router.get("/clusters")
def list_page(request: Request, deleted: str = "") -> Response:
    web = session.required(request)
    _admin(web.actor)
    server = session.server_of(request)
    with server.reading() as s:
        rows = [_row(server, c) for c in clusters.list_clusters(s, web.actor)]
    notice = f"Cluster {deleted} deleted." if deleted else ""
    return page(request, "clusters.html", web, clusters=rows, notice=notice)


# --------------------------------------------------------------------------- add


def _form(
    request: Request,
    web: session.WebSession,
    values: dict[str, Any],
    errors: forms.Errors,
    *,
    status: int = 200,
    cluster: dict[str, Any] | None = None,
    contexts: tuple[str, ...] = (),
    version: str = "",
    connection: dict[str, Any] | None = None,
) -> Response:
    return page(
        request,
        "cluster_form.html",
        web,
        status=status,
        values=values,
        errors=errors,
        cluster=cluster,
        contexts=contexts,
        version=version,
        connection=connection,
        first_run=values.get("next") == "first-run",
    )


@router.get("/clusters/new")
def new_form(request: Request, next: str = "") -> Response:
    web = session.required(request)
    _admin(web.actor)
    values = {"access": "kubeconfig", "next": "first-run" if next == "first-run" else ""}
    return _form(request, web, values, {})


def _kubeconfig_text(upload: UploadFile | None, pasted: str, errors: forms.Errors) -> str:
    """The chosen file's text, else the pasted one."""
    uploaded = forms.upload_text(
        upload, errors, "kubeconfig", "the cluster's kubeconfig", kubeconfigs.LIMIT
    )
    return uploaded or pasted


@router.post("/clusters/new")
def create(
    request: Request,
    csrf: Csrf = "",
    name: Annotated[str, Form(max_length=253)] = "",
    description: Text = "",
    access: Annotated[str, Form(max_length=16)] = "kubeconfig",
    context: Annotated[str, Form(max_length=253)] = "",
    kubeconfig_text: Annotated[str, Form(max_length=kubeconfigs.LIMIT)] = "",
    kubeconfig_file: Annotated[UploadFile | None, File()] = None,
    next: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    values = {
        "name": name.strip(),
        "description": description,
        "access": access,
        "context": context.strip(),
        "next": next,
    }
    errors: forms.Errors = {}
    text = _kubeconfig_text(kubeconfig_file, kubeconfig_text, errors)
    if not values["name"]:
        errors["name"] = "the name is required: a lowercase DNS label such as prod"
    if access != "in-cluster" and not text.strip():
        errors.setdefault("kubeconfig", "choose the cluster's kubeconfig file, or paste it")

    def run() -> None:
        with server.transaction() as s:
            if access == "in-cluster":
                clusters.create_cluster(
                    s, web.actor, values["name"], description=description, access="in-cluster"
                )
            else:
                kubeconfigs.create(
                    server,
                    s,
                    web.actor,
                    values["name"],
                    text,
                    context=values["context"],
                    description=description,
                )

    if not errors and forms.attempt(run, errors, FIELDS):
        if next == "first-run":
            return see_other("/credentials")
        return see_other(f"/clusters/{values['name']}?created=1")
    if text and "kubeconfig" not in errors:
        errors["kubeconfig"] = "choose the kubeconfig file again (a page never keeps it)"
    return _form(request, web, values, errors, status=422)


@router.post("/clusters/new/test")
def test_unsaved(
    request: Request,
    csrf: Csrf = "",
    access: Annotated[str, Form(max_length=16)] = "kubeconfig",
    context: Annotated[str, Form(max_length=253)] = "",
    kubeconfig_text: Annotated[str, Form(max_length=kubeconfigs.LIMIT)] = "",
    kubeconfig_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Test connection with the add form's access, unsaved: a fragment for htmx."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    errors: forms.Errors = {}
    text = _kubeconfig_text(kubeconfig_file, kubeconfig_text, errors)
    found: list[dict[str, Any]] = []
    if not errors:
        forms.attempt(
            lambda: found.append(
                cluster_connection.test_unsaved(
                    server, web.actor, text, context.strip(), in_cluster=access == "in-cluster"
                )
            ),
            errors,
            ("kubeconfig", "context"),
        )
    result = found[0] if found else None
    if request.headers.get("hx-request") == "true":
        return page(request, "_cluster_test.html", web, connection=result, errors=errors)
    values = {"access": access, "context": context.strip()}
    if text and "kubeconfig" not in errors:
        errors["kubeconfig"] = "choose the kubeconfig file again (a page never keeps it)"
    return _form(request, web, values, errors, status=422 if errors else 200, connection=result)


# --------------------------------------------------------------------------- detail


def _detail(
    request: Request,
    web: session.WebSession,
    ref: str,
    *,
    notice: str = "",
    connection: dict[str, Any] | None = None,
    errors: forms.Errors | None = None,
    status: int = 200,
) -> Response:
    _admin(web.actor)
    server = session.server_of(request)
    with server.reading() as s:
        c = clusters.get_cluster(s, web.actor, ref)
        row = _row(server, c)
        projects = clusters.list_projects(s, web.actor, c)
        namespaces = clusters.list_namespaces(s, web.actor, c)
        found = kubeconfigs.contexts(c)
        row["stored"] = kubeconfigs.stored(c)
    return page(
        request,
        "cluster.html",
        web,
        status=status,
        cluster=row,
        projects=projects,
        namespaces=namespaces,
        contexts=found.names if found else (),
        notice=notice,
        connection=connection,
        errors=errors or {},
        states=STATE_WORDS,
    )


@router.get("/clusters/{ref}")
def detail(request: Request, ref: str, created: str = "", saved: str = "") -> Response:
    web = session.required(request)
    notice = "Cluster registered." if created else "Changes saved." if saved else ""
    return _detail(request, web, ref, notice=notice)


@router.post("/clusters/{ref}/test")
def test(request: Request, ref: str, csrf: Csrf = "") -> Response:
    """Test connection now: a fragment for htmx, else the detail page with the answer."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    with server.reading() as s:
        c = clusters.get_cluster(s, web.actor, ref)
    connection = cluster_connection.test(server, web.actor, c)
    if request.headers.get("hx-request") == "true":
        return page(request, "_cluster_test.html", web, connection=connection, errors={})
    return _detail(request, web, ref, connection=connection)


@router.post("/clusters/{ref}/context")
def choose_context(
    request: Request,
    ref: str,
    csrf: Csrf = "",
    context: Annotated[str, Form(max_length=253)] = "",
) -> Response:
    """Use another context of the cluster's kubeconfig."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    errors: forms.Errors = {}
    names: list[str] = []

    def run() -> None:
        with server.transaction() as s:
            c = clusters.get_cluster(s, web.actor, ref)
            kubeconfigs.update(s, web.actor, c, {"context": context})
            names.append(c.name)

    forms.attempt(run, errors, ("context",))
    if errors:
        return _detail(request, web, ref, errors=errors, status=422)
    return see_other(f"/clusters/{names[0]}?saved=1")


# --------------------------------------------------------------------------- edit


def _choices(c: Cluster, found: Contexts | None) -> tuple[str, ...]:
    """The edit form's contexts to choose from: a kubeconfig file's. An uploaded one keeps a
    single context, and a new upload may have others: its context is typed (empty: the new
    file's current-context)."""
    return found.names if found is not None and not kubeconfigs.stored(c) else ()


def _saved_values(shown: dict[str, Any], found: Contexts | None) -> dict[str, Any]:
    """The edit form's values as saved; a cluster using its file's current-context (context
    "") shows that context chosen, so saving keeps it rather than taking the first one."""
    values = {k: shown[k] for k in ("name", "description", "access", "context")}
    if not values["context"] and found is not None:
        values["context"] = found.current
    return values


@router.get("/clusters/{ref}/edit")
def edit_form(request: Request, ref: str) -> Response:
    web = session.required(request)
    _admin(web.actor)
    server = session.server_of(request)
    with server.reading() as s:
        c = clusters.get_cluster(s, web.actor, ref)
        found = kubeconfigs.contexts(c)
        choices = _choices(c, found)
        shown = clusters.cluster_dict(c)
        version = clusters.tag(c)
    values = _saved_values(shown, found)
    return _form(
        request,
        web,
        values,
        {},
        cluster=shown,
        contexts=choices,
        version=version,
    )


@router.post("/clusters/{ref}/edit")
def edit(
    request: Request,
    ref: str,
    csrf: Csrf = "",
    version: Annotated[str, Form(max_length=128)] = "",
    name: Annotated[str, Form(max_length=253)] = "",
    description: Text = "",
    access: Annotated[str, Form(max_length=16)] = "kubeconfig",
    context: Annotated[str, Form(max_length=253)] = "",
    kubeconfig_text: Annotated[str, Form(max_length=kubeconfigs.LIMIT)] = "",
    kubeconfig_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    values = {
        "name": name.strip(),
        "description": description,
        "access": access,
        "context": context.strip(),
    }
    errors: forms.Errors = {}
    text = _kubeconfig_text(kubeconfig_file, kubeconfig_text, errors)
    if_match = IfMatch(frozenset({version})) if version else None
    done: list[str] = []  # the cluster's name once saved

    def run() -> None:
        with server.transaction() as s:
            c = clusters.get_cluster(s, web.actor, ref)
            changes = {"name": values["name"], "description": description}
            if access == "in-cluster":
                changes |= {"access": "in-cluster", "kubeconfig": "", "context": ""}
                c = kubeconfigs.update(s, web.actor, c, changes, if_match=if_match)
            elif text:
                c = kubeconfigs.replace(
                    server,
                    s,
                    web.actor,
                    c,
                    text,
                    context=values["context"],
                    changes=changes,
                    if_match=if_match,
                )
            else:
                if c.access == "in-cluster":
                    errors["kubeconfig"] = "choose the cluster's kubeconfig file, or paste it"
                    return
                changes["context"] = values["context"]
                c = kubeconfigs.update(s, web.actor, c, changes, if_match=if_match)
            done.append(c.name)

    failed = forms.failure(run, errors, FIELDS) if not errors else None
    if done and not errors:
        return see_other(f"/clusters/{done[0]}?saved=1")
    if isinstance(failed, PreconditionFailed):
        errors["form"] = (
            "Someone changed this cluster since you opened the form; its saved values are "
            "shown below. Make your change again."
        )
    if text and "kubeconfig" not in errors:
        errors["kubeconfig"] = "choose the kubeconfig file again (a page never keeps it)"
    with server.reading() as s:
        c = clusters.get_cluster(s, web.actor, ref)
        shown = clusters.cluster_dict(c)
        found = kubeconfigs.contexts(c)
        choices = _choices(c, found)
        current = clusters.tag(c)
    if isinstance(failed, PreconditionFailed):
        values = _saved_values(shown, found)
    return _form(
        request,
        web,
        values,
        errors,
        status=409 if isinstance(failed, PreconditionFailed) else 422,
        cluster=shown,
        contexts=choices,
        version=current if isinstance(failed, PreconditionFailed) else version,
    )


# --------------------------------------------------------------------------- delete


@router.get("/clusters/{ref}/delete")
def delete_confirm(request: Request, ref: str) -> Response:
    web = session.required(request)
    _admin(web.actor)
    server = session.server_of(request)
    with server.reading() as s:
        c = clusters.get_cluster(s, web.actor, ref)
        goes = cluster_removal.what_goes(s, c)
        shown = clusters.cluster_dict(c)
        shown["stored"] = kubeconfigs.stored(c)
    return page(request, "cluster_delete.html", web, cluster=shown, goes=goes)


@router.post("/clusters/{ref}/delete")
def delete(request: Request, ref: str, csrf: Csrf = "") -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    _admin(web.actor)
    server = session.server_of(request)
    with server.transaction() as s:
        c = clusters.get_cluster(s, web.actor, ref)
        name = c.name
        clusters.delete_cluster(s, web.actor, c)
    return see_other(f"/clusters?deleted={name}")


reloads(
    router,
    {
        "/clusters/new/test": "/clusters/new",
        "/clusters/{ref}/test": "/clusters/{ref}",
        "/clusters/{ref}/context": "/clusters/{ref}",
    },
)
