"""The Registries pages: list, create, detail, edit, (de)activate, delete. An ECR, GCR or
ACR registry may log in with a cloud identity instead of a password (web/cloud_identity.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from sqlalchemy.orm import Session

from pullkeeper.core import providers, realms
from pullkeeper.core.dockerconfig import InvalidUsername, check_username
from pullkeeper.core.etag import IfMatch
from pullkeeper.core.providers import PROVIDERS, Provider
from pullkeeper.services import (
    audit,
    cached_reads,
    checks,
    cloud_exchange,
    clusters,
    credential_sorts,
    paging,
    secret_manifests,
    sync,
)
from pullkeeper.services import credentials as svc
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, NotFound, PreconditionFailed, ServiceError
from pullkeeper.services.first_run import steps_left
from pullkeeper.services.schemas import CredentialIn, CredentialPatch
from pullkeeper.services.server import Server
from pullkeeper.web import cloud_identity, forms, namespaces, security, session
from pullkeeper.web.render import WebRoute, keyset_pages, page, reloads, see_other, with_query

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PAGE_SIZE = 50
CREATE_FIELDS = (
    *("name", "cluster", "scope", "project", "namespace", "provider", "server"),
    *("username", "password", "email", "description", "token_hosts"),
)
EDIT_FIELDS = ("name", "server", "username", "password", "email", "description", "token_hosts")


def _hosts(text: str) -> list[str]:
    """Token hosts as typed: separated by spaces, commas or lines."""
    return text.replace(",", " ").split()


def state_of(item: dict[str, Any]) -> str:
    """active, inactive or superseded (active, but a newer one for the same address wins)."""
    if item["state"] != "active":
        return "inactive"
    return "superseded" if item["superseded_by"] else "active"


def scope_of(item: dict[str, Any]) -> str:
    if item["scope"] == "namespace":
        return f"namespace {item['namespace']} in {item['cluster']}"
    if item["scope"] == "project":
        return f"project {item['project']} in {item['cluster']}"
    return f"every namespace of cluster {item['cluster']}"


@dataclass(frozen=True, slots=True)
class _Ref:
    # What sync.status_of reads of a credential, from a listing row.
    id: str
    cluster_id: str
    state: str


def sync_word(status: dict[str, Any]) -> str:
    """A credential's delivery in a few words."""
    if status["sync"] == "off":
        return "sync off"
    if status.get("cluster_error"):
        return "cluster unreachable"
    if status.get("note") and not status["items"]:
        return "not delivered"
    summary = status["summary"]
    parts = [f"{n} {state.replace('_', ' ')}" for state, n in summary.items() if n]
    return ", ".join(parts) or "not delivered"


# --------------------------------------------------------------------------- list


# The sortable columns: heading and sort name.
SORTABLE = (
    ("Name", "name"),
    ("Address", "server"),
    ("Scope", "scope"),
    ("State", "state"),
    ("Updated", "updated"),
)


def sort_links(filters: dict[str, str], order: credential_sorts.Sort) -> dict[str, Any]:
    """Each sortable heading's link (the filters kept, from the first page) and aria-sort:
    a click sorts by the column, a second the other way."""
    out = {}
    for label, field in SORTABLE:
        here = order.field == field
        flip = credential_sorts.Sort(field, not order.descending if here else False)
        out[field] = {
            "label": label,
            "url": with_query(
                "/credentials", **filters, sort=flip.text if flip.text != "name" else ""
            ),
            "aria": ("descending" if order.descending else "ascending") if here else "",
        }
    return out


