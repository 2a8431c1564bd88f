"""One cluster's Kubernetes API, as the sync uses it: namespaces and managed Secrets.

On lightkube's sync client. Objects cross this boundary as plain dicts (the
API's JSON), so the rules in `core/` never see a client library's types.
Every failure is a `KubeError` with the HTTP status when there is one, and
whether trying again later can help.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx2
from lightkube import ALL_NS, Client, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.operators import Operator
from lightkube.resources.core_v1 import Namespace, Node, Secret, ServiceAccount

from pullkeeper import process
from pullkeeper.core.delivery import MANAGED_SELECTOR

__all__ = ["Access", "ClusterAPI", "KubeError", "client_for", "http_of", "translated"]

_FIELD_MANAGER = "pullkeeper"
_T = TypeVar("_T")


class KubeError(Exception):
    """A Kubernetes API failure; `status` is the HTTP status, None for no answer at all."""

    def __init__(
        self, message: str, status: int | None = None, reason: str = "", terminating: bool = False
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.reason = message, status, reason
        self.terminating = terminating  # refused because the namespace is being deleted

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (throttling, server trouble, no answer)."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def gone(self) -> bool:
        """A watch's resourceVersion is too old: list again."""
        return self.status == 410


_HINTS = {
    401: "the cluster refused pullkeeper's credentials; check the kubeconfig's user",
    422: "the API server refused the object as invalid",
    429: "the API server is throttling requests",
}
# The cause (its JSON field is "reason") NamespaceLifecycle admission gives a create in a
# namespace being deleted.
_TERMINATING = "NamespaceTerminating"


def translated(call: Callable[[], _T], what: str, verb: str = "", resource: str = "") -> _T:
    """call(), its failures as KubeErrors that say what was refused and what to do; `verb`
    and `resource` name the permission a 403 lacks."""
    try:
        return call()
    except ApiError as e:
        code = e.status.code or 0
        reason = e.status.reason or ""
        causes = (e.status.details.causes if e.status.details else None) or []
        terminating = code == 403 and any(c.reason == _TERMINATING for c in causes)
        message = f"{what}: {e.status.message or reason or f'HTTP {code}'}"
        if code == 403 and not terminating:
            needed = f"{verb} {resource}" if verb and resource else "this"
            message += (
                f" (pullkeeper's account may not {needed}: grant it, for example with the "
                "ClusterRole that `pullkeeper webhook manifests` prints)"
            )
        elif code in _HINTS:
            message += f" ({_HINTS[code]})"
        raise KubeError(message, code, reason, terminating) from None
    except httpx2.HTTPError as e:
        raise KubeError(f"{what}: {_unreachable(e)}") from None


def _unreachable(e: httpx2.HTTPError) -> str:
    """No answer from the API server: what happened, and where in the kubeconfig to look."""
    said = f"cannot reach the API server: {type(e).__name__}: {e}"
    if "CERTIFICATE_VERIFY_FAILED" in str(e):
        return (
            f"{said} (its certificate is not signed by the kubeconfig's certificate-authority: "
            "give the cluster's CA there)"
        )
    if isinstance(e, httpx2.ConnectError):
        return f"{said} (check the kubeconfig's server address, and that the API server runs)"
    if isinstance(e, httpx2.TimeoutException):
        return f"{said} (it did not answer in time; retried with backoff)"
    return said


@dataclass(frozen=True, slots=True)
class Access:
    """How to reach a cluster: a kubeconfig (a file, or its contents as `config`, one context
    already chosen) and context, or the pod's service account."""

    in_cluster: bool = False
    kubeconfig: str = ""
    context: str = ""
    # An uploaded kubeconfig, decrypted: never shown (it holds the cluster's credentials).
    config: dict[str, Any] | None = field(default=None, repr=False, compare=False)


