"""The Kubernetes objects that run `pullkeeper node agent` on every node: its ServiceAccount,
its RBAC (get on nodes, nothing else), the server's CA as a ConfigMap, and the DaemonSet
with the host directories its runtimes' files live in."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain

__all__ = [
    "CA_KEY",
    "CA_PATH",
    "DEFAULT_RUNTIMES",
    "HOST_ROOT",
    "MIN_INTERVAL",
    "NAME",
    "NAMESPACE",
    "RUNTIMES",
    "TOKEN_KEY",
    "TOKEN_PATH",
    "TOKEN_SECRET",
    "HostPaths",
    "ManifestError",
    "Mount",
    "Options",
    "host_mounts",
    "manifests",
]

NAMESPACE = "pullkeeper"
NAME = "pullkeeper-node-agent"
TOKEN_SECRET = "pullkeeper-node-token"  # noqa: S105 - a Secret's name
TOKEN_KEY = "token"  # noqa: S105 - the key in it
CA_KEY = "ca.crt"
HOST_ROOT = "/host"  # where the host's directories appear in the pod: the agent's --root
TOKEN_PATH = "/var/run/secrets/pullkeeper/node-token/" + TOKEN_KEY
CA_PATH = "/etc/pullkeeper/server-ca/" + CA_KEY
MIN_INTERVAL = 5  # seconds; a shorter one would have every node ask the server all the time
DEFAULT_RUNTIMES = ("containerd", "kubelet")

# hostPath types: a runtime's configuration directory is made when the node has none yet
# (the runtime reads it from then on); the kubelet's root directory must exist, or the
# path given is not the kubelet's.
CREATE = "DirectoryOrCreate"
EXISTING = "Directory"


class ManifestError(ValueError):
    """An option the manifests cannot be made from: which one, and what to do."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Where the node keeps each runtime's files (paths on the node), as the agent is told."""

    containerd_config: str
    containerd_hosts: str
    containers: str
    docker: str
    rke2: str  # registries.yaml; its CAs go in certs.d beside it
    kubelet_root_dir: str
    state: str


@dataclass(frozen=True, slots=True)
class Mount:
    """A host directory the pod mounts at HOST_ROOT + path."""

    path: str
    type: str  # hostPath type


# The host directories each runtime's files are in, and the agent's flags that say where.
_DIRECTORIES: dict[str, Callable[[HostPaths], list[tuple[str, str]]]] = {
    "containerd": lambda p: [
        (posixpath.dirname(p.containerd_config), CREATE),
        (p.containerd_hosts, CREATE),
    ],
    "containers": lambda p: [(p.containers, CREATE)],
    "docker": lambda p: [(p.docker, CREATE)],
    "rke2": lambda p: [(posixpath.dirname(p.rke2), CREATE)],  # certs.d is beside it
    "kubelet": lambda p: [(p.kubelet_root_dir, EXISTING)],
}
_PATH_FLAGS: dict[str, list[tuple[str, Callable[[HostPaths], str]]]] = {
    "containerd": [
        ("--containerd-config", lambda p: p.containerd_config),
        ("--containerd-hosts-dir", lambda p: p.containerd_hosts),
    ],
    "kubelet": [("--kubelet-root-dir", lambda p: p.kubelet_root_dir)],
}
RUNTIMES = tuple(_DIRECTORIES)


@dataclass(frozen=True, slots=True)
class Options:
    image: str
    server: str  # the pullkeeper server's URL, as the nodes reach it
    cluster: str  # the registered cluster these nodes are in (the node token's)
    paths: HostPaths
    namespace: str = NAMESPACE
    name: str = NAME
    token_secret: str = TOKEN_SECRET  # holds the node token under TOKEN_KEY
    server_ca: str | None = None  # PEM: the CA the server's certificate is checked with
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    interval: int | None = None  # seconds between the agent's rounds; None: its own default
    take_over: bool = False
    priority_class: str = "system-node-critical"  # "" for none