@router.get("/credentials")
def list_page(
    request: Request,
    cluster: Annotated[str, Query(max_length=63)] = "",
    project: Annotated[str, Query(max_length=63)] = "",
    namespace: Annotated[str, Query(max_length=63)] = "",
    provider: Annotated[str, Query(max_length=32)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=253)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    cursor: Annotated[str, Query(max_length=2048)] = "",
    sort: Annotated[str, Query(max_length=16)] = "",
    deleted: str = "",
) -> Response:
    """Registries by name (or the column sorted on), PAGE_SIZE at a time: the Next and
    Previous links carry a cursor (keyset paging) and the sort; a bare ?page=N (an older
    link) still answers, by offset."""
    web = session.required(request)
    server = session.server_of(request)
    actor = web.actor
    filters = {
        "cluster": cluster,
        "project": project,
        "namespace": namespace,
        "provider": provider,
        "state": state,
        "q": q,
    }
    error = ""
    found = paging.Page([], 0, None, None)
    offset = 0 if cursor else (page_no - 1) * PAGE_SIZE
    with server.reading() as s:
        known_clusters = [c.name for c in clusters.list_clusters(s, actor)]
        known_projects = clusters.project_choices(s, actor)
        # A new installation: the page guides through cluster, project, first registry.
        guide = None if any(filters.values()) else steps_left(s)
    try:
        f = svc.Filters(**{k: v or None for k, v in filters.items()})
        body = cached_reads.credential_page(
            server, actor, f, PAGE_SIZE, offset, cursor or None, sort or None
        )
        found = paging.Page.of_body(body)
    except ServiceError as e:
        error = e.message
    try:
        order = credential_sorts.parse(sort)
    except ServiceError:
        order = credential_sorts.DEFAULT  # the error above says so
    items = found.items
    for item in items:
        item["state_word"] = state_of(item)
        item["scope_word"] = scope_of(item)
        ref = _Ref(item["id"], item["cluster_id"], item["state"])
        status = sync.status_of(server, ref, show_paths=actor.is_admin)
        item["sync_word"] = "delivering…" if delivering(item, status) else sync_word(status)
        item["provider_title"] = PROVIDERS[item["provider"]].title
    return page(
        request,
        "credentials.html",
        web,
        items=items,
        total=found.total,
        error=error,
        filters=filters,
        filtered=any(filters.values()),
        **keyset_pages("/credentials", filters | {"sort": sort}, page_no, found, PAGE_SIZE),
        sort=sort,
        headers=sort_links(filters, order),
        may_change=bool(items) and actor.owns_a_project,
        clusters=known_clusters,
        projects=known_projects,
        providers=PROVIDERS.values(),
        may_create=actor.owns_a_project,
        notice="Registry deleted." if deleted else "",
        guide=guide,
    )


# --------------------------------------------------------------------------- create


def server_fixed(p: Provider) -> bool:
    """Whether the provider has exactly one address (Docker Hub, Quay.io, GitHub)."""
    return p.default_server is not None and p.server_pattern == re.escape(p.default_server)


def _provider(value: str | None) -> Provider:
    return PROVIDERS.get(value or "", PROVIDERS["dockerhub"])


def _create_form(
    request: Request,
    web: session.WebSession,
    values: dict[str, Any],
    errors: forms.Errors,
    status: int = 200,
    login_test: dict[str, Any] | None = None,
) -> Response:
    if not web.actor.owns_a_project:
        # Said before anything is typed: no project of theirs to add a registry to.
        return page(request, "credential_new.html", web, status=403, may_create=False)
    scope = namespaces.scope_context(request, web, values)
    provider = _provider(values.get("provider"))
    kind = cloud_identity.KINDS.get(provider.id)
    return page(
        request,
        "credential_new.html",
        web,
        status=status,
        provider=provider,
        kind=kind,
        with_identity=kind is not None and values.get("login") == "identity",
        azure_auths=cloud_identity.AZURE_AUTH,
        server_fixed=server_fixed(provider),
        providers=PROVIDERS.values(),
        values=values,
        errors=errors,
        login_test=login_test,
        tested=login_test is not None,
        may_create=True,
        **scope,
    )


