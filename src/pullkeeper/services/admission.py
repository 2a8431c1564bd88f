"""The admission webhook's decisions, from an in-memory index of the store.

Decisions read the in-memory index (services/admission_index.py), so a request
costs no database query; the audit records a review leaves are queued and written
by a thread of their own (services/admission_audit.py).

AdmissionReview handling follows `admission.k8s.io/v1`: the answer carries
the request's uid; a patch is a base64 JSONPatch; warnings go in `warnings`.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pullkeeper.core import admission, imagepolicy
from pullkeeper.core.ratelimit import TokenBuckets
from pullkeeper.services.admission_audit import AuditWriter, Entry
from pullkeeper.services.admission_index import Index, NamespaceView
from pullkeeper.services.server import Server

__all__ = ["BadReview", "Options", "Webhook", "encode_review", "parse_review", "start"]

_log = logging.getLogger("pullkeeper.admission")
_API_VERSION = "admission.k8s.io/v1"
# Kinds whose pod spec the webhook handles (Pods always; templates when configured).
_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


class BadReview(ValueError):
    """An AdmissionReview that cannot be answered; the message says what is wrong."""


# --------------------------------------------------------------------------- reviews


@dataclass(frozen=True, slots=True)
class Options:
    templates: bool = True  # also the pod templates of workloads
    excluded: tuple[str, ...] = ()  # namespaces passed through (the webhook's own among them)
    decide_timeout: float = 2.0
    validate_fail_closed: bool = True  # undecidable validation: deny (Fail) or allow (Ignore)
    audit_per_minute: int = 20  # audit records per namespace; more are only counted
    audit_queue: int = 1000  # audit records waiting for their write; more are only counted


# The request's fields the webhook reads, with the JSON types admission.k8s.io/v1 gives them
# (each may be absent or null): (field, type, a member of it that must be a string).
_REQUEST_FIELDS: tuple[tuple[str, type[Any], str | None], ...] = (
    ("kind", dict, "kind"),
    ("namespace", str, None),
    ("name", str, None),
    ("operation", str, None),
    ("subResource", str, None),
    ("userInfo", dict, "username"),
    ("object", dict, None),
    ("oldObject", dict, None),
    ("dryRun", bool, None),
)
_TYPE_NAMES = {dict: "an object", str: "a string", bool: "a boolean"}
_TOO_DEEP = "depth limit exceeded"  # orjson's word for nesting past its 1,024 levels


def parse_review(body: bytes) -> dict[str, Any]:
    """The review's request; BadReview saying what is wrong when the body is not an
    AdmissionReview v1 or a field the webhook reads has another type."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if e.msg == _TOO_DEEP:
            raise BadReview("the body nests too deeply to be an AdmissionReview") from None
        raise BadReview(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "AdmissionReview":
        raise BadReview("the body is not an AdmissionReview")
    if doc.get("apiVersion") != _API_VERSION:
        raise BadReview(f"only {_API_VERSION} AdmissionReviews are served")
    request = doc.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise BadReview("the AdmissionReview has no request with a uid")
    for name, kind, member in _REQUEST_FIELDS:
        value = request.get(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            found = admission.json_type(value)
            raise BadReview(f"request.{name} must be {_TYPE_NAMES[kind]}, not {found}")
        if member is not None and not isinstance(value.get(member), str | None):
            found = admission.json_type(value.get(member))
            raise BadReview(f"request.{name}.{member} must be a string, not {found}")
    return request


# The AdmissionReview around every answer's response, encoded once.
_ENVELOPE = orjson.dumps({"apiVersion": _API_VERSION, "kind": "AdmissionReview", "response": 0})
_HEAD, _, _TAIL = _ENVELOPE.rpartition(b"0")


def encode_review(answer: Mapping[str, Any]) -> bytes:
    """An answer of mutate or validate as the JSON the API server reads: the response
    (its uid escaped as any string) in the precomputed envelope."""
    return _HEAD + orjson.dumps(answer["response"]) + _TAIL


def _answer(uid: str, allowed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": _API_VERSION,
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": allowed, **extra},
    }


def _target(request: Mapping[str, Any], options: Options) -> tuple[str, Mapping[str, Any]] | None:
    """(kind, object) when the request is one the webhook acts on, else None (pass)."""
    kind_info = request.get("kind")
    kind = kind_info.get("kind") if isinstance(kind_info, Mapping) else None
    obj = request.get("object")
    if not isinstance(kind, str) or not isinstance(obj, Mapping):
        return None
    if kind != "Pod" and not (options.templates and kind in _TEMPLATE_KINDS):
        return None
    if request.get("namespace") in options.excluded:
        return None
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return None
    return kind, obj


# A cluster's admission audit records a minute, in namespaces' worth.
_CLUSTER_AUDIT_SHARE = 10


class Webhook:
    def __init__(self, server: Server, index: Index, options: Options) -> None:
        self.server, self.index, self.options = server, index, options
        self.audit = AuditWriter(server, options.audit_queue)
        self.counts: dict[tuple[str, str], int] = {}
        self.audit_dropped = 0  # records not written: over audit_per_minute
        per_minute = options.audit_per_minute
        self._audit = TokenBuckets(per_minute / 60, per_minute)
        # A cluster's namespaces together: namespace names a caller varies cannot flood it.
        self._cluster_audit = TokenBuckets(
            _CLUSTER_AUDIT_SHARE * per_minute / 60, _CLUSTER_AUDIT_SHARE * per_minute
        )
        self._lock = threading.Lock()

    def _count(self, webhook: str, result: str) -> None:
        with self._lock:
            self.counts[(webhook, result)] = self.counts.get((webhook, result), 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def _secrets_for(
        self, cluster: str | None, namespace: str, view: NamespaceView
    ) -> Callable[[str], list[str]]:
        """The view's Secrets, but none whose name the sync found taken by someone else's
        Secret there: a pod must not be pointed at a Secret pullkeeper does not manage."""
        manager, found = self.server.sync, self.index.cluster(cluster)
        if manager is None or found is None:
            return view.secrets_for
        taken = manager.statuses.conflicts(found.id, namespace)
        if not taken:
            return view.secrets_for
        return lambda image: [n for n in view.secrets_for(image) if n not in taken]

    def _view(self, request: Mapping[str, Any], cluster: str | None) -> NamespaceView | str | None:
        """The namespace's view; None when the index is not there in time; a warning when
        the cluster is not one pullkeeper knows (nothing to add, nothing to enforce)."""
        if not self.index.ready.wait(self.options.decide_timeout):
            return None
        view = self.index.cluster(cluster)
        if view is None:
            which = f"no cluster {cluster!r}" if cluster else "not exactly one cluster"
            return (
                f"pullkeeper knows {which} (name the cluster at the end of the webhook's "
                "path: /admission/mutate/CLUSTER); passed"
            )
        return view.view(str(request.get("namespace") or ""))

    def mutate(self, request: Mapping[str, Any], cluster: str | None) -> dict[str, Any]:
        uid = request["uid"]
        target = _target(request, self.options)
        # A pod's spec cannot change after creation but for a few fields: only CREATE.
        if (
            target is None
            or request.get("subResource")
            or (target[0] == "Pod" and request.get("operation") != "CREATE")
        ):
            self._count("mutate", "passed")
            return _answer(uid)
        view = self._view(request, cluster)
        if view is None:
            self._count("mutate", "undecided")
            return _answer(uid, warnings=["pullkeeper could not decide in time; not mutated"])
        if isinstance(view, str):
            self._count("mutate", "passed")
            return _answer(uid, warnings=[view])
        kind, obj = target
        secrets_for = self._secrets_for(cluster, str(request.get("namespace") or ""), view)
        try:
            m = admission.mutate(kind, obj, view.policy, secrets_for)
        except admission.NotAPodSpec:
            self._count("mutate", "passed")
            return _answer(uid)
        except admission.Malformed as e:
            return self._malformed("mutate", uid, kind, e)
        if not m.patch:
            self._count("mutate", "unchanged")
            return _answer(uid)
        self._count("mutate", "patched")
        patch = base64.b64encode(m.as_json()).decode()
        return _answer(uid, patchType="JSONPatch", patch=patch)

    def validate(self, request: Mapping[str, Any], cluster: str | None) -> dict[str, Any]:
        uid = request["uid"]
        target = _target(request, self.options)
        if target is None:
            self._count("validate", "passed")
            return _answer(uid)
        view = self._view(request, cluster)
        if view is None:
            self._count("validate", "undecided")
            if self.options.validate_fail_closed:
                return _answer(uid, False, status=_status("pullkeeper could not decide in time"))
            return _answer(uid, warnings=["pullkeeper could not decide in time"])
        if isinstance(view, str):
            self._count("validate", "passed")
            return _answer(uid, warnings=[view])
        kind, obj = target
        try:
            findings = admission.validate(kind, obj, view.policy)
        except admission.NotAPodSpec:
            return _answer(uid)
        except admission.Malformed as e:
            return self._malformed("validate", uid, kind, e)
        if not findings:
            self._count("validate", "allowed")
            return _answer(uid)
        mode = view.policy.mode or imagepolicy.ENFORCE
        messages = [f"{f.where}: {f.violation.message}" for f in findings]
        # A dry run (`kubectl apply --dry-run=server`) admits nothing: no record of it, as
        # the webhook's `sideEffects: None` promises the API server.
        if not request.get("dryRun") and self._may_record(request, cluster):
            self._record(request, mode, messages, cluster)
        self._count("validate", {"enforce": "denied", "warn": "warned"}.get(mode, "audited"))
        if mode == imagepolicy.ENFORCE:
            return _answer(uid, False, status=_status("; ".join(messages)))
        if mode == imagepolicy.WARN:
            return _answer(uid, warnings=messages)
        return _answer(uid)

    def _malformed(self, webhook: str, uid: str, kind: str, e: Exception) -> dict[str, Any]:
        """A denial with 400 for an object whose fields have other types than Kubernetes
        gives them (the API server never sends one): said, not guessed at."""
        self._count(webhook, "malformed")
        status = {"code": 400, "reason": "BadRequest", "message": f"the {kind} is malformed: {e}"}
        return _answer(uid, False, status=status)

    def _may_record(self, request: Mapping[str, Any], cluster: str | None) -> bool:
        """Whether the namespace is within its audit records a minute: a pod denied in a
        loop (a controller retrying) must not flood the trail; what is over is counted."""
        view = self.index.cluster(cluster)
        key = (view.id if view else "", str(request.get("namespace") or ""))
        with self._lock:
            now = time.monotonic()
            if self._audit.take(key, now) and self._cluster_audit.take(key[0], now):
                return True
            self.audit_dropped += 1
            return False

    def _record(
        self, request: Mapping[str, Any], mode: str, messages: list[str], cluster: str | None
    ) -> None:
        """Queue the review's audit record: written by the writer's thread, never here."""
        obj = request.get("object") or {}
        meta = obj.get("metadata") or {} if isinstance(obj, Mapping) else {}
        kind = (request.get("kind") or {}).get("kind")
        action = {"enforce": "admission.deny", "warn": "admission.warn"}.get(
            mode, "admission.audit"
        )
        view = self.index.cluster(cluster)
        self.audit.put(
            Entry(
                cluster=view.name if view else None,
                namespace=str(request.get("namespace") or ""),
                username=_user(request),
                action=action,
                object_type=str(kind or "object").lower(),
                object_id=str(meta.get("name") or meta.get("generateName") or "")[:64],
                after={
                    "namespace": request.get("namespace"),
                    "operation": request.get("operation"),
                    "findings": messages,
                },
            )
        )

    @property
    def decides_in_memory(self) -> bool:
        """Whether a decision reads nothing but memory: the index is built, and the Secrets
        found taken are this replica's own (a follower reads the syncing one's from the
        store, at most once a poll, which must not be on the event loop)."""
        manager = self.server.sync
        return self.index.ready.is_set() and (manager is None or manager.leading)

    @property
    def audit_queued(self) -> int:
        return self.audit.queued

    @property
    def audit_overflow(self) -> int:
        return self.audit.overflow

    @property
    def audit_write_errors(self) -> int:
        return self.audit.write_errors

    @property
    def audit_lost(self) -> int:
        return self.audit.lost

    def stop(self) -> None:
        """Write the queued audit records, then stop the index."""
        self.audit.stop()
        self.index.stop()


def _user(request: Mapping[str, Any]) -> str:
    info = request.get("userInfo")
    name = info.get("username") if isinstance(info, Mapping) else None
    return str(name or "unknown")[:64]


def _status(message: str) -> dict[str, Any]:
    return {"code": 403, "reason": "Forbidden", "message": message}


def start(server: Server) -> Webhook:
    settings = server.settings
    index = Index(server, settings.admission_refresh_seconds, settings.admission_check_seconds)
    server.on_change.append(index.changed)
    index.start()
    options = Options(
        templates=settings.admission_templates,
        excluded=tuple(settings.admission_excluded_namespaces),
        decide_timeout=settings.admission_decide_timeout,
        validate_fail_closed=settings.admission_validate_failure_policy == "Fail",
        audit_per_minute=settings.admission_audit_per_minute,
        audit_queue=settings.admission_audit_queue,
    )
    hook = Webhook(server, index, options)
    hook.audit.start()
    server.admission = hook
    return hook
