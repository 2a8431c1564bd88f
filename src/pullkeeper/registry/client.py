"""A client for one registry: the OCI distribution API with Docker's token auth.

One `Registry` talks to one host with one login. It learns the host's auth
challenge on the first 401 and from then on authenticates up front: Basic, or
a Bearer token per scope, cached until shortly before it expires. Requests
are retried on 429 and 5xx with backoff, honouring `Retry-After` up to a
bound; every other failure becomes a `RegistryError` with its cause.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from pullkeeper import __version__, paths
from pullkeeper.core import challenge as challenges
from pullkeeper.core import oci, realms
from pullkeeper.core.dockerconfig import encode_auth
from pullkeeper.core.egress import EgressPolicy
from pullkeeper.registry import diagnose
from pullkeeper.registry.egress import GuardedTransport
from pullkeeper.registry.errors import Cause, RegistryError

USER_AGENT = f"pullkeeper/{__version__}"
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_API = "registry-1.docker.io"
_RETRYABLE = (429, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Login:
    """What to log in with: a user name and password (or token), or an identity token."""

    username: str = ""
    password: str = field(default="", repr=False)
    # Docker's `identitytoken`: an OAuth2 refresh token, exchanged by POST for access tokens.
    identity_token: str = field(default="", repr=False)
    # Token servers on other hosts this login may be sent to (see core/realms.py).
    token_hosts: tuple[str, ...] = ()

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)


@dataclass(frozen=True, slots=True)
class TLS:
    """How to reach a registry: a CA bundle, a client certificate, or insecure (seed 004)."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # Docker's --insecure-registry: HTTPS without verification, else plain HTTP.
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Fetched:
    """A manifest as fetched: its bytes, media type and verified digest."""

    body: bytes
    media_type: str
    digest: str
    manifest: oci.Manifest


def api_host(host: str) -> str:
    """The host serving the API: Docker Hub's references say docker.io, its API is elsewhere."""
    return DOCKER_HUB_API if host in DOCKER_HUB_HOSTS else host


def _ssl_context(tls: TLS, host: str) -> ssl.SSLContext | bool:
    if tls.insecure:
        return False
    ca = tls.ca_file or paths.registry_ca(host)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if tls.client_cert:
        context.load_cert_chain(str(tls.client_cert), str(tls.client_key or tls.client_cert))
    return context


