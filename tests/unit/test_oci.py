"""Manifests, indexes and platforms as the registry client reads them."""

from __future__ import annotations

import json

import pytest

from pullkeeper.core import oci
from pullkeeper.core.oci import ManifestFormatError, Platform

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("Linux/AArch64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/arm/6", Platform("linux", "arm", "v6")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("macos/arm64", Platform("darwin", "arm64")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_platforms_normalize_as_containerd(given: str, expected: Platform) -> None:
    assert Platform.parse(given) == expected


@pytest.mark.parametrize("bad", ["linux", "linux/", "/amd64", "a/b/c/d", ""])
def test_bad_platforms_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match="os/arch"):
        Platform.parse(bad)


def test_matching_ignores_spelling_but_not_variants() -> None:
    arm64 = Platform("linux", "arm64", "v8")
    assert arm64.matches(Platform.parse("linux/arm64"))
    assert not Platform("linux", "arm", "v6").matches(Platform.parse("linux/arm"))
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"


def test_an_index_with_platforms() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": oci.DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": oci.DOCKER_MANIFEST,
                    "digest": DIGEST,
                    "size": 7,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {"mediaType": oci.DOCKER_MANIFEST, "digest": DIGEST, "size": 7},
            ],
        }
    ).encode()
    m = oci.parse_manifest(body, "text/plain")
    assert (m.kind, m.media_type, m.is_index) == ("index", oci.DOCKER_LIST, True)
    assert [str(p) for p in m.platforms] == ["linux/arm64/v8"]


def test_an_image_manifest_and_its_config() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": oci.OCI_CONFIG, "digest": DIGEST, "size": 2},
            "layers": [{"mediaType": "x", "digest": DIGEST, "size": 3}],
        }
    ).encode()
    m = oci.parse_manifest(body, oci.OCI_MANIFEST)
    assert (m.kind, m.media_type, m.config, len(m.layers)) == (
        "image",
        oci.OCI_MANIFEST,
        oci.Descriptor(oci.OCI_CONFIG, DIGEST, 2),
        1,
    )
    config = json.dumps({"os": "linux", "architecture": "arm", "variant": "v7"}).encode()
    assert oci.config_platform(config) == Platform("linux", "arm", "v7")
    assert oci.config_platform(b"{}") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "schema 1"),
        (b'{"manifests": {}}', "no manifests list"),
        (b'{"manifests": [{"digest": "x"}]}', "no 'size'"),
        (b'{"schemaVersion": 2}', "unknown manifest type"),
    ],
)
def test_bad_manifests_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(ManifestFormatError, match=message):
        oci.parse_manifest(body)


def test_digests_are_verified_for_sha256_and_sha512_only() -> None:
    data = b"hello"
    assert oci.verify_digest(data, oci.sha256_digest(data))
    assert not oci.verify_digest(data + b"!", oci.sha256_digest(data))
    assert not oci.verify_digest(data, "md5:5d41402abc4b2a76b9719d911017c592")