def _check_server(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ManifestError(
            "server",
            f"{url!r} is not a server URL: write https://HOST[:PORT] (or http://) as the "
            "nodes reach it",
        )
    if parts.username is not None or parts.password is not None:
        raise ManifestError("server", "must not carry a user name or password")
    if parts.query or parts.fragment:
        raise ManifestError("server", f"{url!r} has a query or fragment: give the server's URL")


def _check_ca(pem: str) -> None:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certs = []
    if not certs:
        raise ManifestError(
            "ca-file", "is not a PEM certificate (-----BEGIN CERTIFICATE-----): give the CA's"
        )


def _check_path(option: str, path: str) -> None:
    if not path.startswith("/") or posixpath.normpath(path) != path.rstrip("/") or path == "/":
        raise ManifestError(option, f"{path!r} is not an absolute path below / on the node")


def _check(o: Options) -> None:
    _check_server(o.server)
    if not o.cluster:
        raise ManifestError("cluster", "is empty: give the registered cluster's name")
    try:
        validate_label(o.namespace, "namespace")
        validate_label(o.name, "name")
        validate_subdomain(o.token_secret, "token-secret")
        if o.priority_class:
            validate_subdomain(o.priority_class, "priority-class")
    except InvalidName as e:
        option, _, message = str(e).partition(": ")
        raise ManifestError(option, message) from None
    if not o.image or any(c.isspace() for c in o.image):
        raise ManifestError("image", f"{o.image!r} is not an image reference")
    if o.server_ca is not None:
        _check_ca(o.server_ca)
    if o.interval is not None and o.interval < MIN_INTERVAL:
        raise ManifestError(
            "interval", f"{o.interval} is too short: at least {MIN_INTERVAL} seconds"
        )
    if not o.runtimes:
        raise ManifestError("runtime", "name at least one runtime")
    for runtime in o.runtimes:
        if runtime not in _DIRECTORIES:
            raise ManifestError("runtime", f"{runtime!r} is not one of {', '.join(RUNTIMES)}")
    for option, path in (
        ("containerd-config", o.paths.containerd_config),
        ("containerd-hosts-dir", o.paths.containerd_hosts),
        ("containers", o.paths.containers),
        ("docker", o.paths.docker),
        ("rke2", o.paths.rke2),
        ("kubelet-root-dir", o.paths.kubelet_root_dir),
        ("state-dir", o.paths.state),
    ):
        _check_path(option, path)
    for option, path in (
        ("containerd-config", o.paths.containerd_config),
        ("rke2", o.paths.rke2),
    ):  # files: their directory is what is mounted, and it must not be the whole host
        if posixpath.dirname(path) == "/":
            raise ManifestError(option, f"{path!r} is a file in /: give one in a directory")


def _runtimes(o: Options) -> list[str]:
    return list(dict.fromkeys(o.runtimes))  # repeated names once, in their order


def host_mounts(o: Options) -> list[Mount]:
    """The host directories the runtimes' files and the agent's state are in, each once: a
    directory inside another is reached through the outer one's mount."""
    wanted = [(o.paths.state, CREATE)]
    for runtime in _runtimes(o):
        wanted += _DIRECTORIES[runtime](o.paths)
    # Outer directories first; of one directory named twice, the stricter type.
    ordered = sorted(
        {(path.rstrip("/"), kind) for path, kind in wanted},
        key=lambda m: (m[0], m[1] != EXISTING),
    )
    kept: list[Mount] = []
    for path, kind in ordered:
        if not any(path == m.path or path.startswith(m.path + "/") for m in kept):
            kept.append(Mount(path, kind))
    return kept


def _args(o: Options) -> list[str]:
    args = ["node", "agent", "--server", o.server, "--token-file", TOKEN_PATH]
    args += ["--cluster", o.cluster]
    if o.server_ca is not None:
        args += ["--ca-file", CA_PATH]
    for runtime in _runtimes(o):
        args += ["--runtime", runtime]
    args += ["--root", HOST_ROOT]
    for runtime in _runtimes(o):
        for flag, path in _PATH_FLAGS.get(runtime, []):
            args += [flag, path(o.paths)]
    args += ["--state-dir", o.paths.state]
    if o.interval is not None:
        args += ["--interval", str(o.interval)]
    if o.take_over:
        args.append("--take-over")
    return args


def _labels(o: Options) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/instance": o.name,
        "app.kubernetes.io/component": "node-agent",
        "app.kubernetes.io/part-of": "pullkeeper",
    }


