"""A tiny stand-in for the deployment controller, the scheduler and the kubelet, so a client can
follow a rollout and read image-pull events as on a real cluster.

When a Deployment is created or its spec changes (a new metadata.generation), its old
ReplicaSets and their pods go, a ReplicaSet `NAME-HASH` owned by the Deployment is created
(event ScalingReplicaSet), and `spec.replicas` pods owned by that ReplicaSet (event
SuccessfulCreate), as the deployment and replicaset controllers do, through the same admission
as API-created pods (the ServiceAccount must exist; its imagePullSecrets fill
a pod that has none). For each pod: a `Scheduled` event, then per container `Pulling`, a call to
the test's `pull(image, namespace, pull_secret_names)`, and `Pulled`/`Created`/`Started` or
`Failed` ("Failed to pull image ..."), `Failed` ("Error: ErrImagePull"), `BackOff`, `Failed`
("Error: ImagePullBackOff"), with the container waiting in ImagePullBackOff. A referenced pull
secret that does not exist gives the kubelet's `FailedToRetrieveImagePullSecret` warning and is
left out of the names passed to `pull`. Then the Deployment's status is written.

Left out: rolling (old pods go before new ones come), ReplicaSet status, pull retries with back-off
(each pod pulls once), readiness probes, node selection (every pod lands on one node).
With `fail_progress` (the default) a failed rollout is marked ProgressDeadlineExceeded at once,
rather than after progressDeadlineSeconds, so `kubectl rollout status` ends.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.kube.api import Api, now
from tests.kube.errors import ApiFailure
from tests.kube.resources import BY_NAME
from tests.kube.store import Change, Store

Obj = dict[str, Any]
Pull = Callable[[str, str, list[str]], tuple[bool, str]]
# What a successful pull reports, as the kubelet's "Pulled" event does since v1.30.
PULLED_IMAGE_SIZE = 1028746
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _owner(obj: Obj) -> str | None:
    """The uid of the object's controller."""
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def _controller_ref(api_version: str, kind: str, name: str, uid: str) -> Obj:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _short_hash(value: Any, n: int) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:n])