def _config(access: Access) -> KubeConfig | SingleConfig:
    if access.in_cluster:
        return KubeConfig.from_service_account()
    where = "the uploaded kubeconfig"
    if access.config is not None:
        config = KubeConfig.from_dict(access.config)
    else:
        if not access.kubeconfig:
            raise KubeError("the cluster has no kubeconfig; set its path (and context)")
        path = Path(access.kubeconfig).expanduser()
        if not path.is_file():
            raise KubeError(
                f"the kubeconfig {access.kubeconfig} does not exist on the server; put it "
                "there or set the cluster's kubeconfig path"
            )
        config, where = KubeConfig.from_file(path), f"the kubeconfig {access.kubeconfig}"
    if access.context:
        if access.context not in config.contexts:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise KubeError(
                f"{where} has no context {access.context!r} (it has: {known}); set the "
                "cluster's context to one of them"
            )
        return cast(SingleConfig, config.get(context_name=access.context))
    return config


def http_of(client: Client) -> httpx2.Client:
    """lightkube's httpx client of a Client, with the kubeconfig's auth and TLS (lightkube
    does not expose it: the one place that reaches into it)."""
    http: httpx2.Client = client._client._client
    return http


def client_for(access: Access, *, timeout: float = 15.0) -> Client:
    """A lightkube client; a KubeError says what is wrong with the access settings."""
    try:
        config = _config(access)
    except (ConfigError, OSError, ValueError, KeyError) as e:
        raise KubeError(f"cannot load the cluster's access settings: {e}") from None
    try:
        client = Client(
            config=config,
            timeout=httpx2.Timeout(timeout),
            field_manager=_FIELD_MANAGER,
            trust_env=False,
        )
    except ssl.SSLError as e:
        # Building the TLS context reads the kubeconfig's certificates; the error's text
        # says which part failed, never the data.
        raise KubeError(
            "the kubeconfig's certificate-authority-data, client-certificate-data or "
            f"client-key-data is not a PEM certificate or key that fits ({e.reason or e}): "
            "give the cluster's CA certificate and the user's certificate and key, base64 of "
            "their PEM, as `kubectl config view --flatten --minify` writes them"
        ) from None
    except (ConfigError, ValueError, OSError) as e:
        raise KubeError(
            f"cannot load the cluster's access settings: {type(e).__name__}: {e}"
        ) from None
    # Named in the API server's audit log (`userAgent`): which replica made each request.
    http_of(client).headers["User-Agent"] = process.user_agent()
    return client


def _dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.to_dict()
    return out


class _Stopped(Exception):
    """A stopped watch's client refuses to ask again."""