# The Add form's fields kept when its provider or login is switched: none is a secret.
KEPT = (
    *("name", "cluster", "scope", "project", "namespace", "server", "username", "email"),
    *("description", "token_hosts", "access_key_id", "role_arn", "external_id", "azure_auth"),
    *("tenant_id", "client_id"),
)
KEPT_LIMIT = 4096
DEFAULT_SERVERS = {p.default_server for p in PROVIDERS.values() if p.default_server}


@router.get("/credentials/new")
def new_form(
    request: Request,
    provider: Annotated[str, Query(max_length=32)] = "dockerhub",
    scope: Annotated[str, Query(max_length=16)] = "",
    login: Annotated[str, Query(max_length=16)] = "password",
) -> Response:
    """The Add form for a provider; login=identity: with a cloud identity (ECR, GCR, ACR)."""
    web = session.required(request)
    values: dict[str, Any] = {
        "provider": _provider(provider).id,
        "scope": scope,
        "active": True,
        "login": "identity" if login == "identity" else "password",
        "azure_auth": "secret",
    }
    query = request.query_params
    if query.get("kept"):
        # The provider or login switched with what was typed so far (never a secret).
        values |= {k: query[k][:KEPT_LIMIT] for k in KEPT if k in query}
        values["active"] = query.get("active") == "on"
        if values.get("server") in DEFAULT_SERVERS:  # the old provider's, not typed
            del values["server"]
    response = _create_form(request, web, values, {})
    if request.headers.get("hx-request") == "true":
        # The address bar shows the provider, not what was typed.
        response.headers["HX-Push-Url"] = with_query(
            "/credentials/new", provider=values["provider"], login=values["login"]
        )
    return response


