"""The kubelet's credential matching, case by case (pkg/credentialprovider/keyring.go)."""

from __future__ import annotations

import pytest

from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go.url import URLError
from pullkeeper.core.keyring import (
    Keyring,
    is_default_registry_match,
    lookup_union,
    matches,
    normalize_key,
)


@pytest.mark.parametrize(
    ("registry", "key"),
    [
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("index.docker.io", "index.docker.io"),
        ("http://quay.io", "quay.io"),
        ("https://quay.io/", "quay.io"),
        ("quay.io/v2/", "quay.io"),
        ("quay.io/v2/team/app", "quay.io/team/app"),
        ("quay.io/v1/team", "quay.io/team"),
        ("quay.io/v3/team", "quay.io/v3/team"),
        ("quay.io/team/v2/", "quay.io/team/v2/"),
        ("localhost:5000", "localhost:5000"),
        ("https://registry.example.com:443/v1/", "registry.example.com:443"),
        ("Registry.Example.COM", "Registry.Example.COM"),
        ("[::1]:5000", "[::1]:5000"),
        ("*.gcr.io", "*.gcr.io"),
        ("user@registry.example.com", "registry.example.com"),
        ("quay.io/a%2Fb", "quay.io/a/b"),
        ("quay.io/x?tab=1", "quay.io/x"),
        ("quay.io/x#frag", "quay.io/x"),
        # The scheme test is case-sensitive: "https://" is put in front again.
        ("HTTPS://quay.io", "HTTPS://quay.io"),
        ("", ""),
    ],
)
def test_key_normalization(registry: str, key: str) -> None:
    assert normalize_key(registry) == key


@pytest.mark.parametrize(
    "registry",
    ["quay.io:port", "quay io", "quay.io/%zz", "quay.io\x00", "[::1", "quay.io:50x0/a"],
)
def test_keys_url_parse_refuses_are_skipped(registry: str) -> None:
    with pytest.raises(URLError):
        normalize_key(registry)
    keyring = Keyring()
    skipped = keyring.add([(registry, AuthEntry("u", "p"))], "s")
    assert [r for r, _ in skipped] == [registry]
    assert len(keyring) == 0


# (credential key, image repository, whether the kubelet matches them)
MATCH_TABLE = [
    ("*.kubernetes.io", "prefix.kubernetes.io", True),
    ("prefix.*.io", "prefix.kubernetes.io", True),
    ("prefix.kubernetes.*", "prefix.kubernetes.io", True),
    ("*-good.kubernetes.io", "prefix-good.kubernetes.io", True),
    ("*.kubernetes.io", "kubernetes.io", False),
    ("*kubernetes.io", "a.kubernetes.io", False),
    ("*.*.kubernetes.io", "a.b.kubernetes.io", True),
    ("*.*.kubernetes.io", "prefix.kubernetes.io", False),
    ("*.kubernetes.io", "a.b.kubernetes.io", False),
    # url.Parse takes "?" as the start of a query: the key is just "k".
    ("k?s.io", "k8s.io/app", False),
    ("k8s.io/a?b", "k8s.io/app", True),
    ("k[0-9]s.io", "k8s.io/app", True),
    ("k[^0-9]s.io", "k8s.io/app", False),
    # url.Parse refuses "\\" in a host, so the kubelet skips the key.
    ("k\\8s.io", "k8s.io/app", False),
    ("gcr.io", "gcr.io", True),
    ("gcr.io", "gcr.io/project/image", True),
    ("gcr.io", "eu.gcr.io/project/image", False),
    ("gcr.io/project", "gcr.io/project/image", True),
    ("gcr.io/project", "gcr.io/projectx/image", True),
    ("gcr.io/project/", "gcr.io/projectx/image", False),
    ("gcr.io/project/image", "gcr.io/project", False),
    ("*.kubernetes.io:1234", "prefix.kubernetes.io:1234", True),
    ("*.kubernetes.io:1234", "prefix.kubernetes.io:1235", False),
    ("prefix.kubernetes.io", "prefix.kubernetes.io:1234", False),
    ("prefix.kubernetes.io:1234", "prefix.kubernetes.io", False),
    ("quay.io:443", "quay.io/team/app", False),
    ("Quay.io", "quay.io/team/app", False),
    ("localhost:5000", "localhost:5000/app", True),
    ("localhost", "localhost:5000/app", False),
    ("[::1]:5000", "[::1]:5000/app", True),
    # Without a port, SplitHostPort fails and "[::1]" is one glob label: a
    # character class matching a single ':' or '1', never the host itself.
    ("[::1]", "[::1]/app", False),
    ("127.0.0.1:5000", "127.0.0.1:5000/app", True),
    ("*.0.0.1:5000", "127.0.0.1:5000/app", True),
    ("[", "[/app", False),
    ("registry.example.com/a%23b", "registry.example.com/a", True),
]


@pytest.mark.parametrize(("key", "image", "matches"), MATCH_TABLE)
def test_match_table(key: str, image: str, matches: bool) -> None:
    keyring = Keyring()
    keyring.add([(key, AuthEntry("user", "pass"))], "secret")
    found = keyring.lookup(image)
    assert [c.registry for c in found] == ([key] if matches else [])


