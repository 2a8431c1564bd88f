"""The REST semantics of the real server over the store: create, get, list, update, patch,
delete, with the metadata, conflicts, admission and cascades a client can observe.

Everything here is independent of HTTP; fake_apiserver.py maps requests onto these calls.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets as _random
import threading
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import yaml

from tests.kube import defaults, errors, patching, validation
from tests.kube.errors import ApiFailure
from tests.kube.resources import BY_NAME, Resource
from tests.kube.selectors import field_matcher, label_matcher
from tests.kube.store import Store

Obj = dict[str, Any]

# generateName suffixes use the real server's alphabet (no vowels, no confusable digits).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Fields a client may send but only the server sets.
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "generation", "selfLink")

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "unsupported",
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(n: int = 5) -> str:
    return "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(n))


def _without_volatile(obj: Obj) -> Obj:
    """The object as compared for no-op detection: a write that changes only its resourceVersion
    or managedFields is no write (the real server skips those too)."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return out


class Api:
    def __init__(
        self,
        store: Store,
        create_default_serviceaccount: bool = True,
        list_cache_size: int = 64,
        namespace_grace: float = 0.5,
    ) -> None:
        self.store = store
        self.create_default_serviceaccount = create_default_serviceaccount
        # A deleted namespace is Terminating this long before it is emptied and gone (the
        # namespace controller waits 5 s; tests need not).
        self.namespace_grace = namespace_grace
        # Snapshots for limit/continue: the pages of one LIST come from one moment, as on etcd.
        self._snapshots: OrderedDict[str, list[Obj]] = OrderedDict()
        self._snapshot_limit = list_cache_size
        self._snapshot_lock = threading.Lock()

    # --- reads ----------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self.store.get(res.plural, namespace, name)
        if obj is None:
            raise errors.not_found(res, name)
        return obj

    def list(self, res: Resource, namespace: str | None, query: dict[str, str]) -> Obj:
        token = query.get("continue")
        limit = int(query.get("limit") or 0)
        if limit < 0:
            raise errors.bad_request("limit must be a non-negative integer")
        if token:
            rv, snap_id, offset = self._decode_continue(token)
            with self._snapshot_lock:
                items = self._snapshots.get(snap_id)
            if items is None:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                )
        else:
            with self.store.cond:
                rv = self.store.rv
                items = self._matching(res, namespace, query)
            offset, snap_id = 0, ""
        page = items[offset : offset + limit] if limit else items[offset:]
        meta: Obj = {"resourceVersion": str(rv)}
        rest = len(items) - offset - len(page)
        if rest > 0:
            if not snap_id:
                snap_id = uuid.uuid4().hex
                with self._snapshot_lock:
                    self._snapshots[snap_id] = items
                    while len(self._snapshots) > self._snapshot_limit:
                        self._snapshots.popitem(last=False)
            meta["continue"] = self._encode_continue(rv, snap_id, offset + len(page))
            meta["remainingItemCount"] = rest
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": [self._with_type(res, o) for o in page],
        }

    def _matching(self, res: Resource, namespace: str | None, query: dict[str, str]) -> list[Obj]:
        labels = label_matcher(query.get("labelSelector"))
        fields = field_matcher(res.plural, query.get("fieldSelector"))
        return [
            o
            for o in self.store.list(res.plural, namespace)
            if labels(o["metadata"].get("labels") or {}) and fields(o)
        ]

    @staticmethod
    def _encode_continue(rv: int, snap_id: str, offset: int) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "id": snap_id, "start": offset})
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, str, int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return int(data["rv"]), str(data["id"]), int(data["start"])
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request(f"continue key is not valid: {token}") from None

    @staticmethod
    def _with_type(res: Resource, obj: Obj) -> Obj:
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
        return obj

    # --- writes ---------------------------------------------------------------------------

    def _check_namespace(self, res: Resource, namespace: str, name: str = "") -> None:
        if not res.namespaced:
            return
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise errors.not_found(BY_NAME["namespaces"], namespace)
        if name and ns["metadata"].get("deletionTimestamp"):
            raise errors.terminating(res, name, namespace)

    def _check_type(self, res: Resource, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request was not a {res.kind} object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind and kind != res.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
            )
        if api_version and api_version != res.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({res.api_version})"
            )
        body["kind"], body["apiVersion"] = res.kind, res.api_version
        if not isinstance(body.setdefault("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        return body

    def _managed(self, obj: Obj, manager: str, operation: str, fields_of: Obj) -> None:
        entries = [
            e
            for e in obj["metadata"].get("managedFields") or []
            if (e.get("manager"), e.get("operation")) != (manager, operation)
        ]
        previous = next(
            (
                e
                for e in obj["metadata"].get("managedFields") or []
                if (e.get("manager"), e.get("operation")) == (manager, operation)
            ),
            None,
        )
        fields = patching.field_set(
            {k: v for k, v in fields_of.items() if k not in ("kind", "apiVersion")}
        )
        if previous is not None and operation == "Update":
            fields = patching.merge_patch(previous.get("fieldsV1") or {}, fields)
        entries.append(
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": obj["apiVersion"],
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
        )
        obj["metadata"]["managedFields"] = entries

    def create(
        self,
        res: Resource,
        namespace: str,
        body: Any,
        manager: str,
        dry_run: bool = False,
        operation: str = "Update",
    ) -> Obj:
        obj = self._check_type(res, copy.deepcopy(body))
        meta = obj["metadata"]
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiFailure(500, "resourceVersion should not be set on objects to be created")
        validation.check_decodable(res, obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{random_suffix()}"
        for field in _SYSTEM_META:
            meta.pop(field, None)
        meta.pop("managedFields", None)
        defaults.apply(res, obj)
        if res.plural == "deployments":
            obj["status"] = {}
        elif res.plural == "replicasets":
            obj["status"] = {"replicas": 0}  # not omitted when zero, unlike the rest
        validation.validate(res, obj)
        name = meta["name"]
        with self.store.cond:
            self._check_namespace(res, namespace, name)
            if self.store.get(res.plural, namespace if res.namespaced else "", name) is not None:
                raise errors.already_exists(res, name)
            if res.plural == "pods":
                self._admit_pod(obj)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if res.has_generation:
                meta["generation"] = 1
            self._managed(obj, manager, operation, body if isinstance(body, dict) else {})
            if dry_run:
                meta["resourceVersion"] = ""
                return obj
            stored = self.store.write(res.plural, obj)
            if res.plural == "namespaces" and self.create_default_serviceaccount:
                self._write_default_serviceaccount(name)
            return stored

    def _write_default_serviceaccount(self, namespace: str) -> None:
        sa: Obj = {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": {
                "name": "default",
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
            },
        }
        self.store.write("serviceaccounts", sa)

    def _admit_pod(self, pod: Obj) -> None:
        """The ServiceAccount admission plugin: the account must exist; a pod without pull
        secrets gets the account's."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        account = spec.get("serviceAccountName") or "default"
        sa = self.store.get("serviceaccounts", meta["namespace"], account)
        if sa is None:
            raise ApiFailure(
                403,
                f'pods "{meta["name"]}" is forbidden: error looking up service account '
                f'{meta["namespace"]}/{account}: serviceaccount "{account}" not found',
                details={"name": meta["name"], "kind": "pods"},
            )
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = copy.deepcopy(sa["imagePullSecrets"])

    def update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Any,
        manager: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        new = self._check_type(res, copy.deepcopy(body))
        validation.check_decodable(res, new)
        if new["metadata"].get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({new['metadata']['name']}) does not match the name on "
                f"the URL ({name})"
            )
        with self.store.cond:
            old = self.get(res, namespace, name)
            sent_rv = new["metadata"].get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name)
            return self._commit(res, old, new, manager, "Update", body, subresource, dry_run)

    def _commit(
        self,
        res: Resource,
        old: Obj,
        new: Obj,
        manager: str,
        operation: str,
        fields_of: Any,
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        """Write `new` over `old`, keeping what a client cannot change; no-op writes are skipped."""
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            new = merged
        elif "status" in res.subresources:
            new["status"] = copy.deepcopy(old.get("status", {}))
        meta, old_meta = new["metadata"], old["metadata"]
        meta["name"] = old_meta["name"]
        if res.namespaced:
            if meta.get("namespace") not in (None, "", old_meta["namespace"]):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = old_meta["namespace"]
        for field in _SYSTEM_META:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["managedFields"] = copy.deepcopy(old_meta.get("managedFields") or [])
        meta["resourceVersion"] = old_meta["resourceVersion"]
        defaults.apply(res, new)
        validation.validate(res, new, old)
        if res.has_generation and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        self._managed(new, manager, operation, fields_of if isinstance(fields_of, dict) else {})
        if _without_volatile(new) == _without_volatile(old):
            return old
        if dry_run:
            return new
        return self.store.write(res.plural, new)

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        manager: str | None,
        subresource: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Obj:
        kind = PATCH_TYPES.get(content_type.split(";", maxsplit=1)[0].strip().lower())
        if kind is None or kind == "unsupported":
            raise ApiFailure(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(t for t, k in PATCH_TYPES.items() if k != 'unsupported')}",
            )
        try:
            patch = yaml.safe_load(raw) if kind == "apply" else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"error decoding patch: {e}") from None
        if kind == "apply":
            if not manager:
                raise errors.bad_request(
                    "PATCH requests must have a fieldManager when using the apply content type"
                )
            return self._apply(res, namespace, name, patch, manager, subresource, dry_run)
        manager = manager or "unknown"
        with self.store.cond:
            old = self.get(res, namespace, name)
            if kind == "json":
                new = patching.json_patch(old, patch)
            elif not isinstance(patch, dict):
                raise errors.bad_request("the patch is not a JSON object")
            elif kind == "merge":
                new = patching.merge_patch(old, patch)
            else:
                new = patching.strategic_merge(old, patch, res.kind)
            return self._patched(res, old, new, manager, patch, subresource, dry_run)

    def _patched(
        self,
        res: Resource,
        old: Obj,
        new: Any,
        manager: str,
        fields_of: Any,
        subresource: str | None,
        dry_run: bool,
        operation: str = "Update",
    ) -> Obj:
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise ApiFailure(422, f'{res.kind} "{old["metadata"]["name"]}" is invalid: metadata')
        meta, old_meta = new["metadata"], old["metadata"]
        for field in ("name", "uid"):
            if meta.get(field) != old_meta.get(field):
                raise errors.invalid(
                    res,
                    old_meta["name"],
                    [
                        (
                            f"metadata.{field}",
                            "FieldValueInvalid",
                            f'Invalid value: "{meta.get(field)}": field is immutable',
                        )
                    ],
                )
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old_meta["resourceVersion"]:
            raise errors.conflict(res, old_meta["name"])
        validation.check_decodable(res, new)
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        return self._commit(res, old, new, manager, operation, fields_of, subresource, dry_run)

    def _apply(
        self,
        res: Resource,
        namespace: str,
        name: str,
        config: Any,
        manager: str,
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        """Server-side apply, simplified: create from the configuration, or strategic-merge it
        into the live object. Fields the manager applied before and now leaves out are kept,
        and no field conflicts between managers are detected (`force` changes nothing)."""
        config = self._check_type(res, copy.deepcopy(config))
        if config["metadata"].get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({config['metadata']['name']}) does not match the name "
                f"on the URL ({name})"
            )
        config["metadata"]["name"] = name
        with self.store.cond:
            old = self.store.get(res.plural, namespace if res.namespaced else "", name)
            if old is None:
                config["metadata"].pop("resourceVersion", None)
                return self.create(res, namespace, config, manager, dry_run, operation="Apply")
            new = patching.strategic_merge(old, config, res.kind)
            return self._patched(res, old, new, manager, config, subresource, dry_run, "Apply")

    def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        options: Any = None,
        dry_run: bool = False,
    ) -> Obj:
        with self.store.cond:
            old = self.get(res, namespace, name)
            pre = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise errors.conflict(
                    res,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {old['metadata']['uid']}",
                )
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != old["metadata"]["resourceVersion"]
            ):
                raise errors.conflict(
                    res,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{old['metadata']['resourceVersion']}",
                )
            if dry_run:
                return old
            if res.plural == "namespaces":
                return self._terminate(old)
            gone = self.store.delete(res.plural, namespace, name)
            assert gone is not None
            self._collect_garbage(namespace, gone["metadata"]["uid"])
            return old if res.plural == "namespaces" else gone

    def delete_collection(
        self, res: Resource, namespace: str | None, query: dict[str, str], dry_run: bool = False
    ) -> Obj:
        with self.store.cond:
            listed = self.list(res, namespace, {**query, "limit": "0", "continue": ""})
            if not dry_run:
                for obj in listed["items"]:
                    meta = obj["metadata"]
                    self.delete(res, meta.get("namespace", ""), meta["name"])
            return listed

    def _terminate(self, ns: Obj) -> Obj:
        """A deleted namespace is Terminating (creates in it are refused) until the namespace
        controller has emptied it; deleting it again changes nothing."""
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        ns["metadata"]["deletionTimestamp"] = now()
        ns["status"] = {"phase": "Terminating"}
        stored = self.store.write("namespaces", ns)
        name = ns["metadata"]["name"]
        gone = threading.Timer(self.namespace_grace, self._finish_namespace, args=(name,))
        gone.daemon = True
        gone.start()
        return stored

    def _finish_namespace(self, name: str) -> None:
        with self.store.cond:
            ns = self.store.get("namespaces", "", name)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                return
            self._empty_namespace(name)
            self.store.delete("namespaces", "", name)

    def _empty_namespace(self, namespace: str) -> None:
        """What the namespace controller does before the namespace goes: delete its objects."""
        for res in BY_NAME.values():
            if res.namespaced:
                for obj in self.store.list(res.plural, namespace):
                    self.store.delete(res.plural, namespace, obj["metadata"]["name"])

    def _collect_garbage(self, namespace: str, owner_uid: str) -> None:
        """The garbage collector: dependents of a deleted owner go too (at once, not later)."""
        if not namespace:
            return
        for res in BY_NAME.values():
            if not res.namespaced:
                continue
            for obj in self.store.list(res.plural, namespace):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == owner_uid for o in owners):
                    gone = self.store.delete(res.plural, namespace, obj["metadata"]["name"])
                    if gone is not None:
                        self._collect_garbage(namespace, gone["metadata"]["uid"])
