"""The desired Secrets per namespace, and the writes that make a cluster match them."""

from __future__ import annotations

import base64
import json

from pullkeeper.core import delivery
from pullkeeper.core.delivery import Credential, Existing, Namespace

KEY = b"k" * 32


def _cred(cid: str, name: str, scope: str, **kw: str) -> Credential:
    return Credential(
        id=cid,
        name=name,
        scope=scope,
        server=kw.pop("server", "registry.example.com"),
        username="robot",
        password=kw.pop("password", "s3cret-value"),
        **kw,  # type: ignore[arg-type]
    )


NAMESPACES = [
    Namespace("shop", {delivery.PROJECT_LABEL: "web"}),
    Namespace("cart", {delivery.RANCHER_PROJECT_LABEL: "c-m-abc12:web"}),
    Namespace("blog", recorded_project="web"),
    Namespace("stats", {delivery.PROJECT_LABEL: "data"}, recorded_project="web"),
    Namespace("kube-system"),
    Namespace("quiet", {delivery.EXCLUDE_LABEL: "true"}),
    Namespace("other"),
]


def _where(desired: dict[tuple[str, str], delivery.Desired], name: str) -> list[str]:
    return sorted(ns for ns, n in desired if n == name)


def test_each_scope_reaches_its_namespaces() -> None:
    creds = [
        _cred("1", "only-shop", "namespace", namespace="shop"),
        _cred("2", "web-pull", "project", project="web"),
        _cred("3", "everyone", "cluster"),
    ]
    desired, collisions = delivery.desired_state(creds, NAMESPACES, ["web", "data"], KEY)
    assert collisions == []
    assert _where(desired, "only-shop") == ["shop"]
    # The label, then Rancher's label, then the recorded membership; a label naming
    # another project wins over what is recorded.
    assert _where(desired, "web-pull") == ["blog", "cart", "shop"]
    assert _where(desired, "everyone") == ["blog", "cart", "other", "shop", "stats"]


def test_a_label_naming_an_unknown_project_puts_the_namespace_in_none() -> None:
    ns = Namespace("x", {delivery.PROJECT_LABEL: "nope"}, recorded_project="web")
    assert delivery.project_of(ns, ["web"]) is None
    assert delivery.project_of(Namespace("y", {delivery.RANCHER_PROJECT_LABEL: "p-1"}), ["p-1"])


def test_the_secret_is_what_kubectl_would_write_with_our_labels() -> None:
    cred = _cred("7", "pull", "namespace", namespace="shop", server="quay.io", email="a@b.c")
    desired, _ = delivery.desired_state([cred], NAMESPACES, [], KEY)
    manifest = desired[("shop", "pull")].manifest()
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "pullkeeper",
        "pullkeeper.io/credential": "7",
    }
    payload = json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    auth = base64.b64encode(b"robot:s3cret-value").decode()
    assert payload == {
        "auths": {
            "quay.io": {
                "username": "robot",
                "password": "s3cret-value",
                "email": "a@b.c",
                "auth": auth,
            }
        }
    }
    assert "s3cret" not in repr(desired[("shop", "pull")]) and "s3cret" not in repr(cred)


def test_the_hash_changes_with_content_and_key_and_hides_the_password() -> None:
    a = _cred("1", "pull", "namespace", namespace="shop")
    b = _cred("1", "pull", "namespace", namespace="shop", password="another")
    ha = delivery.desired_state([a], NAMESPACES, [], KEY)[0][("shop", "pull")].content_hash
    hb = delivery.desired_state([b], NAMESPACES, [], KEY)[0][("shop", "pull")].content_hash
    hk = delivery.desired_state([a], NAMESPACES, [], b"x" * 32)[0][("shop", "pull")].content_hash
    assert len({ha, hb, hk}) == 3
    again = delivery.desired_state([a], NAMESPACES, [], KEY)[0][("shop", "pull")].content_hash
    assert again == ha


def test_the_narrowest_scope_wins_a_name_collision() -> None:
    creds = [
        _cred("c", "pull", "cluster"),
        _cred("n", "pull", "namespace", namespace="shop"),
    ]
    desired, collisions = delivery.desired_state(creds, NAMESPACES, ["web"], KEY)
    assert desired[("shop", "pull")].credential_id == "n"
    assert desired[("other", "pull")].credential_id == "c"
    assert [(c.namespace, c.kept, c.refused) for c in collisions] == [("shop", "n", "c")]


def test_custom_exclusions_replace_the_defaults() -> None:
    desired, _ = delivery.desired_state(
        [_cred("3", "everyone", "cluster")], NAMESPACES, [], KEY, excluded=["other"]
    )
    assert "kube-system" in _where(desired, "everyone")
    assert "other" not in _where(desired, "everyone")
    assert "quiet" not in _where(desired, "everyone")  # the label always excludes


def _existing(want: delivery.Desired, **kw: object) -> Existing:
    fields: dict[str, object] = {
        "namespace": want.namespace,
        "name": want.name,
        "managed": True,
        "credential_id": want.credential_id,
        "content_hash": want.content_hash,
    }
    fields.update(kw)
    return Existing(**fields)  # type: ignore[arg-type]


def test_plan_writes_only_what_differs() -> None:
    creds = [_cred("1", "a", "namespace", namespace="shop"), _cred("2", "b", "cluster")]
    desired, _ = delivery.desired_state(creds, NAMESPACES, [], KEY)
    existing = {slot: _existing(want) for slot, want in desired.items()}
    nothing = delivery.plan(desired, existing)
    assert nothing.writes == 0 and len(nothing.in_sync) == len(desired)

    stale = dict(existing)
    stale[("shop", "a")] = _existing(desired[("shop", "a")], content_hash="old")
    del stale[("other", "b")]
    stale[("other", "gone")] = Existing("other", "gone", True, "9", "h")
    stale[("other", "theirs")] = Existing("other", "theirs", False, None, None)
    p = delivery.plan(desired, stale)
    assert [d.name for d, _ in p.update] == ["a"]
    assert [(d.namespace, d.name) for d in p.create] == [("other", "b")]
    # Only managed Secrets are ever deleted.
    assert [(e.namespace, e.name) for e in p.delete] == [("other", "gone")]

    only_shop = delivery.plan(desired, stale, ["shop"])
    assert only_shop.writes == 1 and only_shop.update[0][0].namespace == "shop"


def test_existing_reads_a_secret_object() -> None:
    obj = {
        "metadata": {
            "name": "pull",
            "namespace": "shop",
            "resourceVersion": "42",
            "labels": {
                "app.kubernetes.io/managed-by": "pullkeeper",
                "pullkeeper.io/credential": "7",
            },
            "annotations": {"pullkeeper.io/content-hash": "hmac-sha256:ab"},
        }
    }
    e = Existing.from_object(obj)
    assert (e.managed, e.credential_id, e.content_hash, e.resource_version) == (
        True,
        "7",
        "hmac-sha256:ab",
        "42",
    )
    assert not Existing.from_object({"metadata": {"name": "x", "namespace": "y"}}).managed