def _selector(o: Options) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": o.name}


def _ca_map(o: Options) -> str:
    return f"{o.name}-server-ca"


def _volume_name(path: str, taken: set[str]) -> str:
    """host-etc-containerd for /etc/containerd: a DNS label, unique in the pod."""
    base = ("host-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-"))[:58].rstrip("-")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _volumes(o: Options, mounts: list[Mount]) -> tuple[list[Any], list[Any]]:
    """The pod's volumes and the container's mounts of them."""
    volumes: list[dict[str, Any]] = [
        {
            "name": "node-token",
            "secret": {
                "secretName": o.token_secret,
                "items": [{"key": TOKEN_KEY, "path": TOKEN_KEY}],
                "defaultMode": 0o400,
            },
        },
        # Python and its libraries expect a writable /tmp; the root file system is not.
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]
    mounted: list[dict[str, Any]] = [
        {"name": "node-token", "mountPath": posixpath.dirname(TOKEN_PATH), "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own, an emptyDir
    ]
    if o.server_ca is not None:
        volumes.append(
            {
                "name": "server-ca",
                "configMap": {"name": _ca_map(o), "items": [{"key": CA_KEY, "path": CA_KEY}]},
            }
        )
        mounted.append(
            {"name": "server-ca", "mountPath": posixpath.dirname(CA_PATH), "readOnly": True}
        )
    for m in mounts:
        name = _volume_name(m.path, {v["name"] for v in volumes})
        volumes.append({"name": name, "hostPath": {"path": m.path, "type": m.type}})
        mounted.append({"name": name, "mountPath": HOST_ROOT + m.path})
    return volumes, mounted


def _daemonset(o: Options) -> dict[str, Any]:
    volumes, mounted = _volumes(o, host_mounts(o))
    container = {
        "name": "agent",
        "image": o.image,
        "command": ["pullkeeper"],
        "args": _args(o),
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": {
            "runAsUser": 0,  # the files it writes are root's, as the runtimes expect
            "runAsGroup": 0,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounted,
    }
    pod: dict[str, Any] = {
        "serviceAccountName": o.name,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        # Every node, tainted or not: a node the agent skips keeps its old registry files.
        "tolerations": [{"operator": "Exists"}],
        "containers": [container],
        "volumes": volumes,
    }
    if o.priority_class:
        pod["priorityClassName"] = o.priority_class
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": o.name, "namespace": o.namespace, "labels": _labels(o)},
        "spec": {
            "selector": {"matchLabels": _selector(o)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": _labels(o)}, "spec": pod},
        },
    }


def manifests(o: Options) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole, ClusterRoleBinding, the CA's ConfigMap (with a CA) and
    the DaemonSet, in the order `kubectl apply` needs them; ManifestError for a bad option."""
    _check(o)
    labels = _labels(o)
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": o.name, "namespace": o.namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": o.name, "labels": labels},
            # Its own Node's labels, by name: no list or watch (every node would otherwise
            # see them all), no other object. The token and the CA come as files.
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": o.name, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": o.name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": o.name, "namespace": o.namespace}],
        },
    ]
    if o.server_ca is not None:
        pem = o.server_ca if o.server_ca.endswith("\n") else o.server_ca + "\n"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": _ca_map(o), "namespace": o.namespace, "labels": labels},
                "data": {CA_KEY: pem},
            }
        )
    out.append(_daemonset(o))
    return out