async def create_values(  # a coroutine: trimming fields needs no thread
    identity: Annotated[dict[str, Any], Depends(cloud_identity.identity_values)],
    name: Annotated[str, Form()] = "",
    cluster: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    project: Annotated[str, Form()] = "",
    namespace: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
    server_address: Annotated[str, Form(alias="server")] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    token_hosts: Annotated[str, Form(max_length=4096)] = "",
    key_file: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """The create form as the API's body; a chosen key file stands in for an empty password.
    The identity fields are kept as typed beside it."""
    errors: forms.Errors = identity.pop("errors")
    uploaded = forms.upload_text(
        key_file, errors, "password", "the service-account JSON key", cloud_identity.KEY_FILE_LIMIT
    )
    return {
        **identity,
        "name": name.strip(),
        "cluster": cluster,
        "scope": scope,
        # What the scope does not use is hidden, not emptied, in the page: dropped here.
        "project": forms.text(project) if scope == "project" else None,
        "namespace": forms.text(namespace) if scope == "namespace" else None,
        "provider": provider,
        "server": forms.text(server_address),
        "username": username.strip(),
        "password": password if password.strip() or not uploaded else uploaded,
        "email": email.strip(),
        "description": description,
        "active": active == "on",
        "token_hosts": " ".join(_hosts(token_hosts)),
        "errors": errors,
    }


CreateValues = Annotated[dict[str, Any], Depends(create_values)]


def _token_hosts_problem(text: str) -> str | None:
    """The first token host the use case would refuse, in its words (core/realms.py)."""
    try:
        for host in _hosts(text):
            realms.check_token_host(host)
    except realms.RealmError as e:
        return str(e)
    return None


def _username_problem(username: str) -> str | None:
    try:
        check_username(username)
    except InvalidUsername as e:
        return str(e)
    return None


def _check_fields(
    server: Server, actor: Actor, values: dict[str, Any], errors: forms.Errors, identity: bool
) -> None:
    """Every field of the Add form checked by the rules the use case applies, so that the
    page says each field's problem at once (the use case still checks it all again)."""

    def namespace() -> str | None:
        if values["scope"] != "namespace":
            return None
        if not values["namespace"]:
            return "write the namespace it is delivered to"
        return forms.name_problem(values["namespace"], "namespace", dots=False, example="team-a")

    forms.check_all(
        errors,
        {
            "name": lambda: forms.name_problem(values["name"], "name", example="team-registry"),
            "cluster": lambda: None if values["cluster"] else "choose the cluster it is for",
            "namespace": namespace,
            "token_hosts": lambda: _token_hosts_problem(values["token_hosts"]),
        },
    )
    login = providers.problems(
        values["provider"], values["server"], values["username"], values["password"]
    )
    for problem in login:
        # With a cloud identity, its tokens are the user name and the password.
        if not identity or problem.field in ("provider", "server"):
            errors.setdefault(problem.field, str(problem))
    if not values["cluster"]:
        return  # said at the cluster
    # The project and the namespace as the cluster knows them.
    try:
        with server.reading() as s:
            where = (values["scope"], values["cluster"], values["project"], values["namespace"])
            svc.find_scope(s, actor, *where)
    except ServiceError as e:
        errors.setdefault(e.field if e.field in CREATE_FIELDS else "form", e.message)


@router.post("/credentials/new")
def create(
    request: Request,
    values: CreateValues,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    errors: forms.Errors = values.pop("errors")
    kind = cloud_identity.KINDS.get(values["provider"])
    with_identity = kind is not None and values["login"] == "identity"
    fields = {k: values[k] for k in CREATE_FIELDS} | {"active": values["active"]}
    fields["token_hosts"] = _hosts(values["token_hosts"])
    if kind is not None and with_identity:
        # The identity's tokens make the login: no user name or password goes with it.
        fields |= {"username": "", "password": ""}
        fields["identity"] = cloud_identity.identity_body(kind, values)
    server = session.server_of(request)
    _check_fields(server, web.actor, values, errors, with_identity)
    body = forms.parse(CredentialIn, fields, errors) if not errors else None
    created: list[str] = []

    def run() -> None:
        if body is None:
            return
        scope = (body.scope, body.cluster, body.project, body.namespace)
        cloud = None
        if (i := body.identity) is not None:
            cloud = cloud_exchange.login_for_scope(
                server, web.actor, scope, body.provider, body.server, i.kind, i.fields(), i.secret
            )
        with server.transaction() as s:
            where = svc.find_scope(s, web.actor, *scope)
            created.append(svc.create(s, web.actor, server.vault, body.spec(where, cloud)).id)

    if body is not None and forms.attempt(run, errors, CREATE_FIELDS + cloud_identity.ERROR_FIELDS):
        return see_other(f"/credentials/{created[0]}?created=1")
    cloud_identity.place_errors(errors, kind or "", values["azure_auth"])
    cloud_identity.forget_secrets(values)  # never sent back: typed again
    return _create_form(request, web, values, errors, status=422)


@router.post("/credentials/new/test")
def test_login(
    request: Request,
    values: CreateValues,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Log in with the typed credential, unsaved: a fragment for htmx, else the form again."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    errors: forms.Errors = values.pop("errors")
    found: list[dict[str, Any]] = []
    server = session.server_of(request)

    def run() -> None:
        found.append(
            checks.verify_unsaved(
                server,
                web.actor,
                values["provider"],
                values["server"],
                values["username"],
                values["password"],
                _hosts(values["token_hosts"]),
            )
        )

    if not errors:
        forms.attempt(run, errors, ("provider", "server", "username", "password", "token_hosts"))
    cloud_identity.forget_secrets(values)  # never sent back into the page
    result = found[0] if found else None
    if request.headers.get("hx-request") == "true":
        return page(request, "_login_test.html", web, login_test=result, errors=errors)
    return _create_form(
        request, web, values, errors, status=422 if errors else 200, login_test=result
    )


# --------------------------------------------------------------------------- detail


# A new or changed registry's page says "delivering…" until the sync reports where its
# Secrets stand, for at most this long after the change, looking again every POLL_SECONDS.
DELIVERING_SECONDS = 60
POLL_SECONDS = 2
MAX_POLLS = DELIVERING_SECONDS // POLL_SECONDS


def delivering(item: dict[str, Any], status: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether the sync has yet to report on an active registry changed a moment ago (its
    cluster reachable): the page then waits for it instead of saying no namespace is known."""
    if status["sync"] == "off" or item["state"] != "active" or status.get("cluster_error"):
        return False
    if status["items"]:
        return False
    changed = datetime.fromisoformat(item["updated_at"])
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - changed).total_seconds() < DELIVERING_SECONDS


def _detail(s: Session, request: Request, web: session.WebSession, cred_id: str) -> dict[str, Any]:
    server = session.server_of(request)
    cred = svc.get(s, web.actor, cred_id)
    item = svc.describe(s, cred)
    item["state_word"] = state_of(item)
    item["scope_word"] = scope_of(item)
    item["provider_title"] = PROVIDERS[item["provider"]].title
    if item["superseded_by"]:
        try:  # the newer one shares its scope, so whoever sees this one sees it
            item["superseded_name"] = svc.get(s, web.actor, item["superseded_by"]).name
        except NotFound:
            item["superseded_name"] = ""
    manage = svc.may_manage(s, web.actor, cred)
    history: list[dict[str, Any]] = []
    if manage:
        history, _ = audit.query(
            s, web.actor, object_type="credential", object_id=cred.id, limit=20
        )
    delivery = sync.status_of(server, cred, show_paths=web.actor.is_admin)
    return {
        "cred": cred,
        "item": item,
        "delivery": delivery,
        "delivering": delivering(item, delivery),
        "manage": manage,
        "may_download": secret_manifests.may_download(s, web.actor, cred),
        "may_check": checks.may_check(web.actor, svc.project_of(s, cred)),
        "history": history,
        "used_by_url": with_query("/workloads", credential=cred.id),
    }


@router.get("/credentials/{cred_id}")
def detail(
    request: Request, cred_id: str, created: str = "", saved: str = "", checked: str = ""
) -> Response:
    web = session.required(request)
    server = session.server_of(request)
    with server.reading() as s:
        found = _detail(s, request, web, cred_id)
    del found["cred"]
    found["checks"] = checks.history(server, web.actor, cred_id)
    notice = "Registry created." if created else "Changes saved." if saved else ""
    if checked and found["checks"]:
        last = found["checks"][0]
        notice = (
            "Login checked: it works."
            if last["status"] == "ok"
            else f"Login checked: it fails ({last['cause']})."
        )
    return page(
        request,
        "credential.html",
        web,
        notice=notice,
        poll=0,
        max_polls=MAX_POLLS,
        poll_seconds=POLL_SECONDS,
        **found,
    )


@router.get("/credentials/{cred_id}/delivery")
def delivery_section(
    request: Request, cred_id: str, poll: Annotated[int, Query(ge=0, le=MAX_POLLS)] = 0
) -> Response:
    """The Delivery section alone: while delivering, it asks for itself again, at most
    MAX_POLLS times."""
    web = session.required(request)
    server = session.server_of(request)
    with server.reading() as s:  # polled: only what the section shows
        cred = svc.get(s, web.actor, cred_id)
        item = {"id": cred.id, "state": cred.state, "updated_at": cred.updated_at.isoformat()}
    delivery = sync.status_of(server, cred, show_paths=web.actor.is_admin)
    return page(
        request,
        "_delivery.html",
        web,
        item=item,
        delivery=delivery,
        delivering=delivering(item, delivery),
        poll=poll,
        max_polls=MAX_POLLS,
        poll_seconds=POLL_SECONDS,
    )


@router.get("/credentials/{cred_id}/secret.yaml")
def secret_yaml(request: Request, cred_id: str) -> Response:
    """The registry's Secret as the sync writes it, as a file to save: owners and admins."""
    web = session.required(request)
    name, text = secret_manifests.download(session.server_of(request), web.actor, cred_id)
    return Response(
        text,
        media_type="application/yaml",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-secret.yaml"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/credentials/{cred_id}/verify")
def verify(
    request: Request, cred_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Log in to the registry with the stored credential now, as `docker login` would."""
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    checks.verify(session.server_of(request), web.actor, cred_id)
    return see_other(f"/credentials/{cred_id}?checked=1")


def _set_state(request: Request, cred_id: str, csrf: str, state: str) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    with session.server_of(request).transaction() as s:
        svc.set_state(s, web.actor, svc.get(s, web.actor, cred_id), state)
    return see_other(f"/credentials/{cred_id}?saved=1")


@router.post("/credentials/{cred_id}/activate")
def activate(
    request: Request, cred_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    return _set_state(request, cred_id, csrf, "active")


@router.post("/credentials/{cred_id}/deactivate")
def deactivate(
    request: Request, cred_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    return _set_state(request, cred_id, csrf, "inactive")


# --------------------------------------------------------------------------- edit


EDIT_LABELS = {
    "name": "Name",
    "username": "User name",
    "email": "Email",
    "description": "Description",
    "token_hosts": "Token servers on other hosts",
}


def _edit_form(
    request: Request,
    web: session.WebSession,
    cred_id: str,
    values: dict[str, Any] | None,
    errors: forms.Errors,
    status: int = 200,
    version: str = "",
    conflict: bool = False,
    retype_password: bool = False,
    identity: dict[str, Any] | None = None,
    new_identity: bool = False,
) -> Response:
    """The edit form: as saved, or with what was typed. Its hidden version is the one the
    typing started from; after a conflict, the one saved now, so that saving again replaces
    it knowingly."""
    with session.server_of(request).reading() as s:
        found = _detail(s, request, web, cred_id)
    if not found["manage"]:
        raise Forbidden("only an admin or the owner of the credential's project can edit it")
    item = found["item"]
    provider = PROVIDERS[item["provider"]]
    saved = {k: item[k] or "" for k in EDIT_LABELS}
    saved["token_hosts"] = " ".join(item["token_hosts"])
    shown = values or saved
    kind = cloud_identity.KINDS.get(provider.id)
    # The identity's fields as saved (its secret is never shown), or as typed.
    saved_identity = {"azure_auth": "secret", **(item["identity"] or {})}
    saved_identity["azure_auth"] = saved_identity.pop("auth", saved_identity["azure_auth"])
    differs = [
        {"label": label, "saved": saved[k]}
        for k, label in EDIT_LABELS.items()
        if conflict and shown[k] != saved[k]
    ]
    return page(
        request,
        "credential_edit.html",
        web,
        status=status,
        item=item,
        provider=provider,
        values=shown,
        errors=errors,
        version=svc.tag(found["cred"]) if conflict or not version else version,
        conflict=conflict,
        differs=differs,
        retype_password=retype_password,
        kind=kind,
        identity=identity or saved_identity,
        new_identity=new_identity,
        azure_auths=cloud_identity.AZURE_AUTH,
    )


@router.get("/credentials/{cred_id}/edit")
def edit_form(request: Request, cred_id: str) -> Response:
    web = session.required(request)
    return _edit_form(request, web, cred_id, None, {})


@router.post("/credentials/{cred_id}/edit")
def edit(
    request: Request,
    cred_id: str,
    identity: Annotated[dict[str, Any], Depends(cloud_identity.identity_values)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    version: Annotated[str, Form(max_length=128)] = "",
    new_identity: Annotated[str, Form(max_length=8)] = "",
    name: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    token_hosts: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    server = session.server_of(request)
    values = {
        "name": name.strip(),
        "username": username.strip(),
        "email": email.strip(),
        "description": description,
        "token_hosts": " ".join(_hosts(token_hosts)),
    }
    errors: forms.Errors = identity.pop("errors")
    # The version the form was shown with: saved only if nobody saved another since.
    if_match = IfMatch(frozenset({version})) if version else None
    with server.reading() as s:
        kind = cloud_identity.KINDS.get(svc.get(s, web.actor, cred_id).provider, "")
    changes_identity = new_identity == "on" and bool(kind)
    forms.check_all(
        errors,
        {
            "name": lambda: forms.name_problem(values["name"], "name", example="team-registry"),
            "username": lambda: _username_problem(values["username"]),
            "token_hosts": lambda: _token_hosts_problem(values["token_hosts"]),
        },
    )

    def run() -> None:
        if errors:
            return
        cloud = None
        if changes_identity:
            # A new identity, whole: exchanged for a first token before anything changes.
            given_identity = cloud_identity.identity_body(kind, identity)
            patch = forms.parse(CredentialPatch, {"identity": given_identity}, errors)
            if patch is None or patch.identity is None:
                return
            i = patch.identity
            cloud = cloud_exchange.login_for_credential(
                server, web.actor, cred_id, i.kind, i.fields(), i.secret
            )
        with server.transaction() as s:
            cred = svc.get(s, web.actor, cred_id)
            current = svc.describe(s, cred)
            # Only what the form changed: an untouched login needs no password again.
            current["token_hosts"] = " ".join(current["token_hosts"])
            given: dict[str, Any] = {k: v for k, v in values.items() if v != (current[k] or "")}
            if "token_hosts" in given:
                given["token_hosts"] = _hosts(given["token_hosts"])
            if password:
                given["password"] = password
            body = forms.parse(CredentialPatch, given, errors)
            if body is not None and (given or cloud):
                changes = body.changes()
                if cloud is not None:
                    changes["cloud"] = cloud
                svc.update(s, web.actor, server.vault, cred, changes, if_match=if_match)

    failed = forms.failure(run, errors, EDIT_FIELDS + cloud_identity.ERROR_FIELDS)
    if failed is None and not errors:
        return see_other(f"/credentials/{cred_id}?saved=1")
    cloud_identity.place_errors(errors, kind, identity["azure_auth"])
    cloud_identity.forget_secrets(identity)
    if isinstance(failed, PreconditionFailed):
        del errors["form"]  # the page says it in its own words
        return _edit_form(
            request,
            web,
            cred_id,
            values,
            errors,
            409,
            conflict=True,
            retype_password=bool(password) or changes_identity,
            identity=identity,
            new_identity=changes_identity,
        )
    return _edit_form(
        request,
        web,
        cred_id,
        values,
        errors,
        status=422,
        version=version,
        identity=identity,
        new_identity=changes_identity,
    )


# --------------------------------------------------------------------------- delete


@router.get("/credentials/{cred_id}/delete")
def delete_confirm(request: Request, cred_id: str) -> Response:
    web = session.required(request)
    server = session.server_of(request)
    with server.reading() as s:
        found = _detail(s, request, web, cred_id)
        if not found["manage"]:
            raise Forbidden("only an admin or the owner of the credential's project can delete it")
        # The namespaces whose pods lose the credential's Secret when it goes.
        excluded = server.settings.sync_excluded_namespaces
        namespaces = svc.reach(s, web.actor, found["cred"], excluded)
    return page(request, "credential_delete.html", web, item=found["item"], namespaces=namespaces)


@router.post("/credentials/{cred_id}/delete")
def delete(
    request: Request, cred_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    with session.server_of(request).transaction() as s:
        svc.delete(s, web.actor, svc.get(s, web.actor, cred_id))
    return see_other("/credentials?deleted=1")


reloads(
    router,
    {
        "/credentials/new/test": "/credentials/new",
        "/credentials/{cred_id}/verify": "/credentials/{cred_id}",
        "/credentials/{cred_id}/activate": "/credentials/{cred_id}",
        "/credentials/{cred_id}/deactivate": "/credentials/{cred_id}",
    },
)