class Simulator:
    def __init__(
        self,
        store: Store,
        api: Api,
        pull: Pull,
        node: str = "fake-node",
        fail_progress: bool = True,
    ) -> None:
        self.store, self.api, self.pull = store, api, pull
        self.node = node
        self.fail_progress = fail_progress
        self._queue: queue.Queue[tuple[str, str, int]] = queue.Queue()
        self._busy = 0
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-simulator", daemon=True)
        self.pulls: list[tuple[str, str, list[str]]] = []
        store.subscribe(self._on_change)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every rollout asked for so far has been played out."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or not self._queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(timeout=min(left, 0.1))
        return True

    def _on_change(self, change: Change) -> None:
        if change.resource != "deployments" or change.type == "DELETED":
            return
        generation = int(change.obj["metadata"].get("generation", 1))
        old = int((change.old or {}).get("metadata", {}).get("generation", 0))
        if change.type == "ADDED" or generation != old:
            with self._idle:
                self._busy += 1
            self._queue.put((change.namespace, change.obj["metadata"]["name"], generation))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._rollout(*item)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    # --- the controller -------------------------------------------------------------------

    def _rollout(self, namespace: str, name: str, generation: int) -> None:
        dep = self.store.get("deployments", namespace, name)
        if dep is None or int(dep["metadata"].get("generation", 1)) != generation:
            return  # deleted or superseded by a newer spec
        uid = dep["metadata"]["uid"]
        for old_rs in self.store.list("replicasets", namespace):
            if _owner(old_rs) == uid:
                for pod in self.store.list("pods", namespace):
                    if _owner(pod) == old_rs["metadata"]["uid"]:
                        self.store.delete("pods", namespace, pod["metadata"]["name"])
                self.store.delete("replicasets", namespace, old_rs["metadata"]["name"])
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        pod_hash = _short_hash(template, 10)
        replicas = int(spec.get("replicas", 1))
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "pod-template-hash": pod_hash,
        }
        rs_name = f"{name}-{pod_hash}"
        replicaset: Obj = {
            "metadata": {
                "name": rs_name,
                "labels": labels,
                "ownerReferences": [_controller_ref("apps/v1", "Deployment", name, uid)],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    **template,
                    "metadata": {**(template.get("metadata") or {}), "labels": labels},
                },
            },
        }
        rs = self.api.create(
            BY_NAME["replicasets"], namespace, replicaset, "kube-controller-manager"
        )
        self._event(
            dep,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {rs_name} from 0 to {replicas}",
            "deployment-controller",
        )
        rs_ref = _controller_ref("apps/v1", "ReplicaSet", rs_name, rs["metadata"]["uid"])
        ready, failed = 0, False
        for _ in range(replicas):
            if self._stop.is_set():
                return
            pod: Obj = {
                "metadata": {
                    "generateName": f"{rs_name}-",
                    "labels": labels,
                    "ownerReferences": [rs_ref],
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
            try:
                created = self.api.create(
                    BY_NAME["pods"], namespace, pod, "kube-controller-manager"
                )
            except ApiFailure as e:
                self._event(rs, "Warning", "FailedCreate", e.message, "replicaset-controller")
                failed = True
                break
            self._event(
                rs,
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {created['metadata']['name']}",
                "replicaset-controller",
            )
            if self._run_pod(created):
                ready += 1
            else:
                failed = True
        self._set_replicaset_status(namespace, rs_name, replicas, ready)
        self._set_status(namespace, name, generation, replicas, ready, failed, rs_name)

    def _set_replicaset_status(self, namespace: str, name: str, replicas: int, ready: int) -> None:
        with self.store.cond:
            rs = self.store.get("replicasets", namespace, name)
            if rs is None:
                return
            rs["status"] = {
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "observedGeneration": 1,
                **({"readyReplicas": ready, "availableReplicas": ready} if ready else {}),
            }
            self.store.write("replicasets", rs)

    # --- scheduler and kubelet ------------------------------------------------------------

    def _run_pod(self, pod: Obj) -> bool:
        meta, ns = pod["metadata"], pod["metadata"]["namespace"]
        self._event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{meta['name']} to {self.node}",
            "default-scheduler",
        )
        names = [ref.get("name", "") for ref in pod["spec"].get("imagePullSecrets") or []]
        present = [n for n in names if self.store.get("secrets", ns, n) is not None]
        missing = [n for n in names if n not in present]
        if missing:
            self._event(
                pod,
                "Warning",
                "FailedToRetrieveImagePullSecret",
                f"Unable to retrieve some image pull secrets ({', '.join(missing)}); "
                "attempting to pull the image may not succeed.",
            )
        statuses, all_ok = [], True
        backing_off: list[tuple[int, str, str, str]] = []  # (status index, image, field, error)
        for c in pod["spec"].get("containers") or []:
            image, path = c["image"], f"spec.containers{{{c['name']}}}"
            self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"', field_path=path)
            self.pulls.append((image, ns, list(present)))
            try:
                ok, message = self.pull(image, ns, list(present))
            except Exception as e:  # a failing callback is a failed pull, not a dead thread
                ok, message = False, f"pull callback raised {e!r}"
            if ok:
                self._event(
                    pod,
                    "Normal",
                    "Pulled",
                    f'Successfully pulled image "{image}" in 1ms (1ms including waiting). '
                    f"Image size: {PULLED_IMAGE_SIZE} bytes.",
                    field_path=path,
                )
                self._event(
                    pod, "Normal", "Created", f"Created container: {c['name']}", field_path=path
                )
                self._event(
                    pod, "Normal", "Started", f"Started container {c['name']}", field_path=path
                )
                state: Obj = {"running": {"startedAt": now()}}
            else:
                all_ok = False
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    f'Failed to pull image "{image}": {message}',
                    field_path=path,
                )
                self._event(pod, "Warning", "Failed", "Error: ErrImagePull", field_path=path)
                state = {"waiting": {"reason": "ErrImagePull", "message": message}}
                backing_off.append((len(statuses), image, path, message))
            statuses.append(
                {
                    "name": c["name"],
                    "image": image,
                    "imageID": "",
                    "ready": ok,
                    "restartCount": 0,
                    "started": ok,
                    "state": state,
                }
            )
        self._write_pod_status(pod, statuses, all_ok)
        if backing_off:
            # As the kubelet: ErrImagePull first, then, at its next sync, the back-off.
            for i, image, path, message in backing_off:
                self._event(
                    pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', field_path=path
                )
                self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff", field_path=path)
                statuses[i] = {
                    **statuses[i],
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}": ErrImagePull: {message}',
                        }
                    },
                }
            self._write_pod_status(pod, statuses, all_ok)
        return all_ok

    def _write_pod_status(self, pod: Obj, statuses: list[Obj], ok: bool) -> None:
        live = self.store.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if live is None:
            return
        stamp = now()
        flag = "True" if ok else "False"
        live["spec"]["nodeName"] = self.node
        live["status"] = {
            "phase": "Running" if ok else "Pending",
            "qosClass": "BestEffort",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.10",
            "startTime": stamp,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": stamp},
                {"type": "Ready", "status": flag, "lastTransitionTime": stamp},
            ],
            "containerStatuses": statuses,
        }
        self.store.write("pods", live)

    def _set_status(
        self,
        ns: str,
        name: str,
        generation: int,
        replicas: int,
        ready: int,
        failed: bool,
        rs_name: str,
    ) -> None:
        with self.store.cond:
            dep = self.store.get("deployments", ns, name)
            if dep is None or int(dep["metadata"].get("generation", 1)) != generation:
                return
            stamp = now()
            done = ready >= replicas and not failed
            if done:
                progressing = (
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                )
            elif failed and self.fail_progress:
                progressing = (
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                )
            else:
                progressing = (
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                )
            available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if ready < replicas:
                available = (
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            status: Obj = {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    {
                        "type": t,
                        "status": s,
                        "reason": r,
                        "message": m,
                        "lastUpdateTime": stamp,
                        "lastTransitionTime": stamp,
                    }
                    for t, (s, r, m) in (("Available", available), ("Progressing", progressing))
                ],
            }
            if replicas - ready:
                status["unavailableReplicas"] = replicas - ready
            dep["status"] = status
            self.store.write("deployments", dep)

    def _event(
        self,
        obj: Obj,
        kind: str,
        reason: str,
        message: str,
        component: str = "kubelet",
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        involved: Obj = {
            "kind": obj.get("kind", "Pod"),
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": obj.get("apiVersion", "v1"),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        stamp = now()
        event: Obj = {
            "metadata": {
                # As client-go's recorder names them: the object's name, the time in hex ns.
                "name": f"{meta['name']}.{time.time_ns():x}"
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {
                "component": component,
                **({"host": self.node} if component == "kubelet" else {}),
            },
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": self.node if component == "kubelet" else "",
        }
        # ApiFailure: the namespace went away meanwhile; the real recorder drops the event too.
        with contextlib.suppress(ApiFailure):
            self.api.create(BY_NAME["events"], meta["namespace"], event, component)
