"""The kubelet's credential provider protocol: the request as the kubelet writes it, the
response byte for byte as its Go types encode it, and answers the kubelet, matching them as
it does, uses exactly as it would use the credential file itself."""

from __future__ import annotations

import json

import pytest

from pullkeeper.core import credential_provider as cp
from pullkeeper.core.credential_provider import Auth, CacheKeyType
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go import duration as goduration
from pullkeeper.core.keyring import Keyring, matches, normalize_key

# What the kubelet v1.34 writes on the provider's standard input (its own encoder's bytes).
KUBELET_REQUEST = (
    b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
    b'"image":"quay.io/team-a/app"}\n'
)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"


def test_the_kubelets_request() -> None:
    request = cp.parse_request(KUBELET_REQUEST)
    assert request == cp.Request("quay.io/team-a/app")


def test_a_request_with_a_service_account_token_keeps_no_token() -> None:
    data = json.dumps(
        {
            "kind": "CredentialProviderRequest",
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "image": "docker.io/library/nginx",
            "serviceAccountToken": TOKEN,
            "serviceAccountAnnotations": {"example.com/role": "puller"},
        }
    ).encode()
    request = cp.parse_request(data)
    assert request.repository == "docker.io/library/nginx"
    assert TOKEN not in repr(request)


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("quay.io/team-a/app", "quay.io/team-a/app"),
        ("nginx:1.27", "docker.io/library/nginx"),
        ("quay.io/team-a/app@sha256:" + "a" * 64, "quay.io/team-a/app"),
        ("localhost:5000/app:v1", "localhost:5000/app"),
    ],
)
def test_the_image_is_looked_up_by_its_repository_name(image: str, repository: str) -> None:
    body = {"kind": "CredentialProviderRequest", "apiVersion": cp.API_VERSION, "image": image}
    assert cp.parse_request(json.dumps(body).encode()).repository == repository


def _request(**fields: object) -> bytes:
    body: dict[str, object] = {
        "kind": "CredentialProviderRequest",
        "apiVersion": cp.API_VERSION,
        "image": "quay.io/a",
        "serviceAccountToken": TOKEN,
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the request is not JSON (Expecting value: line 1 column 1 (char 0)): the kubelet"),
        (b"image: quay.io/a", "the request is not JSON"),
        (b'["quay.io/a"]', "the request is a JSON array, not an object: the kubelet writes"),
        (b'"quay.io/a"', 'the request is "quay.io/a", not an object'),
        (_request(apiVersion=None), "the request has no apiVersion: the kubelet writes a"),
        (
            _request(apiVersion="credentialprovider.kubelet.k8s.io/v1beta1"),
            'the request has apiVersion "credentialprovider.kubelet.k8s.io/v1beta1", not '
            '"credentialprovider.kubelet.k8s.io/v1": give the provider apiVersion: '
            "credentialprovider.kubelet.k8s.io/v1 in the kubelet's CredentialProviderConfig",
        ),
        (_request(apiVersion=1), "the request has apiVersion a JSON number, not"),
        (_request(kind=None), "the request has no kind"),
        (
            _request(kind="CredentialProviderResponse"),
            'the request has kind "CredentialProviderResponse", not '
            '"CredentialProviderRequest": the kubelet writes a '
            "CredentialProviderRequest (credentialprovider.kubelet.k8s.io/v1) on a provider's "
            "standard input",
        ),
        (_request(image=None), "the request has no image"),
        (_request(image=""), "the request has no image"),
        (_request(image=["quay.io/a"]), "the request's image is a JSON array, not a string"),
        (
            _request(image="Quay.io/A"),
            'the request\'s image "Quay.io/A" is not a valid image reference: invalid reference '
            "format: repository name (A) must be lowercase",
        ),
    ],
)
def test_requests_the_kubelet_would_not_send(data: bytes, message: str) -> None:
    with pytest.raises(cp.RequestError) as e:
        cp.parse_request(data)
    assert str(e.value).startswith(message)
    assert TOKEN not in str(e.value)


