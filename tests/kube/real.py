"""A real Kubernetes control plane for the tests, started by `scripts/kube`, and a per-test
view of it with the same calls as the fake (`create`, `get`, `objects`, `replace`, `delete`,
`kubeconfig`), so one test body runs against either; and, for the tests that need pods to
run, a real node (`Node`: kubelet, containerd and runc, with a scheduler).

The control plane (etcd, kube-apiserver with RBAC, kube-controller-manager with the
serviceaccount, namespace, garbage-collector, deployment and replicaset controllers) is
started once per test session. Each test's view remembers what the test made and removes it
afterwards; the next test starts once deleted namespaces are really gone, so it finds the
cluster as it was: `default`, `kube-system`, `kube-public` and `kube-node-lease`.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.kube import resources
from tests.tools import missing, pullkeeper_executable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kube"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CLUSTER_KINDS = (
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "PersistentVolume",
)
Obj = dict[str, Any]
NODE_TAINT = "pullkeeper.test/node"  # scripts/kube node-up's
# A namespace's annotation that gives its pods the toleration (PodTolerationRestriction).
TOLERATE_NODE = {
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{"key": NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]
    )
}


def require_control_plane() -> None:
    """`missing` unless scripts/kube can start a control plane without building first."""
    found = subprocess.run([str(SCRIPT), "check"], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        missing(
            f"{found.stdout.strip() or found.stderr.strip()}: the tests on a real Kubernetes "
            "API server do not run (scripts/test builds it)"
        )


def require_node() -> None:
    """`missing` unless scripts/kube can start a node: binaries built, packages, root."""
    require_control_plane()
    found = subprocess.run(
        [str(SCRIPT), "check", "node"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        missing(
            f"{found.stdout.strip() or found.stderr.strip()}: the tests that run pods on a "
            "real kubelet do not run"
        )


def _start(command: str, directory: Path, stop: Callable[[], None], **env: str) -> None:
    """`scripts/kube COMMAND DIRECTORY PID` (what it starts stops when this process ends);
    on failure, `stop()` and its error output."""
    up = subprocess.run(
        [str(SCRIPT), command, str(directory), str(os.getpid())],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if up.returncode != 0:
        stop()
        raise RuntimeError(f"scripts/kube {command} failed:\n{up.stderr}")


class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, in `directory`."""

    def __init__(self, directory: Path, apiserver_flags: str = "") -> None:
        self.directory = directory
        self.apiserver_flags = apiserver_flags  # more flags for kube-apiserver
        self.url = self.token = ""
        self.ca_file = directory / "pki" / "ca.crt"
        self._http: httpx.Client | None = None
        self._collections: list[str] | None = None

    def start(self) -> ControlPlane:
        _start("up", self.directory, self.stop, KUBE_APISERVER_FLAGS=self.apiserver_flags)
        config = yaml.safe_load((self.directory / "kubeconfig").read_text())
        self.url = config["clusters"][0]["cluster"]["server"]
        self.token = (self.directory / "admin.token").read_text().strip()
        self.product_token = (self.directory / "pullkeeper.token").read_text().strip()
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=30,
        )
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
        subprocess.run([str(SCRIPT), "down", str(self.directory)], timeout=60, check=False)

    @property
    def http(self) -> httpx.Client:
        assert self._http is not None, "the control plane is not started"
        return self._http

    def namespaced_collections(self) -> list[str]:
        """Every namespaced resource that can be listed and deleted as a collection, as
        `/api/v1/pods` or `/apis/apps/v1/deployments` (from discovery, once)."""
        if self._collections is None:
            prefixes = ["/api/v1"] + [
                f"/apis/{group['preferredVersion']['groupVersion']}"
                for group in self.http.get("/apis").json()["groups"]
            ]
            self._collections = [
                f"{prefix}/{r['name']}"
                for prefix in prefixes
                for r in self.http.get(prefix).json()["resources"]
                if r["namespaced"]
                and "/" not in r["name"]
                and {"list", "deletecollection"} <= set(r.get("verbs") or [])
            ]
        return self._collections

    def kubeconfig(self, path: Path, token: str | None = None, user: str = "pullkeeper") -> Path:
        """A kubeconfig for the API server: user pullkeeper's (the product's: a cluster admin
        whose requests the audit log tells apart), or one for a bearer token."""
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": self.url, "certificate-authority-data": ca}}
            ],
            "users": [{"name": user, "user": {"token": token or self.product_token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
            "current-context": "test",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    def audit_end(self) -> int:
        """Where the audit log ends now: events after it are news."""
        return (self.directory / "audit.log").stat().st_size

    def audit(self, user: str = "pullkeeper", since: int = 0) -> tuple[list[Obj], int]:
        """The API server's audit events of a user (what a request was, its answer and when)
        from byte `since` of the log on, and where the log's last whole line ends now."""
        start = max(since - 1, 0)
        with (self.directory / "audit.log").open("rb") as f:
            f.seek(start)
            data = f.read()
        if since > 0:  # skip to the first line that begins at or after `since`
            cut = data.find(b"\n") + 1
            if cut == 0:
                return [], since
            data, start = data[cut:], start + cut
        whole = data[: data.rfind(b"\n") + 1]
        events = [json.loads(line) for line in whole.splitlines() if line]
        # Requests refused before authentication (a wrong token) have no user name.
        return [e for e in events if e["user"].get("username") == user], start + len(whole)


# Images named NODE_LOGIN_HOST/... get alice's login from the node's own config.json.
NODE_LOGIN_HOST = "node-login.pullkeeper.test"


class Node:
    """A real node for the control plane: kubelet v1.34 with Debian's containerd and runc, the
    scheduler, and the controllers a node needs (`scripts/kube node-up`), in PLANE/node.

    It is tainted: only pods in a namespace annotated with `TOLERATE_NODE` are scheduled there, so
    the other tests' pods stay Pending as before. containerd pulls from the registries the tests
    `trust`: each gets a hosts.toml in the node's certs.d, with its CA for TLS. `busybox` is an
    OCI layout of a runnable image (Debian's static busybox) for tests to push.

    Its kubelet's own config.json (in its root directory, the first place it looks) is
    written by `pullkeeper node apply --runtime kubelet` before it starts, from a profile
    with one login: alice's of the token registry, for images named NODE_LOGIN_HOST/...
    (the kubelet keeps what it read of config.json for 5 minutes, so it is there from its
    start).

    The kubelet asks one credential provider, this project's `pullkeeper
    kubelet-credential-provider`, about images named like ECR's (`*.dkr.ecr.*.amazonaws.com`)
    and no others: `provide(args)` gives it its arguments, `provide(None)` takes them away
    (then it answers no credentials, which the kubelet does not cache); `provider_runs()`
    counts the kubelet's runs of it.
    """

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.directory = plane.directory / "node"
        self.busybox = self.directory / "images" / "busybox"
        self.provider = self.directory / "provider"

    def start(self) -> Node:
        # Here, not at the top: the registries' module imports this one.
        from tests.registry.servers import TOKEN_USERS

        profile = self.plane.directory / "node-profile.yaml"
        alice = TOKEN_USERS["alice"]
        profile.write_text(
            yaml.safe_dump({"logins": {NODE_LOGIN_HOST: {"username": "alice", "password": alice}}})
        )
        apply = [
            *(pullkeeper_executable(), "node", "apply", "--profile", str(profile)),
            *("--runtime", "kubelet", "--kubelet-root-dir", "$NODE_DIR/kubelet/root"),
            *("--state-dir", "$NODE_DIR/pullkeeper-node"),
        ]
        _start(
            "node-up",
            self.plane.directory,
            self.stop,
            KUBE_CREDENTIAL_PROVIDER=pullkeeper_executable(),
            KUBE_NODE_PREPARE=" ".join(
                a if a.startswith("$NODE_DIR") else shlex.quote(a) for a in apply
            ).replace("$NODE_DIR", '"$NODE_DIR"'),
        )
        return self

    def stop(self) -> None:
        subprocess.run(
            [str(SCRIPT), "node-down", str(self.plane.directory)], timeout=120, check=False
        )

    def trust(self, host: str, ca_file: Path | None, server: str | None = None) -> None:
        """containerd pulls images named HOST/... from registry SERVER (127.0.0.1:PORT;
        HOST itself when not given): over TLS with its CA, or plain HTTP without one."""
        target = self.directory / "certs.d" / host
        target.mkdir(parents=True, exist_ok=True)
        url = f"{'https' if ca_file else 'http'}://{server or host}"
        ca = ""
        if ca_file is not None:
            shutil.copyfile(ca_file, target / "ca.crt")
            ca = f'ca = "{target / "ca.crt"}"\n'
        # containerd 1.6 wants a [host] table; after that host it tries `server` too (on a 404,
        # a missing tag), so both trust the CA, or the answer would be an x509 error.
        (target / "hosts.toml").write_text(
            f'server = "{url}"\n{ca}\n[host."{url}"]\ncapabilities = ["pull", "resolve"]\n{ca}'
        )

    def provide(self, args: list[str] | None) -> None:
        """The provider's arguments from the kubelet's next run of it on (one a line in
        provider/args, replaced whole so a run never reads half of them); None: none."""
        target = self.provider / "args"
        if args is None:
            target.unlink(missing_ok=True)
            return
        staged = target.with_name("args.new")
        staged.write_text("".join(f"{a}\n" for a in args))
        staged.replace(target)

    def provider_runs(self) -> int:
        """How many times the kubelet has run the credential provider."""
        runs = self.provider / "runs"
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    def ctr(self, *args: str) -> str:
        sock = self.directory / "containerd" / "containerd.sock"
        done = subprocess.run(
            ["ctr", "--address", str(sock), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {done.stderr}")
        return done.stdout

    def images(self) -> list[str]:
        """The images on the node, by name (the sandbox's included)."""
        return [n for n in self.ctr("images", "ls", "-q").split() if not n.startswith("sha256:")]

    def forget_images(self) -> None:
        """Remove what pods pulled: a pull the next test expects must reach the registry (an
        image on the node is used without asking it, whatever the credentials)."""
        pulled = [n for n in self.ctr("images", "ls", "-q").split() if "pullkeeper.test/" not in n]
        if pulled:
            self.ctr("images", "rm", *pulled)


# Kinds the real server serves that the fake does not.
_MORE = {
    r.plural: r
    for r in (
        resources.Resource("apps", "v1", "statefulsets", "StatefulSet", True),
        resources.Resource("apps", "v1", "daemonsets", "DaemonSet", True),
        resources.Resource("", "v1", "nodes", "Node", False),
    )
}


def _resource(name: str) -> resources.Resource:
    return resources.BY_NAME.get(name) or _MORE[name]


def _path(resource: str, namespace: str | None = None, name: str = "") -> str:
    res = _resource(resource)
    out = res.path_prefix()
    if res.namespaced and namespace:
        out += f"/namespaces/{namespace}"
    out += f"/{res.plural}"
    return f"{out}/{name}" if name else out


class ApiFailure(AssertionError):
    """The real API server refused a call a test made."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(f"{answer.request.method} {answer.request.url.path}: {answer.text}")
        self.status = answer.status_code
        self.body: Obj = answer.json() if answer.content else {}


class RealCluster:
    """One test's view of the shared control plane: the fake's calls, on the real server."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._namespaces: list[str] = []
        self._cluster_objects: list[tuple[str, str]] = []
        self._applied: list[tuple[str, str]] = []  # (kind, name) of cluster-wide objects
        self.reset_counts()

    @property
    def url(self) -> str:
        return self.plane.url

    def kubeconfig(self, path: Path, token: str | None = None) -> Path:
        return self.plane.kubeconfig(path, token)

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.plane.http.request(method, path, **kw)

    def _ok(self, answer: httpx.Response) -> Obj:
        if answer.status_code >= 400:
            raise ApiFailure(answer)
        out: Obj = answer.json()
        return out

    def create(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        res = _resource(resource)
        namespace = (
            namespace
            or obj.get("metadata", {}).get("namespace")
            or ("default" if res.namespaced else None)
        )
        body = {"apiVersion": res.api_version, "kind": res.kind, **obj}
        made = self._ok(self.call("POST", _path(resource, namespace), json=body))
        if resource == "namespaces":
            self._namespaces.append(made["metadata"]["name"])
        elif not res.namespaced:
            self._cluster_objects.append((resource, made["metadata"]["name"]))
        return made

    def get(self, resource: str, name: str, namespace: str = "") -> Obj | None:
        answer = self.call("GET", _path(resource, namespace, name))
        return None if answer.status_code == 404 else self._ok(answer)

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        items: list[Obj] = self._ok(self.call("GET", _path(resource, namespace)))["items"]
        return items

    def replace(self, resource: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        res = _resource(resource)
        body = {"apiVersion": res.api_version, "kind": res.kind, **obj}
        path = _path(resource, meta.get("namespace"), meta["name"])
        return self._ok(self.call("PUT", path, json=body))

    def delete(self, resource: str, name: str, namespace: str = "") -> None:
        answer = self.call("DELETE", _path(resource, namespace, name))
        if answer.status_code != 404:
            self._ok(answer)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until only the cluster's own namespaces are left. The tests before this one
        may have left some Terminating, and the namespace controller waits 5 s before it
        empties one: the harness empties them itself and finalizes them once nothing is
        left in them (never before: what a namespace still held would come back with the
        next namespace of that name). `default` is cleared again: the sync of the test
        before may have written there after that test's cleanup."""
        self._clear_default()
        deadline = time.monotonic() + timeout
        while left := [
            n for n in self.objects("namespaces") if n["metadata"]["name"] not in SYSTEM_NAMESPACES
        ]:
            for ns in left:
                if not ns["metadata"].get("deletionTimestamp"):
                    self.delete("namespaces", ns["metadata"]["name"])
                self._finish(ns["metadata"]["name"])
            if time.monotonic() > deadline:
                names = [n["metadata"]["name"] for n in left]
                raise AssertionError(f"namespaces {names} not gone within {timeout} s")
            time.sleep(0.1)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl as the cluster's admin."""
        if shutil.which("kubectl") is None:
            missing("kubectl (it comes with the machine image)")
        done = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.plane.directory / "kubeconfig"), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done

    def apply(self, docs: list[Obj], *flags: str) -> subprocess.CompletedProcess[str]:
        """`kubectl apply -f -` of these objects; what it makes is removed after the test."""
        for doc in docs:
            name = doc["metadata"]["name"]
            if doc["kind"] == "Namespace":
                self._namespaces.append(name)
            elif "namespace" not in doc["metadata"] and doc["kind"] in CLUSTER_KINDS:
                self._applied.append((doc["kind"], name))
        return self.kubectl("apply", *flags, "-f", "-", input=yaml.safe_dump_all(docs))

    def reset_counts(self) -> None:
        """Count the product's requests from now on."""
        self._mark = self.plane.audit_end()

    def count(
        self, verb: str | None = None, resource: str | None = None, namespace: str | None = None
    ) -> int:
        """The product's requests (user pullkeeper) since the last `reset_counts`, as the API
        server's audit log tells them; verb "write" counts every write."""
        return len(self.requests(verb, resource, namespace))

    def requests(
        self, verb: str | None = None, resource: str | None = None, namespace: str | None = None
    ) -> list[Obj]:
        """The audit events of what `count` counts: who asked (`userAgent`), what, when."""
        verbs = WRITE_VERBS if verb == "write" else (verb,)
        events, _ = self.plane.audit("pullkeeper", self._mark)
        return [
            e
            for e in events
            if (verb is None or e["verb"] in verbs)
            and (resource is None or (e.get("objectRef") or {}).get("resource") == resource)
            and (namespace is None or (e.get("objectRef") or {}).get("namespace") == namespace)
        ]

    def cleanup(self) -> None:
        """Remove what the test made (its namespaces go on terminating: see `settle`)."""
        for resource, name in reversed(self._cluster_objects):
            self.delete(resource, name)
        for kind, name in reversed(self._applied):
            self.kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")
        for name in self._namespaces:
            self.delete("namespaces", name)
        self._applied.clear()
        self._clear_default()
        self._namespaces.clear()
        self._cluster_objects.clear()

    def _finish(self, namespace: str) -> None:
        """The namespace controller's work on a deleted namespace, without its wait."""
        base = f"/namespaces/{namespace}"
        held = False
        for collection in self.plane.namespaced_collections():
            prefix, _, plural = collection.rpartition("/")
            path = f"{prefix}{base}/{plural}"
            self.call("DELETE", path, params={"gracePeriodSeconds": "0"})
            answer = self.call("GET", path, params={"limit": "1"})
            held |= answer.status_code == 200 and bool(answer.json().get("items"))
        if held:
            return  # something waits on a finalizer: the controller finishes it
        ns = self.get("namespaces", namespace)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            ns["spec"]["finalizers"] = []
            self.call("PUT", f"/api/v1/namespaces/{namespace}/finalize", json=ns)

    def _clear_default(self) -> None:
        """`default` stays: what a test (or a cluster-wide credential) put there goes."""
        for resource in ("deployments", "replicasets", "pods", "configmaps", "events", "secrets"):
            self.call("DELETE", _path(resource, "default"))
        for account in self.objects("serviceaccounts", "default"):
            if account.get("imagePullSecrets") or account["metadata"]["name"] != "default":
                self.delete("serviceaccounts", account["metadata"]["name"], "default")
