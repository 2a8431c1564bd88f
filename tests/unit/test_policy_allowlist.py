"""Allowlist matching on normalized references, never on string prefixes."""

from __future__ import annotations

import pytest

from pullkeeper.core.policy import Policy, allowlist_admits, policy_warnings
from pullkeeper.core.reference import parse_normalized_named

LIST = ("myregistry.io", "*.corp.example.com", "harbor.example.com:8443/team", "docker.io")


@pytest.mark.parametrize(
    ("image", "admitted"),
    [
        ("myregistry.io/app:v1", True),
        ("MyRegistry.io/app", True),
        ("myregistry.io.evil.com/app", False),
        ("myregistry.io:5000/app", False),
        ("a.corp.example.com/x", True),
        ("a.b.corp.example.com/x", True),
        ("corp.example.com/x", False),
        ("evilcorp.example.com/x", False),
        ("harbor.example.com:8443/team/app", True),
        ("harbor.example.com:8443/team", True),
        ("harbor.example.com:8443/teamx/app", False),
        ("harbor.example.com/team/app", False),
        ("nginx", True),
        ("index.docker.io/library/nginx", True),
        ("quay.io/x/y", False),
    ],
)
def test_allowlist_matching(image: str, admitted: bool) -> None:
    ref = parse_normalized_named(image)
    assert allowlist_admits(LIST, ref.domain, ref.path) is admitted


def test_index_docker_io_on_the_list_admits_docker_hub_images() -> None:
    ref = parse_normalized_named("nginx")
    assert allowlist_admits(("index.docker.io",), ref.domain, ref.path)
    assert not allowlist_admits((), ref.domain, ref.path)


HUB = "Docker Hub is not on the allowlist"
DEFAULT = "the default registry {} is not on the allowlist"


@pytest.mark.parametrize(
    ("default_registry", "allowlist", "warned"),
    [
        (None, None, None),
        (None, ("quay.io",), HUB),
        (None, ("quay.io", "docker.io"), None),
        (None, ("docker.io/library",), None),
        # Unqualified images go to the default registry first: that one must be allowed.
        ("mirror.example.com", ("quay.io",), DEFAULT.format("mirror.example.com")),
        ("mirror.example.com", ("quay.io", "mirror.example.com"), None),
        ("mirror.example.com", ("*.example.com",), None),
        ("harbor.example.com/dockerhub", ("harbor.example.com",), None),
        ("harbor.example.com/dockerhub", ("harbor.example.com/dockerhub",), None),
        (
            "harbor.example.com/dockerhub",
            ("harbor.example.com/other",),
            DEFAULT.format("harbor.example.com/dockerhub"),
        ),
        ("mirror.example.com", ("docker.io",), DEFAULT.format("mirror.example.com")),
        ("mirror.example.com", None, None),  # no allowlist: nothing is refused
    ],
)
def test_policy_warnings(
    default_registry: str | None, allowlist: tuple[str, ...] | None, warned: str | None
) -> None:
    found = policy_warnings(Policy(default_registry=default_registry, allowlist=allowlist))
    if warned is None:
        assert found == []
    else:
        (only,) = found
        assert only.startswith(warned), only
