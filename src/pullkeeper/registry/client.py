"""A client for one registry: the OCI distribution API.

One `Registry` talks to one host with one login: manifests, blobs, tags, uploads. Its
requests authenticate through the registry's auth flow (registry/auth.py), which learns
the host's challenge on the first 401 and then authenticates up front, and are retried on
429 and 5xx (registry/retry.py); every other failure becomes a `RegistryError` with its
cause (registry/diagnose.py).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from pullkeeper import __version__, paths
from pullkeeper.core import oci
from pullkeeper.core.egress import EgressPolicy
from pullkeeper.registry import ca_files, diagnose
from pullkeeper.registry.auth import AuthSession, Login, RegistryAuth
from pullkeeper.registry.egress import GuardedTransport
from pullkeeper.registry.errors import Cause, RegistryError
from pullkeeper.registry.retry import Retry, Retrying

__all__ = ["TLS", "Fetched", "Registry", "api_host", "http_client"]

_USER_AGENT = f"pullkeeper/{__version__}"
_DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
_DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class TLS:
    """How to reach a registry: a CA bundle, a client certificate, or insecure (seed 004)."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # Docker's --insecure-registry: HTTPS without verification, else plain HTTP.
    insecure: bool = False
    # The server's view: its CAs are in DATA/certs.d, which `registry trust` (the CLI
    # user's own store) does not write; an untrusted certificate's hint says so.
    on_server: bool = False


@dataclass(frozen=True, slots=True)
class Fetched:
    """A manifest as fetched: its bytes, media type and verified digest."""

    body: bytes
    media_type: str
    digest: str
    manifest: oci.Manifest


def api_host(host: str) -> str:
    """The host serving the API: Docker Hub's references say docker.io, its API is elsewhere."""
    return _DOCKER_HUB_API if host in _DOCKER_HUB_HOSTS else host


def _ssl_context(tls: TLS, host: str) -> ssl.SSLContext | bool:
    if tls.insecure:
        return False
    ca = tls.ca_file or ca_files.ca_file(paths.certs_dir(), host)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if tls.client_cert:
        context.load_cert_chain(str(tls.client_cert), str(tls.client_key or tls.client_cert))
    return context