@pytest.mark.parametrize(("key", "image", "expected"), MATCH_TABLE)
def test_matches_is_the_keyrings_rule_on_a_stored_key(key: str, image: str, expected: bool) -> None:
    """matches() takes a key as the keyring stores it (normalized), as URLsMatchStr does."""
    try:
        stored = normalize_key(key)
    except URLError:
        assert not expected
        return
    assert matches(stored, image) is expected


def test_entries_keep_each_keys_credentials_in_order() -> None:
    keyring = _keyring([("https://quay.io", "first"), ("gcr.io", "g")], [("quay.io", "second")])
    entries = list(keyring.entries())
    assert [(key, [c.username for c in creds]) for key, creds in entries] == [
        ("quay.io", ["first", "second"]),
        ("gcr.io", ["g"]),
    ]
    assert entries[0][1][0].registry == "https://quay.io"


def _keyring(*configs: list[tuple[str, str]]) -> Keyring:
    keyring = Keyring()
    for i, config in enumerate(configs):
        keyring.add([(r, AuthEntry(user, "pw-" + user)) for r, user in config], f"secret-{i}")
    return keyring


def test_matches_come_in_reverse_byte_order_of_keys() -> None:
    keyring = _keyring(
        [
            ("quay.io", "host"),
            ("quay.io/team", "team"),
            ("https://quay.io/v2/team/app", "app"),
            ("*.io", "wild"),
            ("quay.io/Team", "upper"),
        ]
    )
    found = keyring.lookup("quay.io/team/app")
    # "quay.io/team/app" > "quay.io/team" > "quay.io" > "*.io" in reverse byte order;
    # "quay.io/Team" is no prefix of the path (nothing is lowercased).
    assert [c.username for c in found] == ["app", "team", "host", "wild"]
    assert found[0].registry == "https://quay.io/v2/team/app"


def test_same_key_from_several_secrets_keeps_secret_order() -> None:
    keyring = _keyring(
        [("https://quay.io", "first")],
        [("quay.io", "second")],
        [("quay.io/v1/", "third")],
    )
    found = keyring.lookup("quay.io/team/app")
    assert [(c.username, c.source) for c in found] == [
        ("first", "secret-0"),
        ("second", "secret-1"),
        ("third", "secret-2"),
    ]
    assert found[0].password == "pw-first"


def test_docker_hub_credentials_are_a_fallback_only() -> None:
    keyring = _keyring([("https://index.docker.io/v1/", "hub"), ("*.io", "wild")])
    # "docker.io" has two labels, "*.io" matches it: the fallback is not used.
    assert [c.username for c in keyring.lookup("docker.io/library/nginx")] == ["wild"]
    keyring = _keyring([("https://index.docker.io/v1/", "hub")])
    for image in (
        "docker.io/library/nginx",
        "index.docker.io/team/app",
        "team/app",
        "ubuntu",
    ):
        assert [c.username for c in keyring.lookup(image)] == ["hub"], image
    # The kubelet has no "localhost" exception here, unlike distribution.
    assert [c.username for c in keyring.lookup("localhost/app")] == ["hub"]
    for image in ("quay.io/team/app", "localhost:5000/app", "world.mesos.org/a"):
        assert keyring.lookup(image) == [], image


def test_docker_io_key_matches_normalized_hub_images_directly() -> None:
    keyring = _keyring([("docker.io", "direct"), ("index.docker.io", "legacy")])
    assert [c.username for c in keyring.lookup("docker.io/library/nginx")] == ["direct"]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("foo", True),
        ("foo/bar", True),
        ("library/foo", True),
        ("docker.io/foo", True),
        ("index.docker.io/foo", True),
        ("localhost/foo", True),
        ("localhost:5000/foo", False),
        ("example.com/foo", False),
        ("", False),
        ("/foo", False),
    ],
)
def test_default_registry_match(image: str, expected: bool) -> None:
    assert is_default_registry_match(image) is expected


def test_union_puts_pod_secrets_before_node_config() -> None:
    pod = _keyring([("quay.io", "pod")])
    node = _keyring([("quay.io/team", "node")])
    found = lookup_union([pod, node], "quay.io/team/app")
    assert [c.username for c in found] == ["pod", "node"]


def test_each_keyring_has_its_own_docker_hub_fallback() -> None:
    pod = _keyring([("quay.io", "pod")])
    node = _keyring([("https://index.docker.io/v1/", "node-hub")])
    assert [c.username for c in lookup_union([pod, node], "docker.io/library/a")] == ["node-hub"]


def test_password_stays_out_of_repr() -> None:
    keyring = _keyring([("quay.io", "alice")])
    (cred,) = keyring.lookup("quay.io/a")
    assert "pw-alice" not in repr(cred)
    assert cred.password == "pw-alice"


def test_many_keys_on_one_host_only_prefixes_match() -> None:
    keyring = _keyring([(f"quay.io/team-{i}", f"u{i}") for i in range(500)])
    found = keyring.lookup("quay.io/team-42/app")
    # "team-4" is a string prefix of "team-42" too, as in the kubelet.
    assert [c.username for c in found] == ["u42", "u4"]
    found = keyring.lookup("quay.io/team-4")
    assert [c.username for c in found] == ["u4"]
    assert [c.username for c in keyring.lookup("quay.io/team-499x")] == ["u499", "u49", "u4"]
