"""Default-registry rewrites and policy verdicts on images (core.imagepolicy)."""

from __future__ import annotations

import pytest

from pullkeeper.core.imagepolicy import judge, rewritten, unqualified
from pullkeeper.core.policy import Policy

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "default", "expected"),
    [
        ("nginx:1.25", "mirror.example.com", "mirror.example.com/library/nginx:1.25"),
        ("nginx", "mirror.example.com", "mirror.example.com/library/nginx"),
        (
            f"team/app@{DIGEST}",
            "harbor.example.com/dockerhub",
            f"harbor.example.com/dockerhub/team/app@{DIGEST}",
        ),
        (
            f"team/app:v1@{DIGEST}",
            "mirror:5000",
            f"mirror:5000/team/app:v1@{DIGEST}",
        ),
        ("a/b/c:v2", "mirror.example.com", "mirror.example.com/a/b/c:v2"),
        # Images that name their registry are left alone, Docker Hub written out included.
        ("docker.io/library/nginx", "mirror.example.com", None),
        ("index.docker.io/nginx", "mirror.example.com", None),
        ("quay.io/team/app", "mirror.example.com", None),
        ("localhost/app", "mirror.example.com", None),
        ("registry:5000/app", "mirror.example.com", None),
        ("[::1]:5000/app", "mirror.example.com", None),
        ("Registry/app", "mirror.example.com", None),  # a capital: distribution's domain rule
        ("nginx", None, None),
        ("Not Valid", "mirror.example.com", None),
    ],
)
def test_rewrite(image: str, default: str | None, expected: str | None) -> None:
    assert rewritten(image, default) == expected


def test_unqualified_follows_distributions_domain_rule() -> None:
    assert unqualified("nginx") and unqualified("team/app") and unqualified("a/b/c")
    assert not unqualified("my.registry/app") and not unqualified("host:1/app")


def _rules(image: str, **policy: object) -> list[str]:
    return [v.rule for v in judge(image, Policy(**policy))]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("nginx", True),  # docker.io, listed as index.docker.io
        ("docker.io/library/nginx", True),
        ("myregistry.io/app", True),
        ("myregistry.io:5000/app", False),  # another port is another registry
        ("myregistry.io.evil.com/app", False),
        ("evilmyregistry.io/app", False),
        ("eu.quay.example/app", True),
        ("quay.example/app", False),  # the wildcard does not cover the apex
        ("quay.io/team/app", True),
        ("quay.io/team", True),
        ("quay.io/teamwork/app", False),
        ("[::1]:5000/app", False),
    ],
)
def test_allowlist_on_the_normalized_reference(image: str, allowed: bool) -> None:
    allowlist = ("index.docker.io", "myregistry.io", "*.quay.example", "quay.io/team")
    assert (_rules(image, allowlist=allowlist) == []) is allowed


def test_an_empty_allowlist_allows_nothing_and_none_allows_everything() -> None:
    assert _rules("quay.io/x", allowlist=()) == ["allowlist"]
    assert _rules("quay.io/x") == []
    (v,) = judge("quay.io/x", Policy(allowlist=("docker.io",)))
    assert "quay.io/x" in v.message and "docker.io" in v.message


def test_digest_and_latest_rules() -> None:
    assert _rules("app:v1", require_digest=True) == ["digest"]
    assert _rules(f"app@{DIGEST}", require_digest=True) == []
    assert _rules("app", forbid_latest=True) == ["latest"]
    assert _rules("app:latest", forbid_latest=True) == ["latest"]
    assert _rules("app:v1", forbid_latest=True) == []
    assert _rules(f"app:latest@{DIGEST}", forbid_latest=True) == []  # pinned by digest
    assert _rules("app", forbid_latest=True, require_digest=True) == ["digest", "latest"]
    assert _rules("UPPER/app") == []  # a registry host "UPPER" is valid
    assert _rules("bad image") == ["invalid"]
