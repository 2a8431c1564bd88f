"""Headers, cookies and CSRF of the web pages, and what their forms refuse, over plain HTTP
against a real server."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator

import httpx
import pytest

from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.web import security
from tests.web.conftest import PASSWORDS, Site

pytestmark = pytest.mark.integration


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as c:
        yield c


def _login_csrf(client: httpx.Client) -> str:
    r = client.get("/login")
    assert r.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert match
    return match.group(1)


def _log_in(client: httpx.Client, user: str) -> str:
    csrf = _login_csrf(client)
    r = client.post("/login", data={"username": user, "password": PASSWORDS[user], "csrf": csrf})
    assert r.status_code == 303, r.text
    page = client.get("/credentials")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_pages_carry_security_headers_and_the_api_does_not(client: httpx.Client) -> None:
    r = client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    # No inline script or style attribute in what is served.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text) and " style=" not in r.text
    assert client.get("/static/htmx.min.js").status_code == 200
    assert "content-security-policy" not in client.get("/healthz").headers


def test_session_cookie_flags_and_logout_revokes(client: httpx.Client) -> None:
    csrf = _login_csrf(client)
    r = client.post("/login", data={"username": "bob", "password": PASSWORDS["bob"], "csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/credentials"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pk_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP; set only when the scheme is https
    token = client.cookies["pk_session"].partition(".")[2]
    assert token.startswith("pk_")
    # The cookie's token is an API token of bob, and the API accepts it.
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "bob"
    page_csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/credentials").text)
    assert page_csrf
    assert client.post("/logout", data={"csrf": page_csrf.group(1)}).status_code == 303
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_forms_without_the_csrf_token_change_nothing(client: httpx.Client, site: Site) -> None:
    cred = site.create_credential(
        name="csrf-target",
        cluster="prod",
        scope="namespace",
        namespace="a-web",
        provider="custom",
        server="csrf.example.com",
        username="u",
        password="csrf-s3cret",
    )
    # Login without the login form's cookie value.
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 403
    csrf = _log_in(client, "alice")
    for token in ("", "0" * 64):
        r = client.post(f"/credentials/{cred['id']}/delete", data={"csrf": token})
        assert r.status_code == 403
        assert "reload and retry" in r.text
    # From another site, even with the right token.
    r = client.post(
        f"/credentials/{cred['id']}/deactivate",
        data={"csrf": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    assert site.api.get(f"/credentials/{cred['id']}").json()["state"] == "active"
    # With it, from here, it works.
    r = client.post(f"/credentials/{cred['id']}/deactivate", data={"csrf": csrf})
    assert r.status_code == 303
    assert site.api.get(f"/credentials/{cred['id']}").json()["state"] == "inactive"


def test_a_csrf_token_is_the_servers_hmac_of_one_session(site: Site) -> None:
    """Not a hash anyone holding the session token could compute: it takes the server's key,
    which another server on the same store shares; one session's token is refused in another."""
    with (
        httpx.Client(base_url=site.server.url, trust_env=False, timeout=30) as first,
        httpx.Client(base_url=site.server.url, trust_env=False, timeout=30) as second,
    ):
        csrf_first, csrf_second = _log_in(first, "bob"), _log_in(second, "bob")
        token = first.cookies["pk_session"].partition(".")[2]
        assert csrf_first != csrf_second
        for bare in (token.encode(), b"pullkeeper web csrf\0" + token.encode()):
            assert csrf_first != hashlib.sha256(bare).hexdigest()
        replica = Server(Settings(data=site.server.data))
        try:
            assert csrf_first == security.session_csrf(replica.content_hash_key(), token)
        finally:
            replica.close()

        r = second.post("/logout", data={"csrf": csrf_first})
        assert r.status_code == 403 and "reload and retry" in r.text
        assert second.get("/credentials").status_code == 200  # still signed in
        assert second.post("/logout", data={"csrf": csrf_second}).status_code == 303
        assert first.post("/logout", data={"csrf": csrf_first}).status_code == 303