def http_client(
    host: str, tls: TLS, egress: EgressPolicy | None, timeout: float = 15.0
) -> httpx.Client:
    """A client for `host` as `tls` says to reach it, connecting only where `egress` allows
    (None: anywhere, for a local run); RegistryError when the TLS files cannot be loaded."""
    try:
        verify = _ssl_context(tls, host)
    except (OSError, ssl.SSLError) as e:
        raise RegistryError(Cause.TLS, f"cannot load the TLS files for {host}: {e}") from None
    return httpx.Client(
        verify=verify,
        transport=GuardedTransport(egress, verify) if egress is not None else None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"User-Agent": _USER_AGENT},
        follow_redirects=False,
    )


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
        self.requests = 0  # every HTTP request sent, token requests included
        self._scheme = "http" if self.tls.insecure else "https"
        self._scheme_known = not self.tls.insecure
        self._lock = threading.Lock()
        self.egress = egress
        self._http = http_client(self.host, self.tls, egress, timeout)
        self._http.event_hooks["request"].append(self._count)
        self._retry = Retry(retries, max_retry_wait, sleep)
        self._auth = AuthSession(self.host, self.login, self._http.build_request)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transport

    def _count(self, _: httpx.Request) -> None:
        with self._lock:
            self.requests += 1

    def _base(self) -> str:
        if not self._scheme_known:
            self._probe_scheme()
        return f"{self._scheme}://{self.host}"

    def _probe_scheme(self) -> None:
        # Insecure registries: HTTPS without verification first, as Docker does, else HTTP.
        try:
            self._send(self._http.build_request("GET", f"https://{self.host}/v2/"))
            self._scheme = "https"
        except RegistryError as e:
            if e.cause not in (Cause.TLS, Cause.TLS_UNTRUSTED):
                raise
            self._scheme = "http"
        self._scheme_known = True

    def _send(self, request: httpx.Request, auth: httpx.Auth | None = None) -> httpx.Response:
        """Send request through auth's flow (none: once, as it is)."""
        try:
            return self._http.send(request, auth=auth)
        except httpx.HTTPError as e:
            raise diagnose.transport_error(e, self.host, self.tls, self.egress) from None

    def _retried(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """A request as it is (no credentials added), retried when it may be."""
        return self._send(self._http.build_request(method, url, **kw), Retrying(self._retry))

    def request(self, method: str, path: str, scope: str = "", **kw: Any) -> httpx.Response:
        """One API request (path from /v2/), authenticated for scope, retried when it may be."""
        request = self._http.build_request(method, self._base() + path, **kw)
        return self._send(request, RegistryAuth(self._auth, scope, self._retry))

    # ----------------------------------------------------------------- the API

    def ping(self) -> httpx.Response:
        """GET /v2/ without credentials: 200, or 401 with the challenge it learns."""
        response = self._retried("GET", self._base() + "/v2/")
        if response.status_code == 401:
            self._auth.learn(response)
        elif response.status_code not in (200,):
            raise diagnose.status_error(response, self.host, "GET /v2/")
        return response

    def verify_login(self) -> None:
        """Log in as `docker login` does; raises RegistryError with the reason when refused."""
        response = self.ping()
        challenge = self._auth.challenge
        if response.status_code == 200 or challenge is None:
            return
        if self.login.anonymous:
            raise RegistryError(
                Cause.NO_CREDENTIALS, f"{self.host} requires a login and none was given"
            )
        if challenge.scheme == "bearer":
            # A token for no scope: the token server taking the login is the answer.
            key = (challenge.get("realm"), challenge.get("service"), "")
            fetch = self._auth.token_request(key, self._scheme)
            self._auth.read_token(self._send(fetch, Retrying(self._retry)))
            return
        checked = self._retried(
            "GET", self._base() + "/v2/", headers={"Authorization": self._auth.basic()}
        )
        if checked.status_code != 200:
            raise diagnose.login_refused(checked, self.host, self.login)

    def get_manifest(self, repository: str, reference: str) -> Fetched:
        """GET a manifest or index by tag or digest, with its digest verified."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            _pull_scope(repository),
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
            _pull_scope(repository),
            headers={"Accept": oci.ACCEPT},
        )
        self._expect(response, repository, reference, "manifest")
        digest = _header_digest(response)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return digest, media_type, int(response.headers.get("content-length", "0") or 0)

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, following a redirect to blob storage, verified against its digest."""
        url = f"/v2/{repository}/blobs/{digest}"
        response = self.request("GET", url, _pull_scope(repository))
        hops = 0
        while response.status_code in (301, 302, 303, 307, 308) and hops < 5:
            location = response.headers.get("location", "")
            response.close()
            target = httpx.URL(self._base() + url).join(location)
            # Storage URLs are pre-signed; the registry's credentials must not go there.
            response = self._retried("GET", str(target))
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
            response = self.request("GET", path, _pull_scope(repository))
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
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", _push_scope(repository))
        if response.status_code == 404:
            return False
        self._expect(response, repository, digest, "blob")
        return True

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Cross-repository mount; False when the registry would rather have an upload."""
        scope = f"{_push_scope(repository)} {_pull_scope(source)}"
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
        scope = _push_scope(repository)
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
            _push_scope(repository),
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
            response, self.host, repository, ref, what, self.login, self._auth.challenge
        )


def _header_digest(response: httpx.Response) -> str:
    """The Docker-Content-Digest header when it is a digest: else it is never repeated."""
    value = response.headers.get("docker-content-digest", "").strip()
    return value if oci.DIGEST.fullmatch(value) else ""


def _pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"