class ClusterAPI:
    """The calls the sync makes, each translated to dicts and KubeErrors. Requests go through
    one client, used by one thread at a time; each watch has a client of its own."""

    def __init__(self, access: Access, timeout: float = 15.0) -> None:
        self._access, self._timeout = access, timeout
        self._client = client_for(access, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def list_namespaces(self) -> tuple[list[dict[str, Any]], str]:
        def call() -> tuple[list[dict[str, Any]], str]:
            found = self._client.list(Namespace, chunk_size=500)
            items = [_dict(n) for n in found]
            return items, found.resourceVersion

        return translated(call, "listing namespaces", "list", "namespaces")

    def list_managed_secrets(self) -> tuple[list[dict[str, Any]], str]:
        """Every Secret pullkeeper manages, in every namespace: one list, whatever their number."""

        def call() -> tuple[list[dict[str, Any]], str]:
            found = self._client.list(
                Secret, namespace=ALL_NS, labels=_selector(MANAGED_SELECTOR), chunk_size=500
            )
            items = [_dict(s) for s in found]
            return items, found.resourceVersion

        return translated(call, "listing the managed Secrets", "list", "secrets")

    def watch_namespaces(
        self, resource_version: str, timeout: int, stop: threading.Event
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self._watch(
            lambda client: client.watch(
                Namespace, resource_version=resource_version, server_timeout=timeout
            ),
            stop,
            "watching namespaces",
            "namespaces",
        )

    def watch_managed_secrets(
        self, resource_version: str, timeout: int, stop: threading.Event
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self._watch(
            lambda client: client.watch(
                Secret,
                namespace=ALL_NS,
                labels=_selector(MANAGED_SELECTOR),
                resource_version=resource_version,
                server_timeout=timeout,
            ),
            stop,
            "watching the managed Secrets",
            "secrets",
        )

    def _watch(
        self,
        start: Callable[[Client], Iterator[tuple[str, Any]]],
        stop: threading.Event,
        what: str,
        resource: str,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events of one watch, on a client of its own that the reading thread closes:
        a TLS connection closed by another thread while this one still reads it leaves its
        file descriptor to the next connection opened, whose bytes this thread would then
        read. Once `stop` is set, the watch ends at its next event, or where lightkube would
        ask again after the server ended it (`timeout` seconds at most)."""
        client = client_for(self._access, timeout=self._timeout)

        def refuse(_request: object) -> None:
            if stop.is_set():
                raise _Stopped

        http = http_of(client)  # its hooks are public
        http.event_hooks = {**http.event_hooks, "request": [refuse]}
        try:
            events = translated(lambda: start(client), what, "watch", resource)
            while not stop.is_set():
                got = translated(lambda: next(events, None), what, "watch", resource)
                if got is None:
                    return
                kind, obj = got
                yield kind, _dict(obj)
        except _Stopped:
            return
        finally:
            client.close()

    def node_labels(self, name: str) -> dict[str, str]:
        """A Node's labels (what a node's agent reads of itself)."""

        def call() -> dict[str, str]:
            node = self._client.get(Node, name)
            return dict(node.metadata.labels or {}) if node.metadata else {}

        return translated(call, f"reading Node {name}", "get", "nodes")

    def list_service_accounts(self) -> tuple[list[dict[str, Any]], str]:
        def call() -> tuple[list[dict[str, Any]], str]:
            found = self._client.list(ServiceAccount, namespace=ALL_NS, chunk_size=500)
            items = [_dict(a) for a in found]
            return items, found.resourceVersion

        return translated(call, "listing ServiceAccounts", "list", "serviceaccounts")

    def watch_service_accounts(
        self, resource_version: str, timeout: int, stop: threading.Event
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self._watch(
            lambda client: client.watch(
                ServiceAccount,
                namespace=ALL_NS,
                resource_version=resource_version,
                server_timeout=timeout,
            ),
            stop,
            "watching ServiceAccounts",
            "serviceaccounts",
        )

    def replace_service_account(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace a ServiceAccount at the resourceVersion it carries (else 409): its
        imagePullSecrets list is atomic, so a patch could not add one entry safely."""
        meta = obj["metadata"]
        return translated(
            lambda: _dict(
                self._client.replace(cast(ServiceAccount, ServiceAccount.from_dict(obj)))
            ),
            f"updating ServiceAccount {meta['namespace']}/{meta['name']}",
            "update",
            "serviceaccounts",
        )

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        def call() -> dict[str, Any] | None:
            try:
                return _dict(self._client.get(Secret, name, namespace=namespace))
            except ApiError as e:
                if e.status.code == 404:
                    return None
                raise

        return translated(call, f"reading Secret {namespace}/{name}", "get", "secrets")

    def create_secret(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        return translated(
            lambda: _dict(self._client.create(_secret(manifest))),
            f"creating Secret {meta['namespace']}/{meta['name']}",
            "create",
            "secrets",
        )

    def replace_secret(self, manifest: dict[str, Any], resource_version: str) -> dict[str, Any]:
        """Replace a Secret, only if it is still at resource_version (else 409)."""
        meta = manifest["metadata"]
        body = {**manifest, "metadata": {**meta, "resourceVersion": resource_version}}
        return translated(
            lambda: _dict(self._client.replace(_secret(body))),
            f"updating Secret {meta['namespace']}/{meta['name']}",
            "update",
            "secrets",
        )

    def delete_secret(self, namespace: str, name: str) -> bool:
        """Delete a Secret; False when it was already gone."""

        def call() -> bool:
            try:
                self._client.delete(Secret, name, namespace=namespace)
            except ApiError as e:
                if e.status.code == 404:
                    return False
                raise
            return True

        return translated(call, f"deleting Secret {namespace}/{name}", "delete", "secrets")


def _selector(text: str) -> dict[str, str | Operator[Any] | Iterable[Any] | None]:
    key, _, value = text.partition("=")
    return {key: value}


def _secret(manifest: dict[str, Any]) -> Secret:
    return cast(Secret, Secret.from_dict(manifest))