# A node's credential file: keys with paths, a glob, Docker Hub, and two addresses that are
# one key ("https://quay.io" is "quay.io" to the kubelet).
FILE = [
    ("quay.io", AuthEntry("alice", "alice-pw")),
    ("https://quay.io/v2/team-a", AuthEntry("team-a", "a&<pw>")),
    ("quay.io/team-b/", AuthEntry("team-b", "b-pw")),
    ("https://quay.io", AuthEntry("alice-again", "again-pw")),
    # Normalized once it is "quay.io/v2/odd", which the kubelet would normalize again to
    # "quay.io/odd": the answer must carry it as written.
    ("quay.io/v2/v2/odd", AuthEntry("odd", "odd-pw")),
    ("*.example.com:5000", AuthEntry("wild", "wild-pw")),
    ("https://index.docker.io/v1/", AuthEntry("hub", "hub-pw")),
    ("docker.io/team", AuthEntry("hub-team", "hub-team-pw")),
    ("*.gcr.io", AuthEntry("gcr", "gcr-pw")),
    ("localhost:5000", AuthEntry("local", "local-pw")),
]
IMAGES = [
    "quay.io/team-a/app",
    "quay.io/team-ab/app",
    "quay.io/team-b/app",
    "quay.io/team-bc",
    "quay.io/other/app",
    "quay.io/v2/odd/app",
    "quay.io/odd/app",
    "a.example.com:5000/x",
    "b.example.com:5000/y",
    "example.com:5000/z",
    "docker.io/library/nginx",
    "docker.io/team/app",
    "eu.gcr.io/p/i",
    "gcr.io/p/i",
    "localhost:5000/a",
    "localhost/a",
    "registry.example.org/a",
]


def _file_keyring() -> Keyring:
    keyring = Keyring()
    keyring.add(FILE, "config.json")
    return keyring


def _answer(image: str, key_type: CacheKeyType) -> dict[str, dict[str, str]]:
    auth = cp.auth_for(_file_keyring(), image, key_type)
    doc = json.loads(cp.response(auth, key_type, 5 * goduration.MINUTE))
    answer: dict[str, dict[str, str]] = doc["auth"]
    return answer


def _kubelet_lookup(answer: dict[str, dict[str, str]], image: str) -> list[tuple[str, str]]:
    """What the kubelet tries for image from an answer: its auth map read into a keyring."""
    keyring = Keyring()
    keyring.add(
        [(glob, AuthEntry(a["username"], a["password"])) for glob, a in answer.items()], "answer"
    )
    return [(c.username, c.password) for c in keyring.lookup(image)]


def _file_lookup(image: str) -> list[tuple[str, str]]:
    """What the kubelet tries for image from the file, one credential per key (the first)."""
    seen, found = set(), []
    for c in _file_keyring().lookup(image):
        key = normalize_key(c.registry)
        if key not in seen:
            seen.add(key)
            found.append((c.username, c.password))
    return found


def _reused_for(image: str, other: str, key_type: CacheKeyType) -> bool:
    """Whether the kubelet answers other from the answer it cached for image."""
    if key_type is CacheKeyType.IMAGE:
        return other == image
    if key_type is CacheKeyType.REGISTRY:
        return other.partition("/")[0] == image.partition("/")[0]
    return True


@pytest.mark.parametrize("key_type", list(CacheKeyType))
@pytest.mark.parametrize("image", IMAGES)
def test_an_answer_serves_every_image_it_is_cached_for_as_the_file_would(
    image: str, key_type: CacheKeyType
) -> None:
    answer = _answer(image, key_type)
    for other in IMAGES:
        if _reused_for(image, other, key_type):
            assert _kubelet_lookup(answer, other) == _file_lookup(other), other


@pytest.mark.parametrize(
    ("image", "key_type", "globs"),
    [
        (
            "quay.io/team-a/app",
            CacheKeyType.IMAGE,
            {"quay.io", "quay.io/team-a"},
        ),
        (
            "quay.io/team-a/app",
            CacheKeyType.REGISTRY,
            {"quay.io", "quay.io/team-a", "quay.io/team-b/", "quay.io/v2/v2/odd"},
        ),
        ("a.example.com:5000/x", CacheKeyType.IMAGE, {"*.example.com:5000"}),
        ("example.com:5000/x", CacheKeyType.REGISTRY, set()),
        # The Docker Hub fallback goes with every Docker Hub answer: the kubelet decides.
        ("docker.io/library/nginx", CacheKeyType.IMAGE, {"index.docker.io"}),
        ("docker.io/team/app", CacheKeyType.IMAGE, {"docker.io/team", "index.docker.io"}),
        ("docker.io/library/nginx", CacheKeyType.REGISTRY, {"docker.io/team", "index.docker.io"}),
        ("registry.example.org/a", CacheKeyType.REGISTRY, set()),
        (
            "registry.example.org/a",
            CacheKeyType.GLOBAL,
            {
                "quay.io",
                "quay.io/team-a",
                "quay.io/team-b/",
                "quay.io/v2/v2/odd",
                "*.example.com:5000",
                "index.docker.io",
                "docker.io/team",
                "*.gcr.io",
                "localhost:5000",
            },
        ),
    ],
)
def test_an_answer_holds_only_what_it_may_be_used_for(
    image: str, key_type: CacheKeyType, globs: set[str]
) -> None:
    assert set(_answer(image, key_type)) == globs


def test_one_credential_per_key_the_first() -> None:
    (quay,) = (a for a in cp.auth_for(_file_keyring(), "quay.io/x", CacheKeyType.IMAGE))
    assert (quay.glob, quay.username, quay.password) == ("quay.io", "alice", "alice-pw")
    assert "alice-pw" not in repr(quay)


