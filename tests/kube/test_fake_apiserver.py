"""The fake API server, driven by the two real clients: lightkube (as the product uses it) and
kubectl."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from lightkube import ApiError, Client, KubeConfig, operators
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import (
    Container,
    LocalObjectReference,
    PodSpec,
    PodTemplateSpec,
)
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Event, Namespace, Pod, Secret, ServiceAccount
from lightkube.types import PatchType

from tests.kube.conftest import Kubectl
from tests.kube.fake_apiserver import FakeApiServer


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, namespace: str = "default", **labels: str) -> Secret:
    return Secret(
        metadata=ObjectMeta(name=name, namespace=namespace, labels=labels or None),
        data={"k": b64(name)},
    )


def namespace(client: Client, name: str) -> None:
    client.create(Namespace(metadata=ObjectMeta(name=name)))


def api_error(excinfo: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return excinfo.value.status.code or 0, excinfo.value.status.reason or ""


# --- CRUD and metadata -----------------------------------------------------------------------


def test_create_stamps_metadata_and_get_returns_the_stored_object(kube_client: Client) -> None:
    first = kube_client.create(secret("one"))
    second = kube_client.create(secret("two"))
    assert first.metadata.uid and first.metadata.uid != second.metadata.uid
    assert int(second.metadata.resourceVersion) > int(first.metadata.resourceVersion)
    assert first.metadata.creationTimestamp is not None
    assert first.type == "Opaque"
    got = kube_client.get(Secret, "one", namespace="default")
    assert got.metadata.resourceVersion == first.metadata.resourceVersion
    assert got.data == {"k": b64("one")}


def test_create_conflicts_and_generate_name(kube_client: Client) -> None:
    kube_client.create(secret("dup"))
    with pytest.raises(ApiError) as e:
        kube_client.create(secret("dup"))
    assert api_error(e) == (409, "AlreadyExists")
    assert e.value.status.message == 'secrets "dup" already exists'
    made = kube_client.create(Secret(metadata=ObjectMeta(generateName="gen-", namespace="default")))
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == len("gen-") + 5


def test_namespaces_gate_and_cascade(kube_client: Client, fake_kube: FakeApiServer) -> None:
    with pytest.raises(ApiError) as e:
        kube_client.create(secret("s", namespace="team-a"))
    assert api_error(e) == (404, "NotFound")
    assert e.value.status.message == 'namespaces "team-a" not found'

    namespace(kube_client, "team-a")
    ns = kube_client.get(Namespace, "team-a")
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": "team-a"}
    assert kube_client.get(ServiceAccount, "default", namespace="team-a").metadata.uid
    kube_client.create(secret("s", namespace="team-a"))

    kube_client.delete(Namespace, "team-a")
    # Terminating first (tests/kube/test_agreement.py), then emptied and gone.
    assert kube_client.get(Namespace, "team-a").status.phase == "Terminating"
    deadline = time.monotonic() + 5
    while fake_kube.get("namespaces", "team-a") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_kube.objects("secrets", "team-a") == []
    assert fake_kube.objects("serviceaccounts", "team-a") == []
    with pytest.raises(ApiError) as e:
        kube_client.get(Namespace, "team-a")
    assert api_error(e) == (404, "NotFound")


def test_default_serviceaccount_can_be_turned_off(tmp_path: Path) -> None:
    with FakeApiServer(create_default_serviceaccount=False) as fake:
        client = Client(KubeConfig.from_file(fake.kubeconfig(tmp_path / "kc")))
        namespace(client, "bare")
        assert fake.objects("serviceaccounts", "bare") == []
        # ServiceAccount admission: a pod needs its account, as on a real cluster.
        pod = Pod(
            metadata=ObjectMeta(name="p", namespace="bare"),
            spec=PodSpec(containers=[Container(name="c", image="busybox")]),
        )
        with pytest.raises(ApiError) as e:
            client.create(pod)
        assert api_error(e) == (403, "Forbidden")
        assert 'serviceaccount "default" not found' in e.value.status.message


def test_replace_with_a_stale_resource_version_conflicts(kube_client: Client) -> None:
    stale = kube_client.create(secret("r"))
    fresh = kube_client.get(Secret, "r", namespace="default")
    fresh.data = {"k": b64("new")}
    updated = kube_client.replace(fresh)
    assert int(updated.metadata.resourceVersion) > int(stale.metadata.resourceVersion)
    stale.data = {"k": b64("lost")}
    with pytest.raises(ApiError) as e:
        kube_client.replace(stale)
    assert api_error(e) == (409, "Conflict")
    assert "the object has been modified" in e.value.status.message
    assert kube_client.get(Secret, "r", namespace="default").data == {"k": b64("new")}


def test_noop_write_keeps_the_resource_version(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    made = kube_client.create(secret("same"))
    before = fake_kube.resource_version
    again = kube_client.patch(Secret, "same", {"data": {"k": b64("same")}}, namespace="default")
    assert again.metadata.resourceVersion == made.metadata.resourceVersion
    assert fake_kube.resource_version == before


def test_delete_then_get_is_not_found(kube_client: Client, fake_kube: FakeApiServer) -> None:
    kube_client.create(secret("gone"))
    kube_client.delete(Secret, "gone", namespace="default")
    with pytest.raises(ApiError) as e:
        kube_client.get(Secret, "gone", namespace="default")
    assert api_error(e) == (404, "NotFound")
    assert fake_kube.count(verb="delete", resource="secrets") == 1


# --- selectors and pagination ----------------------------------------------------------------

SELECTOR_CASES = [
    ({"app": "web"}, ["a", "b"]),
    ({"app": operators.not_equal("web")}, ["c", "d"]),  # also matches d, which has no app
    ({"app": operators.in_(["web", "db"])}, ["a", "b", "c"]),
    ({"app": operators.not_in(["web"])}, ["c", "d"]),
    ({"tier": None}, ["b", "c"]),
    ({"tier": operators.not_exists()}, ["a", "d"]),
    ({"app": "web", "tier": "front"}, ["b"]),
]


@pytest.mark.parametrize(("labels", "expected"), SELECTOR_CASES)
def test_list_by_label_selector(
    kube_client: Client, labels: dict[str, object], expected: list[str]
) -> None:
    kube_client.create(secret("a", app="web"))
    kube_client.create(secret("b", app="web", tier="front"))
    kube_client.create(secret("c", app="db", tier="back"))
    kube_client.create(secret("d", other="x"))
    found = kube_client.list(Secret, namespace="default", labels=labels)  # type: ignore[arg-type]
    assert sorted(s.metadata.name for s in found) == expected


def test_selector_operators_over_raw_http(fake_kube: FakeApiServer) -> None:
    fake_kube.create("secrets", {"metadata": {"name": "a", "labels": {"app": "web"}}})
    fake_kube.create("secrets", {"metadata": {"name": "b", "labels": {"app": "db"}}})
    base = f"{fake_kube.url}/api/v1/namespaces/default/secrets"
    for selector, names in [("app==web", ["a"]), ("!app", []), ("app", ["a", "b"])]:
        body = httpx.get(base, params={"labelSelector": selector}).json()
        assert [i["metadata"]["name"] for i in body["items"]] == names, selector
    bad = httpx.get(base, params={"labelSelector": "app in ()"})
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"


def test_field_selectors_and_all_namespaces(kube_client: Client) -> None:
    namespace(kube_client, "team-a")
    kube_client.create(secret("x", namespace="team-a"))
    kube_client.create(secret("x"))
    kube_client.create(secret("y"))
    everywhere = kube_client.list(Secret, namespace="*")
    assert sorted((s.metadata.namespace, s.metadata.name) for s in everywhere) == [
        ("default", "x"),
        ("default", "y"),
        ("team-a", "x"),
    ]
    by_name = kube_client.list(Secret, namespace="*", fields={"metadata.name": "x"})
    assert sorted(s.metadata.namespace for s in by_name) == ["default", "team-a"]
    by_ns = kube_client.list(Secret, namespace="*", fields={"metadata.namespace": "team-a"})
    assert [s.metadata.name for s in by_ns] == ["x"]


def test_pagination_walks_a_consistent_snapshot(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    for i in range(5):
        kube_client.create(secret(f"s{i}"))
    fake_kube.reset_counts()
    listing = kube_client.list(Secret, namespace="default", chunk_size=2)
    names = []
    for s in listing:
        names.append(s.metadata.name)
        if len(names) == 1:
            kube_client.create(secret("s9"))  # after the snapshot: not in this listing
    assert names == [f"s{i}" for i in range(5)]
    assert fake_kube.count(verb="list", resource="secrets") == 3
    assert int(listing.resourceVersion) < fake_kube.resource_version
    expired = httpx.get(
        f"{fake_kube.url}/api/v1/namespaces/default/secrets",
        params={
            "limit": "1",
            "continue": base64.urlsafe_b64encode(b'{"rv":1,"id":"x","start":1}').decode(),
        },
    )
    assert expired.status_code == 410


# --- patches ---------------------------------------------------------------------------------


def _pod(name: str, secrets: list[str]) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace="default", labels={"a": "1"}),
        spec=PodSpec(
            containers=[
                Container(name="app", image="registry.example.com/app:v1"),
                Container(name="side", image="registry.example.com/side:v1"),
            ],
            imagePullSecrets=[LocalObjectReference(name=n) for n in secrets],
        ),
    )


def test_json_patch(kube_client: Client) -> None:
    kube_client.create(secret("j", app="web"))
    patched = kube_client.patch(
        Secret,
        "j",
        [
            {"op": "add", "path": "/data/extra", "value": b64("x")},
            {"op": "remove", "path": "/metadata/labels/app"},
            {"op": "test", "path": "/type", "value": "Opaque"},
        ],
        namespace="default",
        patch_type=PatchType.JSON,
    )
    assert patched.data == {"k": b64("j"), "extra": b64("x")}
    assert not patched.metadata.labels
    with pytest.raises(ApiError) as e:
        kube_client.patch(
            Secret,
            "j",
            [{"op": "test", "path": "/type", "value": "x"}],
            namespace="default",
            patch_type=PatchType.JSON,
        )
    assert api_error(e) == (422, "Invalid")


def test_merge_patch_replaces_lists_and_deletes_nulls(kube_client: Client) -> None:
    kube_client.create(_pod("m", ["one", "two"]))
    patched = kube_client.patch(
        Pod,
        "m",
        {
            "metadata": {"labels": {"a": None, "b": "2"}},
            "spec": {"imagePullSecrets": [{"name": "three"}]},
        },
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert patched.metadata.labels == {"b": "2"}
    assert [r.name for r in patched.spec.imagePullSecrets] == ["three"]


def test_strategic_merge_follows_the_field_tags(kube_client: Client) -> None:
    kube_client.create(_pod("s", ["one"]))
    patched = kube_client.patch(
        Pod,
        "s",
        {
            "metadata": {"annotations": {"x": "y"}},
            "spec": {
                "imagePullSecrets": [{"name": "two"}, {"name": "one"}],
                "containers": [{"name": "side", "image": "registry.example.com/side:v2"}],
            },
        },
        namespace="default",
        patch_type=PatchType.STRATEGIC,
    )
    assert patched.metadata.labels == {"a": "1"} and patched.metadata.annotations == {"x": "y"}
    assert [r.name for r in patched.spec.imagePullSecrets] == ["one", "two"]
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("app", "registry.example.com/app:v1"),
        ("side", "registry.example.com/side:v2"),
    ]
    removed = kube_client.patch(
        Pod,
        "s",
        {"spec": {"imagePullSecrets": [{"name": "one", "$patch": "delete"}]}},
        namespace="default",
        patch_type=PatchType.STRATEGIC,
    )
    assert [r.name for r in removed.spec.imagePullSecrets] == ["two"]

    # ServiceAccount.imagePullSecrets carries no merge tag in k8s.io/api: replaced, not merged.
    kube_client.patch(
        ServiceAccount,
        "default",
        {"imagePullSecrets": [{"name": "old"}]},
        namespace="default",
        patch_type=PatchType.STRATEGIC,
    )
    sa = kube_client.patch(
        ServiceAccount,
        "default",
        {"imagePullSecrets": [{"name": "new"}]},
        namespace="default",
        patch_type=PatchType.STRATEGIC,
    )
    assert [r.name for r in sa.imagePullSecrets] == ["new"]


def test_server_side_apply_creates_then_merges(kube_client: Client) -> None:
    config = Secret(
        metadata=ObjectMeta(name="ssa", namespace="default", labels={"a": "1"}),
        data={"k": b64("v1")},
    )
    made = kube_client.apply(config, field_manager="pullkeeper")
    assert made.data == {"k": b64("v1")}
    assert [(m.manager, m.operation) for m in made.metadata.managedFields] == [
        ("pullkeeper", "Apply")
    ]
    again = kube_client.apply(
        Secret(
            metadata=ObjectMeta(name="ssa", namespace="default", labels={"b": "2"}),
            data={"k": b64("v2")},
        ),
        field_manager="pullkeeper",
    )
    assert again.data == {"k": b64("v2")}
    assert again.metadata.labels == {"a": "1", "b": "2"}  # the simplification: nothing removed
    assert int(again.metadata.resourceVersion) > int(made.metadata.resourceVersion)


# --- validation and errors -------------------------------------------------------------------


def test_invalid_secrets(kube_client: Client, fake_kube: FakeApiServer) -> None:
    with pytest.raises(ApiError) as e:
        kube_client.create(secret("Bad_Name"))
    assert api_error(e) == (422, "Invalid")
    assert e.value.status.message.startswith('Secret "Bad_Name" is invalid: metadata.name: Invalid')
    assert e.value.status.details.causes[0].field == "metadata.name"

    docker = Secret(
        metadata=ObjectMeta(name="d", namespace="default"),
        type="kubernetes.io/dockerconfigjson",
        data={"other": b64("{}")},
    )
    with pytest.raises(ApiError) as e:
        kube_client.create(docker)
    assert api_error(e) == (422, "Invalid")
    assert "data[.dockerconfigjson]: Required value" in e.value.status.message

    not_json = Secret(
        metadata=ObjectMeta(name="d", namespace="default"),
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": b64("{")},
    )
    with pytest.raises(ApiError) as e:
        kube_client.create(not_json)
    assert api_error(e) == (422, "Invalid")

    # Undecodable base64 fails in decoding on a real server: 400, not 422.
    bad = Secret(metadata=ObjectMeta(name="b64", namespace="default"), data={"k": "***"})
    with pytest.raises(ApiError) as e:
        kube_client.create(bad)
    assert api_error(e) == (400, "BadRequest")
    assert fake_kube.objects("secrets") == []


def test_injected_failures_surface_with_their_status(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    fake_kube.inject("GET", r"/secrets$", 403)
    with pytest.raises(ApiError) as e:
        list(kube_client.list(Secret, namespace="default"))
    assert api_error(e) == (403, "Forbidden")
    assert 'cannot list resource "secrets" in API group "" in the namespace "default"' in (
        e.value.status.message
    )
    assert list(kube_client.list(Secret, namespace="default")) == []  # times=1: used up

    fake_kube.inject("POST", r"/secrets", 429, times=2)
    for _ in range(2):
        with pytest.raises(ApiError) as e:
            kube_client.create(secret("later"))
        assert api_error(e) == (429, "TooManyRequests")
        assert e.value.response.headers["Retry-After"] == "1"
    kube_client.create(secret("later"))
    assert fake_kube.count(verb="create", resource="secrets") == 3
    assert [r.injected for r in fake_kube.requests if r.verb == "create"] == [True, True, False]


def test_dropped_connection_is_a_transport_error(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    fake_kube.drop_connections(1, "GET", r"/namespaces/default$")
    with pytest.raises(Exception) as e:
        kube_client.get(Namespace, "default")
    assert not isinstance(e.value, ApiError)
    assert "disconnected" in str(e.value).lower() or "closed" in str(e.value).lower()
    assert kube_client.get(Namespace, "default").metadata.name == "default"


def test_bearer_token_is_checked(tmp_path: Path) -> None:
    with FakeApiServer(token="s3cret") as fake:
        good = Client(KubeConfig.from_file(fake.kubeconfig(tmp_path / "good")))
        assert [n.metadata.name for n in good.list(Namespace)] == ["default", "kube-system"]
        bad = Client(KubeConfig.from_file(fake.kubeconfig(tmp_path / "bad", token="nope")))
        with pytest.raises(ApiError) as e:
            list(bad.list(Namespace))
        assert api_error(e) == (401, "Unauthorized")


# --- watch -----------------------------------------------------------------------------------


def first_events(
    client: Client,
    n: int,
    within: float = 5.0,
    after_first: Callable[[], None] | None = None,
    **watch: object,
) -> list[tuple]:
    """The first `n` events of a lightkube watch, or fewer if `within` seconds pass first
    (lightkube re-watches forever, so a missing event must not hang the test).
    `after_first` runs once the first event has arrived."""
    seen: list[tuple] = []

    def consume() -> None:
        with contextlib.suppress(Exception):  # the fake stopping ends the stream
            for kind, obj in client.watch(Secret, namespace="default", server_timeout=1, **watch):
                seen.append((kind, obj.metadata.name, int(obj.metadata.resourceVersion)))
                if len(seen) == n:
                    return
                if len(seen) == 1 and after_first is not None:
                    after_first()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=within)
    return list(seen)


def test_watch_from_a_resource_version_replays_changes_in_order(kube_client: Client) -> None:
    kube_client.create(secret("before"))
    start = kube_client.get(Secret, "before", namespace="default").metadata.resourceVersion
    kube_client.create(secret("w"))
    kube_client.patch(Secret, "w", {"metadata": {"labels": {"v": "2"}}}, namespace="default")
    kube_client.delete(Secret, "w", namespace="default")
    seen = first_events(kube_client, 3, resource_version=start)
    assert [(k, n) for k, n, _ in seen] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert [rv for *_, rv in seen] == sorted(rv for *_, rv in seen)


def test_watch_streams_live_changes(kube_client: Client, fake_kube: FakeApiServer) -> None:
    fake_kube.create("secrets", {"metadata": {"name": "there", "labels": {"w": "1"}}})

    def after_the_listing() -> None:
        # The watch has sent what existed: what is created now can only arrive live.
        fake_kube.create("secrets", {"metadata": {"name": "other"}})
        fake_kube.create("secrets", {"metadata": {"name": "live", "labels": {"w": "1"}}})

    seen = first_events(kube_client, 2, after_first=after_the_listing, labels={"w": "1"})
    assert [(kind, name) for kind, name, _ in seen] == [("ADDED", "there"), ("ADDED", "live")]


def test_watch_from_a_compacted_version_is_gone(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    old = kube_client.create(secret("old")).metadata.resourceVersion
    kube_client.create(secret("newer"))
    fake_kube.compact()
    with pytest.raises(ApiError) as e:
        next(iter(kube_client.watch(Secret, namespace="default", resource_version=old)))
    assert api_error(e) == (410, "Expired")
    assert e.value.status.message.startswith(f"too old resource version: {old}")


def test_watch_ends_at_timeout_seconds_with_bookmarks(tmp_path: Path) -> None:
    # The fake's own limit is far beyond the wait below: a stream that ends on its own within
    # the wait ended at the request's timeoutSeconds.
    with FakeApiServer(bookmark_interval=0.1, max_watch_seconds=600) as fake:
        events: list[dict] = []
        encodings: list[str | None] = []
        ended = threading.Event()

        def read() -> None:
            with httpx.stream(
                "GET",
                f"{fake.url}/api/v1/namespaces/default/secrets",
                params={
                    "watch": "1",
                    "timeoutSeconds": "1",
                    "allowWatchBookmarks": "true",
                    "resourceVersion": str(fake.resource_version),
                },
                timeout=10,
            ) as response:
                encodings.append(response.headers.get("Transfer-Encoding"))
                events.extend(json.loads(line) for line in response.iter_lines() if line)
            ended.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert ended.wait(60), "the watch did not end at its timeoutSeconds"
        reader.join()
    assert encodings == ["chunked"]
    # Open for several bookmark intervals, not ended at the first event.
    assert len(events) > 1 and {e["type"] for e in events} == {"BOOKMARK"}, events
    assert events[0]["object"]["metadata"]["resourceVersion"] == str(fake.resource_version)


def test_watch_without_version_starts_with_existing_objects(fake_kube: FakeApiServer) -> None:
    fake_kube.create("secrets", {"metadata": {"name": "there"}})
    with httpx.stream(
        "GET",
        f"{fake_kube.url}/api/v1/secrets",
        params={"watch": "true", "timeoutSeconds": "1"},
        timeout=10,
    ) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "there")]


# --- the simulator ---------------------------------------------------------------------------


def _deployment(name: str, image: str, pull_secret: str | None = None) -> Deployment:
    return Deployment(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=DeploymentSpec(
            selector=LabelSelector(matchLabels={"app": name}),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels={"app": name}),
                spec=PodSpec(
                    containers=[Container(name="main", image=image)],
                    imagePullSecrets=[LocalObjectReference(name=pull_secret)]
                    if pull_secret
                    else None,
                ),
            ),
        ),
    )


def test_simulator_plays_a_rollout_and_its_pull_events(
    kube_client: Client, fake_kube: FakeApiServer
) -> None:
    def pull(image: str, namespace: str, secrets: list[str]) -> tuple[bool, str]:
        if "regcred" in secrets:
            return True, ""
        return False, "unauthorized: authentication required"

    sim = fake_kube.simulate(pull)
    kube_client.create(secret("regcred"))
    kube_client.create(_deployment("bad", "registry.example.com/app:v1"))
    kube_client.create(_deployment("good", "registry.example.com/app:v1", "regcred"))
    assert sim.wait_idle(5)

    bad = kube_client.get(Deployment, "bad", namespace="default")
    conditions = {c.type: (c.status, c.reason) for c in bad.status.conditions}
    assert conditions["Progressing"] == ("False", "ProgressDeadlineExceeded")
    assert conditions["Available"] == ("False", "MinimumReplicasUnavailable")
    assert bad.status.observedGeneration == 1 and bad.status.unavailableReplicas == 1
    (pod,) = kube_client.list(Pod, namespace="default", labels={"app": "bad"})
    # Deployment -> ReplicaSet -> pod, by controller references, as on a real cluster.
    (owner,) = pod.metadata.ownerReferences
    replicaset = kube_client.get(ReplicaSet, owner.name, namespace="default")
    assert (owner.kind, owner.uid, owner.controller) == (
        "ReplicaSet",
        replicaset.metadata.uid,
        True,
    )
    (top,) = replicaset.metadata.ownerReferences
    assert (top.kind, top.name, top.uid) == ("Deployment", "bad", bad.metadata.uid)
    assert pod.metadata.name.startswith(f"{replicaset.metadata.name}-")
    assert replicaset.metadata.name == f"bad-{pod.metadata.labels['pod-template-hash']}"
    assert pod.status.containerStatuses[0].state.waiting.reason == "ImagePullBackOff"
    events = sorted(
        kube_client.list(
            Event, namespace="default", fields={"involvedObject.name": pod.metadata.name}
        ),
        key=lambda e: int(e.metadata.resourceVersion),  # the order they were recorded in
    )
    assert [(e.reason, e.message) for e in events] == [
        ("Scheduled", f"Successfully assigned default/{pod.metadata.name} to fake-node"),
        ("Pulling", 'Pulling image "registry.example.com/app:v1"'),
        (
            "Failed",
            'Failed to pull image "registry.example.com/app:v1": '
            "unauthorized: authentication required",
        ),
        ("Failed", "Error: ErrImagePull"),
        ("BackOff", 'Back-off pulling image "registry.example.com/app:v1"'),
        ("Failed", "Error: ImagePullBackOff"),
    ]
    assert {e.source.component for e in events} == {"default-scheduler", "kubelet"}
    # The pod went through ErrImagePull (its message the pull's error) to ImagePullBackOff,
    # as a real kubelet's pod does; the good one's pull reports its size, as the real one's.
    waiting = pod.status.containerStatuses[0].state.waiting
    assert waiting.message == (
        'Back-off pulling image "registry.example.com/app:v1": '
        "ErrImagePull: unauthorized: authentication required"
    )
    reasons = [
        c.obj["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        for c in fake_kube.store.changes_after(fake_kube.store.compacted_rv) or []
        if c.resource == "pods"
        and c.obj["metadata"]["name"] == pod.metadata.name
        and c.obj.get("status", {}).get("containerStatuses")
    ]
    assert reasons == ["ErrImagePull", "ImagePullBackOff"]
    (good_pod,) = kube_client.list(Pod, namespace="default", labels={"app": "good"})
    pulled = kube_client.list(
        Event, namespace="default", fields={"involvedObject.name": good_pod.metadata.name}
    )
    assert [e.message for e in pulled if e.reason == "Pulled"] == [
        'Successfully pulled image "registry.example.com/app:v1" in 1ms (1ms including '
        "waiting). Image size: 1028746 bytes."
    ]

    good = kube_client.get(Deployment, "good", namespace="default")
    assert (good.status.readyReplicas, good.status.availableReplicas) == (1, 1)
    assert {c.type: c.status for c in good.status.conditions} == {
        "Available": "True",
        "Progressing": "True",
    }

    # A template change rolls out again: the ServiceAccount's pull secret now fills the pod.
    kube_client.patch(
        ServiceAccount, "default", {"imagePullSecrets": [{"name": "regcred"}]}, namespace="default"
    )
    kube_client.patch(
        Deployment,
        "bad",
        {"spec": {"template": {"metadata": {"annotations": {"restart": "1"}}}}},
        namespace="default",
    )
    assert sim.wait_idle(5)
    bad = kube_client.get(Deployment, "bad", namespace="default")
    assert bad.metadata.generation == 2 and bad.status.observedGeneration == 2
    assert bad.status.availableReplicas == 1
    (pod,) = kube_client.list(Pod, namespace="default", labels={"app": "bad"})
    assert [r.name for r in pod.spec.imagePullSecrets] == ["regcred"]


# --- kubectl ---------------------------------------------------------------------------------


def test_kubectl_get_namespaces_as_a_table(kubectl: Kubectl, fake_kube: FakeApiServer) -> None:
    fake_kube.create("namespaces", {"metadata": {"name": "team-a"}})
    out = kubectl("get", "ns").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "AGE"]
    assert [line.split()[:2] for line in out[1:]] == [
        ["default", "Active"],
        ["kube-system", "Active"],
        ["team-a", "Active"],
    ]


def test_kubectl_get_secrets_by_label_as_json(kubectl: Kubectl, fake_kube: FakeApiServer) -> None:
    fake_kube.create("namespaces", {"metadata": {"name": "x"}})
    fake_kube.create("secrets", {"metadata": {"name": "yes", "labels": {"k": "v"}}}, namespace="x")
    fake_kube.create("secrets", {"metadata": {"name": "no", "labels": {"k": "w"}}}, namespace="x")
    listed = json.loads(kubectl("get", "secrets", "-n", "x", "-l", "k=v", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["yes"]
    assert fake_kube.requests[-1].query["labelSelector"] == "k=v"


def test_kubectl_create_namespace_and_docker_registry_secret(
    kubectl: Kubectl, fake_kube: FakeApiServer
) -> None:
    assert kubectl("create", "namespace", "team-b").stdout.strip() == "namespace/team-b created"
    assert fake_kube.get("serviceaccounts", "default", "team-b") is not None
    kubectl(
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.example.com",
        "--docker-username=ci",
        "--docker-password=p:ss",
        "-n",
        "team-b",
    )
    stored = fake_kube.get("secrets", "regcred", "team-b")
    assert stored is not None and stored["type"] == "kubernetes.io/dockerconfigjson"
    payload = json.loads(base64.b64decode(stored["data"][".dockerconfigjson"]))
    assert payload["auths"]["registry.example.com"]["auth"] == b64("ci:p:ss")
    failed = kubectl("create", "namespace", "team-b", check=False)
    assert failed.returncode != 0 and "AlreadyExists" in failed.stderr


def test_kubectl_patch_serviceaccount_is_a_strategic_merge(
    kubectl: Kubectl, fake_kube: FakeApiServer
) -> None:
    kubectl("patch", "serviceaccount", "default", "-p", '{"imagePullSecrets":[{"name":"a"}]}')
    assert fake_kube.requests[-1].content_type == "application/strategic-merge-patch+json"
    sa = fake_kube.get("serviceaccounts", "default", "default")
    assert sa is not None and sa["imagePullSecrets"] == [{"name": "a"}]
    # Atomic list on a real server: a second patch replaces it rather than adding to it.
    kubectl("patch", "serviceaccount", "default", "-p", '{"imagePullSecrets":[{"name":"b"}]}')
    sa = fake_kube.get("serviceaccounts", "default", "default")
    assert sa is not None and sa["imagePullSecrets"] == [{"name": "b"}]


def test_kubectl_apply_and_delete_a_secret(
    kubectl: Kubectl, fake_kube: FakeApiServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "secret.yaml"
    for value, verb in (("one", "created"), ("two", "configured"), ("two", "unchanged")):
        manifest.write_text(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  namespace: default\n"
            f"data:\n  token: {b64(value)}\n"
        )
        assert kubectl("apply", "-f", str(manifest)).stdout.strip() == f"secret/applied {verb}"
        stored = fake_kube.get("secrets", "applied", "default")
        assert stored is not None and stored["data"]["token"] == b64(value)
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]

    manifest.write_text(manifest.read_text().replace(b64("two"), b64("three")))
    kubectl("apply", "--server-side", "-f", str(manifest))
    stored = fake_kube.get("secrets", "applied", "default")
    assert stored is not None and stored["data"]["token"] == b64("three")
    assert ("kubectl", "Apply") in {
        (m["manager"], m["operation"]) for m in stored["metadata"]["managedFields"]
    }

    assert kubectl("delete", "secret", "applied").stdout.strip() == 'secret "applied" deleted'
    assert fake_kube.objects("secrets", "default") == []
    missing = kubectl("get", "secret", "applied", check=False)
    assert missing.returncode != 0 and 'secrets "applied" not found' in missing.stderr


def test_kubectl_rollout_status_follows_the_simulator(
    kubectl: Kubectl, fake_kube: FakeApiServer, tmp_path: Path
) -> None:
    fake_kube.simulate(lambda image, ns, secrets: (image.endswith(":ok"), "manifest unknown"))
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: registry.example.com/web:ok}]}\n"
    )
    kubectl("apply", "-f", str(manifest))
    done = kubectl("rollout", "status", "deployment/web", "--timeout=10s")
    assert 'deployment "web" successfully rolled out' in done.stdout
    kubectl("set", "image", "deployment/web", "web=registry.example.com/web:broken")
    failed = kubectl("rollout", "status", "deployment/web", "--timeout=10s", check=False)
    assert failed.returncode != 0 and "exceeded its progress deadline" in failed.stderr