class Registry:
    def __init__(
        self,
        host: str,
        login: Login | None = None,
        tls: TLS | None = None,
        *,
        timeout: float = 15.0,
        retries: int = 3,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.host = api_host(host)
        self.login = login or Login()
        self.tls = tls or TLS()
        self.retries, self.max_retry_wait, self._sleep = retries, max_retry_wait, sleep
        self.requests = 0  # every HTTP request sent, token requests included
        self._scheme = "http" if self.tls.insecure else "https"
        self._scheme_known = not self.tls.insecure
        self._challenge: challenges.Challenge | None = None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._fetching: dict[tuple[str, str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        try:
            verify = _ssl_context(self.tls, self.host)
        except (OSError, ssl.SSLError) as e:
            raise RegistryError(
                Cause.TLS, f"cannot load the TLS files for {self.host}: {e}"
            ) from None
        self.egress = egress
        self._http = httpx.Client(
            verify=verify,
            # The server judges every address it connects to; a local run goes anywhere.
            transport=GuardedTransport(egress, verify) if egress is not None else None,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transport

    def _base(self) -> str:
        if not self._scheme_known:
            self._probe_scheme()
        return f"{self._scheme}://{self.host}"

    def _probe_scheme(self) -> None:
        # Insecure registries: HTTPS without verification first, as Docker does, else HTTP.
        try:
            self._send("GET", f"https://{self.host}/v2/")
            self._scheme = "https"
        except RegistryError as e:
            if e.cause not in (Cause.TLS, Cause.TLS_UNTRUSTED):
                raise
            self._scheme = "http"
        self._scheme_known = True

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        with self._lock:
            self.requests += 1
        try:
            return self._http.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise diagnose.transport_error(e, self.host, self.tls, self.egress) from None

    # ----------------------------------------------------------------- auth

    def _token(self, ch: challenges.Challenge, scope: str) -> str:
        realm, service = ch.get("realm"), ch.get("service")
        key = (realm, service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            fetching = self._fetching.setdefault(key, threading.Lock())
        # One fetch per scope: threads asking at once wait for it instead of asking too.
        with fetching:
            with self._lock:
                cached = self._tokens.get(key)
                if cached and cached[1] > time.monotonic():
                    return cached[0]
            token, ttl = self._fetch_token(realm, service, scope)
            with self._lock:
                # Renew a little before expiry, so a token never dies mid-request.
                self._tokens[key] = (token, time.monotonic() + ttl * 0.9)
            return token

    def _fetch_token(self, realm: str, service: str, scope: str) -> tuple[str, float]:
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(
                Cause.PROTOCOL, f"{self.host} names an invalid token realm {realm!r}"
            )
        if not self.login.anonymous:
            # The registry names the realm: a login goes only where it is trusted to go.
            untrusted = realms.judge(self.host, self._scheme, realm, self.login.token_hosts)
            if untrusted is not None:
                raise RegistryError(Cause.UNTRUSTED_REALM, untrusted.reason, realm=untrusted.realm)
        scopes = scope.split()
        if self.login.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.login.identity_token,
                "service": service,
                "client_id": "pullkeeper",
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            response = self._retrying("POST", realm, data=form)
        else:
            query: list[tuple[str, str]] = [("service", service)] if service else []
            query += [("scope", s) for s in scopes]
            if self.login.username:
                query.append(("account", self.login.username))
            url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}" if query else realm
            auth = None if self.login.anonymous else (self.login.username, self.login.password)
            response = self._retrying("GET", url, auth=auth)
        if response.status_code in (400, 401, 403):
            raise diagnose.login_refused(response, self.host, self.login)
        if response.status_code != 200:
            raise diagnose.status_error(response, self.host, "the token request")
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, ttl = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryError(
                Cause.PROTOCOL, f"the token server of {self.host} answered without a token"
            )
        # The spec's minimum lifetime is 60 s; some servers send less or nonsense.
        return token, max(ttl, 1.0)

    def _auth_header(self, scope: str) -> dict[str, str]:
        ch = self._challenge
        if ch is None or (self.login.anonymous and ch.scheme == "basic"):
            return {}
        if ch.scheme == "basic":
            return {
                "Authorization": "Basic " + encode_auth(self.login.username, self.login.password)
            }
        if ch.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(ch, scope)}"}
        return {}

    def _learn(self, response: httpx.Response) -> bool:
        """Take the auth challenge of a 401; whether it is one this client can answer."""
        found = challenges.parse_all(response.headers.get_list("www-authenticate"))
        usable = [c for c in found if c.scheme in ("bearer", "basic")]
        if not usable:
            return False
        # Prefer Bearer, as Docker does, when a registry offers both.
        usable.sort(key=lambda c: c.scheme != "bearer")
        self._challenge = usable[0]
        return True

    # ----------------------------------------------------------------- requests

    def _retrying(self, method: str, url: str, **kw: Any) -> httpx.Response:
        delay = 0.5
        for attempt in range(self.retries + 1):
            response = self._send(method, url, **kw)
            if response.status_code not in _RETRYABLE or attempt == self.retries:
                return response
            wait = diagnose.retry_after(response) or delay
            if wait > self.max_retry_wait:
                return response
            response.close()
            self._sleep(wait)
            delay *= 2
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, scope: str = "", **kw: Any) -> httpx.Response:
        """One API request (path from /v2/), authenticated for scope, retried when it may be."""
        url = self._base() + path
        headers = dict(kw.pop("headers", {}) or {})
        sent = self._auth_header(scope)
        response = self._retrying(method, url, headers=headers | sent, **kw)
        if response.status_code == 401 and self._learn(response):
            # Once more with what the challenge asks for; a cached token may have died early.
            self._forget(scope, sent.get("Authorization", ""))
            response.close()
            response = self._retrying(method, url, headers=headers | self._auth_header(scope), **kw)
        return response

    def _forget(self, scope: str, authorization: str) -> None:
        """Drop the refused token only: another thread may have cached a good one meanwhile."""
        with self._lock:
            for key in [
                k
                for k, (token, _) in self._tokens.items()
                if k[2] == scope and authorization == f"Bearer {token}"
            ]:
                del self._tokens[key]

    # ----------------------------------------------------------------- the API

    def ping(self) -> httpx.Response:
        """GET /v2/ without credentials: 200, or 401 with the challenge it learns."""
        response = self._retrying("GET", self._base() + "/v2/")
        if response.status_code == 401:
            self._learn(response)
        elif response.status_code not in (200,):
            raise diagnose.status_error(response, self.host, "GET /v2/")
        return response

    def verify_login(self) -> None:
        """Log in as `docker login` does; raises RegistryError with the reason when refused."""
        response = self.ping()
        if response.status_code == 200 or self._challenge is None:
            return
        if self.login.anonymous:
            raise RegistryError(
                Cause.NO_CREDENTIALS, f"{self.host} requires a login and none was given"
            )
        if self._challenge.scheme == "bearer":
            self._fetch_token(self._challenge.get("realm"), self._challenge.get("service"), "")
            return
        checked = self._retrying("GET", self._base() + "/v2/", headers=self._auth_header(""))
        if checked.status_code != 200:
            raise diagnose.login_refused(checked, self.host, self.login)

    def get_manifest(self, repository: str, reference: str) -> Fetched:
        """GET a manifest or index by tag or digest, with its digest verified."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            pull_scope(repository),
            headers={"Accept": oci.ACCEPT},
        )
        self._expect(response, repository, reference, "manifest")
        body = response.content
        digest = reference if reference.startswith("sha") and ":" in reference else ""
        if not digest:
            digest = _header_digest(response) or oci.sha256_digest(body)
        if not oci.verify_digest(body, digest):
            raise RegistryError(
                Cause.PROTOCOL,
                f"the manifest of {repository}:{reference} does not match its digest {digest}; "
                "something between you and the registry changed it",
                digest=digest,
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        try:
            parsed = oci.parse_manifest(body, media_type)
        except oci.ManifestFormatError as e:
            raise RegistryError(
                Cause.PROTOCOL, f"{repository}:{reference}: {e}", digest=digest
            ) from None
        return Fetched(body, parsed.media_type, digest, parsed)

    def head_manifest(self, repository: str, reference: str) -> tuple[str, str, int]:
        """(digest, media type, size) of a manifest, without its body."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            pull_scope(repository),
            headers={"Accept": oci.ACCEPT},
        )
        self._expect(response, repository, reference, "manifest")
        digest = _header_digest(response)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return digest, media_type, int(response.headers.get("content-length", "0") or 0)

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, following a redirect to blob storage, verified against its digest."""
        url = f"/v2/{repository}/blobs/{digest}"
        response = self.request("GET", url, pull_scope(repository))
        hops = 0
        while response.status_code in (301, 302, 303, 307, 308) and hops < 5:
            location = response.headers.get("location", "")
            response.close()
            target = httpx.URL(self._base() + url).join(location)
            # Storage URLs are pre-signed; the registry's credentials must not go there.
            response = self._retrying("GET", str(target))
            hops += 1
        self._expect(response, repository, digest, "blob")
        if not oci.verify_digest(response.content, digest):
            raise RegistryError(
                Cause.PROTOCOL, f"the blob {digest} of {repository} does not match its digest"
            )
        return response.content

    def tags(self, repository: str, page_size: int | None = None) -> Iterator[str]:
        """Every tag of a repository, page by page as the registry's Link header leads."""
        path = f"/v2/{repository}/tags/list"
        if page_size:
            path += f"?n={page_size}"
        while path:
            response = self.request("GET", path, pull_scope(repository))
            self._expect(response, repository, "", "repository")
            try:
                tags = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(
                    Cause.PROTOCOL, f"the tag list of {repository} is not JSON"
                ) from None
            yield from (str(t) for t in tags)
            following = response.links.get("next", {}).get("url", "")
            if not following:
                break
            nxt = httpx.URL(self._base() + path).join(following)
            path = nxt.raw_path.decode("ascii")

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", push_scope(repository))
        if response.status_code == 404:
            return False
        self._expect(response, repository, digest, "blob")
        return True

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Cross-repository mount; False when the registry would rather have an upload."""
        scope = f"{push_scope(repository)} {pull_scope(source)}"
        query = urlencode({"mount": digest, "from": source})
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", scope)
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = response.headers.get("location", "")
            if location:
                target = httpx.URL(self._base() + "/").join(location)
                self.request("DELETE", target.raw_path.decode("ascii"), scope).close()
            return False
        self._expect(response, repository, digest, "blob upload")
        return False

    def put_blob(self, repository: str, digest: str, data: bytes) -> None:
        """A monolithic upload: POST for a session, PUT the bytes with the digest."""
        scope = push_scope(repository)
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope)
        self._expect(started, repository, digest, "blob upload")
        location = httpx.URL(self._base() + "/").join(started.headers.get("location", ""))
        separator = "&" if location.query else "?"
        target = location.raw_path.decode("ascii") + separator + urlencode({"digest": digest})
        done = self.request(
            "PUT",
            target,
            scope,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._expect(done, repository, digest, "blob upload")

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        """PUT a manifest or index; the digest the registry reports (checked against ours)."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            push_scope(repository),
            content=body,
            headers={"Content-Type": media_type},
        )
        self._expect(response, repository, reference, "manifest")
        ours = oci.sha256_digest(body)
        theirs = _header_digest(response) or ours
        if theirs != ours:
            raise RegistryError(
                Cause.PROTOCOL,
                f"the registry stored {repository}:{reference} as {theirs}, not {ours}",
            )
        return ours

    def _expect(self, response: httpx.Response, repository: str, ref: str, what: str) -> None:
        if response.status_code < 300:
            return
        raise diagnose.api_error(
            response, self.host, repository, ref, what, self.login, self._challenge
        )


def _header_digest(response: httpx.Response) -> str:
    """The Docker-Content-Digest header when it is a digest: else it is never repeated."""
    value = response.headers.get("docker-content-digest", "").strip()
    return value if oci.DIGEST.fullmatch(value) else ""


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"