def test_the_response_is_what_the_kubelets_types_encode() -> None:
    auth = cp.auth_for(_file_keyring(), "quay.io/team-a/app", CacheKeyType.REGISTRY)
    assert cp.response(auth, CacheKeyType.REGISTRY, 6 * goduration.HOUR) == (
        '{"kind":"CredentialProviderResponse",'
        '"apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        '"cacheKeyType":"Registry","cacheDuration":"6h0m0s","auth":{'
        '"quay.io":{"username":"alice","password":"alice-pw"},'
        '"quay.io/team-a":{"username":"team-a","password":"a\\u0026\\u003cpw\\u003e"},'
        '"quay.io/team-b/":{"username":"team-b","password":"b-pw"},'
        '"quay.io/v2/v2/odd":{"username":"odd","password":"odd-pw"}}}'
    )


def test_no_credential_is_an_empty_auth_map() -> None:
    assert cp.auth_for(_file_keyring(), "registry.example.org/a", CacheKeyType.IMAGE) == []
    assert cp.response([], CacheKeyType.IMAGE, 0) == (
        '{"kind":"CredentialProviderResponse",'
        '"apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        '"cacheKeyType":"Image","cacheDuration":"0s","auth":{}}'
    )


def test_the_response_has_exactly_the_fields_the_kubelet_decodes_strictly() -> None:
    doc = json.loads(cp.response([Auth("quay.io", "u", "p")], CacheKeyType.GLOBAL, 90_000_000_000))
    assert list(doc) == ["kind", "apiVersion", "cacheKeyType", "cacheDuration", "auth"]
    assert doc["cacheDuration"] == "1m30s"
    assert doc["auth"] == {"quay.io": {"username": "u", "password": "p"}}


def test_auth_keys_are_in_gos_order_and_escaping() -> None:
    auth = [
        Auth("b.example.com", "\u00e9", "\U0001f600"),
        Auth("Z.example.com", "u\udcff", "line\nbreak"),
        Auth("*.example.com", "", ""),
    ]
    out = cp.response(auth, CacheKeyType.IMAGE, goduration.SECOND)
    assert out.endswith(
        '"auth":{"*.example.com":{"username":"","password":""},'
        '"Z.example.com":{"username":"u\\ufffd","password":"line\\nbreak"},'
        '"b.example.com":{"username":"\u00e9","password":"\U0001f600"}}}'
    )


def test_a_glob_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"two credentials for .quay\.io."):
        cp.response([Auth("quay.io", "a", "1"), Auth("quay.io", "b", "2")], CacheKeyType.IMAGE, 0)


# The kubelet's TestURLsMatch and the matchImages examples of its documentation: an auth key
# (or a matchImages entry) against an image.
@pytest.mark.parametrize(
    ("glob", "image", "expected"),
    [
        ("*.kubernetes.io", "prefix.kubernetes.io", True),
        ("prefix.*.io", "prefix.kubernetes.io", True),
        ("prefix.kubernetes.*", "prefix.kubernetes.io", True),
        ("*-good.kubernetes.io", "prefix-good.kubernetes.io", True),
        ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", True),
        ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", True),
        ("*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", True),
        ("prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", True),
        ("*.kubernetes.io", "kubernetes.io", False),
        ("*.*.kubernetes.io", "prefix.kubernetes.io", False),
        ("*.*.kubernetes.io", "kubernetes.io", False),
        ("kubernetes.io", "kubernetes.com", False),
        ("k*.io", "quay.io", False),
        ("*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", False),
        ("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", False),
        (
            "123456789.dkr.ecr.us-east-1.amazonaws.com",
            "123456789.dkr.ecr.us-east-1.amazonaws.com/a",
            True,
        ),
        ("*.dkr.ecr.*.amazonaws.com", "123456789.dkr.ecr.us-east-1.amazonaws.com/a", True),
        ("*.azurecr.io", "team.azurecr.io/app", True),
        ("*.azurecr.io", "azurecr.io/app", False),
        ("gcr.io", "gcr.io/project/image", True),
        ("*.*.registry.io", "a.b.registry.io/app", True),
        ("*.*.registry.io", "a.registry.io/app", False),
        ("registry.io:8080/path", "registry.io:8080/path/app", True),
        ("registry.io:8080/path", "registry.io/path/app", False),
        ("registry.io:8080/path", "registry.io:8080/other", False),
    ],
)
def test_globs_match_images_as_the_kubelet_matches_them(
    glob: str, image: str, expected: bool
) -> None:
    assert matches(glob, image) is expected
    answer = {glob: {"username": "u", "password": "p"}}
    assert _kubelet_lookup(answer, image) == ([("u", "p")] if expected else [])