def test_next_never_leaves_the_site(client: httpx.Client) -> None:
    csrf = _login_csrf(client)
    r = client.post(
        "/login",
        data={
            "username": "carol",
            "password": PASSWORDS["carol"],
            "csrf": csrf,
            "next": "//evil.example/x",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/credentials"


def test_unknown_pages_are_pages_and_unknown_api_paths_json(client: httpx.Client) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = client.get("/no/such/page", headers=html)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in r.text
    assert "There is no page at this address" in r.text
    assert "default-src" in r.headers["content-security-policy"]

    # A page used the wrong way is a page too.
    r = client.delete("/credentials/new", headers=html)
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("text/html")
    # An address only a form posts to, asked for again, leads to a page (and does nothing).
    r = client.get("/logout", headers=html)
    assert (r.status_code, r.headers["location"]) == (303, "/credentials")

    # The API, static files and clients that do not ask for HTML keep JSON errors.
    for path, headers in (
        ("/api/v1/no-such-thing", html),
        ("/no/such/page", {"Accept": "application/json"}),
        ("/no/such/page", {}),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found", (path, r.text)
    assert client.get("/static/nothing.css", headers=html).status_code == 404


# --------------------------------------------------------------------------- what the forms refuse


def _web_login(client: httpx.Client, user: str, password: str) -> str:
    """Log in through the login form; the CSRF token of the pages that follow."""
    csrf = _login_csrf(client)
    r = client.post("/login", data={"username": user, "password": password, "csrf": csrf})
    assert r.status_code == 303, r.text
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/credentials").text)
    assert match
    return match.group(1)


def _error_text(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error"[^>]*>(.*?)<', page, re.S)
    assert match, f"no error shown for {field}"
    return html.unescape(match.group(1)).strip()


WEAK = [
    # (password, what the page says); {user} is the user name the password is for, capitalised
    ("Xy7!pq2Z", "a password needs at least 12 characters"),  # 8 was enough here before
    (" " * 12, "a password cannot be only spaces; use letters, digits or other signs too"),
    ("{user}", "a password cannot be the user name; choose another"),
]


def test_the_password_rule_holds_on_every_page(client: httpx.Client, site: Site) -> None:
    good, admin_password = "web-rules-user-passphrase", "web-rules-admin-passphrase"
    made = site.api.post("/users", json={"username": "web-rules-user", "password": good})
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    body = {"username": "web-rules-admin", "password": admin_password, "admin": True}
    assert site.api.post("/users", json=body).status_code == 201
    admin = httpx.Client(base_url=site.url, trust_env=False, timeout=30)
    try:
        admin_csrf = _web_login(admin, "web-rules-admin", admin_password)
        own_csrf = _web_login(client, "web-rules-user", good)
        for weak, says in WEAK:
            # A new user, on the users page.
            password = weak.format(user="Web-Rules-New")
            r = admin.post(
                "/users",
                data={"csrf": admin_csrf, "username": "web-rules-new", "password": password},
            )
            assert r.status_code == 422, r.text
            assert _error_text(r.text, "password") == says
            # An admin's reset of another user's password, and the user's own change.
            password = weak.format(user="Web-Rules-User")
            r = admin.post(
                f"/users/{user_id}/password",
                data={"csrf": admin_csrf, "password": password, "again": password},
            )
            assert r.status_code == 422, r.text
            assert _error_text(r.text, "password") == says
            r = client.post(
                "/account/password",
                data={"csrf": own_csrf, "current": good, "new": password, "again": password},
            )
            assert r.status_code == 422, r.text
            assert _error_text(r.text, "new") == says
    finally:
        admin.close()
    users = [u["username"] for u in site.api.get("/users").json()["items"]]
    assert "web-rules-new" not in users
    # Nothing changed: the first password still logs in.
    r = site.api.post("/login", json={"username": "web-rules-user", "password": good})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("username", "says"),
    [("robot:pw", "cannot contain ':'"), ("robot\nadmin", "a line feed")],
    ids=["colon", "line-feed"],
)
def test_the_registry_form_refuses_user_names_auth_cannot_carry(
    client: httpx.Client, site: Site, username: str, says: str
) -> None:
    csrf = _log_in(client, "alice")  # owner of team-a
    form = {
        "csrf": csrf,
        "name": "odd-login",
        "cluster": "prod",
        "scope": "project",
        "project": "team-a",
        "provider": "custom",
        "server": "odd.example.com",
        "username": username,
        "password": "odd-login-s3cret",
        "active": "on",
    }
    r = client.post("/credentials/new", data=form)
    assert r.status_code == 422, r.text
    error = _error_text(r.text, "username")
    assert error.startswith("a registry user name cannot contain") and says in error
    assert "odd-login-s3cret" not in r.text
    assert site.credentials("odd-login") == []


def test_old_registries_addresses_lead_to_the_same_pages(client: httpx.Client) -> None:
    for old, new in (
        ("/registries", "/credentials"),
        ("/registries?project=p1&page=2", "/credentials?project=p1&page=2"),
        ("/registries/abc/edit", "/credentials/abc/edit"),
    ):
        r = client.get(old)
        assert r.status_code == 308, old
        assert r.headers["location"] == new
