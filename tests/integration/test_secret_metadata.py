"""`secret create` and `secret import` with --label and --annotation (kubectl's "customize
the Secret before storing it", seed 002): checked as the real API server checks them, and
what they print is what the real API server stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pullkeeper.core.names import InvalidName, validate_annotations, validate_labels
from tests.kube.real import RealCluster

from .conftest import assert_one_line_error, b64, isolated_env, pk, pk_ok

pytestmark = pytest.mark.integration

CREATE = ("secret", "create", "docker-registry", "regcred", "--docker-username=u")

# Keys: every rule of IsQualifiedName, and the edges of each.
KEYS = [
    "app",
    "App.Name_1",
    "example.com/tier",
    "a" * 63,
    "a" * 64,
    "x/" + "a" * 63,
    ("a" * 63 + ".") * 3 + "a" * 61 + "/k",  # a 253-character prefix
    ("a" * 63 + ".") * 3 + "a" * 62 + "/k",  # 254
    "Example.com/tier",  # an upper-case prefix: not a subdomain (annotations lower-case it)
    "bad key",
    "-app",
    "app-",
    "",
    "/app",
    "example.com/",
    "a/b/c",
    "ünïcode",
    "example_com/app",
]
VALUES = ["", "web", "v1.2_3-x", "a" * 63, "a" * 64, "b c", "-web", "web.", "ü"]


def _allowed(validate: Any, pairs: dict[str, str]) -> str | None:
    """None when our rules accept pairs, else our message."""
    try:
        validate(pairs)
    except InvalidName as e:
        return str(e)
    return None


def _server_says(real_kube: RealCluster, metadata: dict[str, Any]) -> str | None:
    """None when the real API server would store a Secret with this metadata (a dry run),
    else its message."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "labelled", **metadata},
        "type": "Opaque",
    }
    answer = real_kube.call("POST", "/api/v1/namespaces/default/secrets?dryRun=All", json=secret)
    if answer.status_code == 201:
        return None
    assert answer.status_code == 422, answer.text
    message: str = answer.json()["message"]
    return message


@pytest.mark.parametrize("key", KEYS)
def test_label_and_annotation_keys_as_the_api_server_checks_them(
    real_kube: RealCluster, key: str
) -> None:
    for field, validate in (("labels", validate_labels), ("annotations", validate_annotations)):
        ours = _allowed(validate, {key: "v"})
        theirs = _server_says(real_kube, {field: {key: "v"}})
        assert (ours is None) == (theirs is None), (field, ours, theirs)
        if ours is not None:
            assert theirs is not None and ours in theirs, (ours, theirs)


@pytest.mark.parametrize("value", VALUES)
def test_label_values_as_the_api_server_checks_them(real_kube: RealCluster, value: str) -> None:
    ours = _allowed(validate_labels, {"app": value})
    theirs = _server_says(real_kube, {"labels": {"app": value}})
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is not None:
        assert theirs is not None and ours in theirs, (ours, theirs)
    # Annotation values are free text.
    assert _server_says(real_kube, {"annotations": {"note": value}}) is None
    assert _allowed(validate_annotations, {"note": value}) is None


@pytest.mark.parametrize("size", [256 * 1024, 256 * 1024 + 1])
def test_annotations_all_together_as_the_api_server_counts_them(
    real_kube: RealCluster, size: int
) -> None:
    annotations = {"a": "x" * (size // 2 - 1), "b": "y" * (size - size // 2 - 1)}
    ours = _allowed(validate_annotations, annotations)
    theirs = _server_says(real_kube, {"annotations": annotations})
    assert (ours is None) == (theirs is None) == (size <= 256 * 1024), (ours, theirs)
    if ours is not None:
        assert theirs is not None and ours in theirs, (ours, theirs)


def _applied(real_kube: RealCluster, printed: str) -> dict[str, Any]:
    """What the real API server stores from a printed Secret, by the real kubectl."""
    real_kube.create("namespaces", {"metadata": {"name": "team-a"}})
    real_kube.kubectl("create", "-f", "-", input=printed)
    stored = real_kube.get("secrets", "regcred", "team-a")
    assert stored is not None
    return stored


def test_create_with_labels_and_annotations_is_stored_as_printed(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    args = [
        *CREATE,
        "--password-stdin",
        "-n",
        "team-a",
        "--label=app=web",
        "--label=example.com/tier=",
        "--annotation=Owner.example.com/note=Hello, world: a=b",
        "--annotation=ticket=OPS-42",
    ]
    printed = pk_ok(*args, stdin="s3cret-Lbl", env=isolated_env(tmp_path / "home"))
    secret = json.loads(pk_ok(*args, "-o", "json", stdin="s3cret-Lbl").stdout)
    labels = {"app": "web", "example.com/tier": ""}
    annotations = {"Owner.example.com/note": "Hello, world: a=b", "ticket": "OPS-42"}
    assert secret["metadata"] == {
        "name": "regcred",
        "namespace": "team-a",
        "creationTimestamp": None,
        "labels": labels,
        "annotations": annotations,
    }
    stored = _applied(real_kube, printed.stdout)
    assert stored["metadata"]["labels"] == labels
    assert stored["metadata"]["annotations"] == annotations
    assert stored["data"] == secret["data"]


def test_import_with_labels_and_annotations_is_stored_as_printed(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"quay.io": {"auth": b64("u:s3cret-Imp")}}}))
    printed = pk_ok(
        "secret",
        "import",
        str(config),
        "-n",
        "team-a",
        "--label",
        "app=web",
        "--annotation",
        "from=docker login",
        env=isolated_env(tmp_path / "home"),
    )
    stored = _applied(real_kube, printed.stdout)
    assert stored["metadata"]["labels"] == {"app": "web"}
    assert stored["metadata"]["annotations"] == {"from": "docker login"}


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        ("--label=bad key=v", 'error: metadata.labels: Invalid value: "bad key": name part must'),
        ("--label=app=b c", 'error: metadata.labels: Invalid value: "b c": a valid label must'),
        ("--annotation=a/b/c=v", 'error: metadata.annotations: Invalid value: "a/b/c": a qual'),
        ("--label=app", "error: --label 'app': not KEY=VALUE"),
        ("--annotation=", "error: --annotation '': not KEY=VALUE"),
    ],
)
def test_bad_labels_and_annotations_are_one_line_errors(
    tmp_path: Path, flag: str, says: str
) -> None:
    for args in (
        (*CREATE, "--password-stdin", flag),
        ("secret", "import", str(tmp_path / "never-read.json"), flag),
    ):
        result = pk(*args, stdin="s3cret-Bad", env=isolated_env(tmp_path / "home"))
        line = assert_one_line_error(result)
        assert line.startswith(says), result.describe()
        assert result.out == b""


def test_a_key_given_twice_is_an_error(tmp_path: Path) -> None:
    args = (*CREATE, "--password-stdin", "--label=app=a", "--label=app=b")
    line = assert_one_line_error(pk(*args, stdin="p", env=isolated_env(tmp_path / "home")))
    assert line == "error: --label 'app' given twice; give each key once"
