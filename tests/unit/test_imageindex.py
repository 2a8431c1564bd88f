"""Building manifest lists and OCI indexes from image entries (core.imageindex)."""

from __future__ import annotations

import json

import pytest

from pullkeeper.core import oci
from pullkeeper.core.imageindex import Entry, Index, IndexBuildError, check_platform


def _entry(n: int, arch: str, media_type: str = oci.OCI_MANIFEST, variant: str = "") -> Entry:
    return Entry(
        image=f"registry.example/team/app:{arch}",
        repository="team/app",
        media_type=media_type,
        digest="sha256:" + f"{n:x}" * 64,
        size=400 + n,
        platform=oci.Platform("linux", arch, variant),
    )


def test_render_is_an_index_of_the_entries_in_order() -> None:
    index = Index(
        "registry.example/team/app:v1", (_entry(1, "amd64"), _entry(2, "arm64", variant="v8"))
    )
    doc = json.loads(index.render())
    assert doc == {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [
            {
                "mediaType": oci.OCI_MANIFEST,
                "size": 401,
                "digest": "sha256:" + "1" * 64,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": oci.OCI_MANIFEST,
                "size": 402,
                "digest": "sha256:" + "2" * 64,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }
    # What parse_manifest reads back is what was built.
    parsed = oci.parse_manifest(index.render())
    assert [str(p) for p in parsed.platforms] == ["linux/amd64", "linux/arm64/v8"]


def test_format_follows_the_entries_unless_asked() -> None:
    docker = (_entry(1, "amd64", oci.DOCKER_MANIFEST), _entry(2, "arm64", oci.DOCKER_MANIFEST))
    mixed = (_entry(1, "amd64", oci.DOCKER_MANIFEST), _entry(2, "arm64"))
    assert Index("r/a:v1", docker).media_type == oci.DOCKER_LIST
    assert Index("r/a:v1", mixed).media_type == oci.OCI_INDEX
    assert Index("r/a:v1", docker, "oci").media_type == oci.OCI_INDEX
    assert Index("r/a:v1", mixed, "docker").media_type == oci.DOCKER_LIST


def test_two_entries_for_one_platform_are_refused_after_normalization() -> None:
    # arm64/v8 is plain arm64 to containerd: a runtime could not tell the two apart.
    index = Index("r/a:v1", (_entry(1, "arm64"), _entry(2, "arm64", variant="v8")))
    with pytest.raises(IndexBuildError, match="both for linux/arm64"):
        index.render()
    with pytest.raises(IndexBuildError, match="has no images"):
        Index("r/a:v1").render()


def test_amend_replaces_an_entry_with_the_same_digest() -> None:
    first = Index("r/a:v1", (_entry(1, "amd64"),))
    moved = _entry(1, "amd64")
    grown = first.with_entries([_entry(2, "arm64"), moved])
    assert [e.digest for e in grown.entries] == [_entry(1, "x").digest, _entry(2, "x").digest]


def test_annotate_finds_by_image_or_digest_and_checks_the_platform() -> None:
    index = Index("r/a:v1", (_entry(1, "amd64"), _entry(2, "arm64")))
    by_digest = index.annotated(_entry(2, "x").digest, oci.Platform("linux", "arm", "v7"), ["f"])
    assert str(by_digest.entries[1].platform) == "linux/arm/v7"
    assert by_digest.entries[1].os_features == ("f",)
    assert by_digest.entries[0] == index.entries[0]
    with pytest.raises(IndexBuildError, match="is not in r/a:v1"):
        index.find("registry.example/team/other:v1")
    with pytest.raises(IndexBuildError, match="not a known os/arch combination"):
        index.annotated("registry.example/team/app:amd64", oci.Platform("windows", "s390x"), [])


def test_check_platform() -> None:
    check_platform(oci.Platform("windows", "amd64", "", "10.0.17763.1234"))
    with pytest.raises(IndexBuildError, match="unknown operating system 'beos'"):
        check_platform(oci.Platform("beos", "amd64"))


def test_saved_form_round_trips() -> None:
    entry = _entry(3, "amd64")
    index = Index("r/a:v1", (entry,), "docker").annotated(
        entry.digest, oci.Platform("windows", "amd64", "", "10.0.1"), ["win32k"]
    )
    assert Index.from_dict(json.loads(json.dumps(index.as_dict()))) == index
    platform = json.loads(index.render())["manifests"][0]["platform"]
    assert platform == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.1",
        "os.features": ["win32k"],
    }
