"""Property tests: the parsers fail only in their documented way, and round-trip.

Inputs are arbitrary text, arbitrary bytes, and "Go strings": bytes decoded
with surrogateescape, the way pullkeeper carries a Go string that is not
valid UTF-8.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pullkeeper.core import dockerconfig, manifest, reference, secret
from pullkeeper.core.dockerconfig import AuthEntry, DockerConfigError
from pullkeeper.core.go import base64 as gob64
from pullkeeper.core.go import glob
from pullkeeper.core.go import url as gourl
from pullkeeper.core.keyring import Keyring, LayeredKeyring
from pullkeeper.core.reference import InvalidReference, Reference

CHECK = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def go_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- strategies

go_strings = st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape"))


def texts_over(alphabet: str | st.SearchStrategy[str], max_size: int = 60) -> Any:
    """Arbitrary text, Go strings, and text over an alphabet that reaches the edge cases."""
    return st.one_of(
        st.text(max_size=max_size),
        go_strings,
        st.text(alphabet=alphabet, max_size=max_size),
    )


REF_ALPHABET = st.sampled_from(
    [*"abcxyz0189ABZ._-/:@[]%é", "__", "___", "localhost", "docker.io", "sha256:", "\udcff"]
)
ref_like = st.one_of(
    st.text(max_size=60),
    go_strings,
    st.lists(REF_ALPHABET, max_size=25).map("".join),
)

_alnum = st.text(alphabet="abcz0189", min_size=1, max_size=4)
_sep = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_alnum, min_size=1, max_size=3))
    out = parts[0]
    for part in parts[1:]:
        out += draw(_sep) + part
    return out


_domains = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "LOCALHOST",
            "docker.io",
            "index.docker.io",
            "example.com",
            "Registry.Example.COM",
            "a-b.c",
            "127.0.0.1",
            "[::1]",
            "[fc00::AB]",
            "Foo",
            "a_b.com",
            "xn--n3h.com",
        ]
    ),
    st.lists(path_components(), min_size=1, max_size=3).map(".".join),
)
_ports = st.sampled_from(["", ":5000", ":0", ":443"])
_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)


@st.composite
def digests(draw: st.DrawFn) -> str:
    algorithm, size = draw(st.sampled_from([("sha256", 64), ("sha384", 96), ("sha512", 128)]))
    return (
        algorithm + ":" + draw(st.text(alphabet="0123456789abcdef", min_size=size, max_size=size))
    )


@st.composite
def reference_strings(draw: st.DrawFn) -> str:
    """Strings in the familiar or full syntax, most of which parse."""
    s = ""
    if draw(st.booleans()):
        s = draw(_domains) + draw(_ports) + "/"
    components = st.one_of(path_components(), st.sampled_from(["library", "localhost"]))
    s += "/".join(draw(st.lists(components, min_size=1, max_size=4)))
    if draw(st.booleans()):
        s += ":" + draw(_tags)
    if draw(st.booleans()):
        s += "@" + draw(digests())
    return s


def _json_dump(value: Any) -> str:
    """JSON text for a value whose objects are lists of members (duplicates kept)."""
    if isinstance(value, Members):
        return "{" + ",".join(json.dumps(k) + ":" + _json_dump(v) for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_dump(v) for v in value) + "]"
    return json.dumps(value)


class Members(list[tuple[str, Any]]):
    """A generated JSON object: its members in order, duplicate keys allowed."""


_config_keys = st.one_of(
    st.sampled_from(
        [
            "auths",
            "AUTHS",
            "Auths",
            "auth",
            "AUTH",
            "Auth",
            "username",
            "UserName",
            "USERNAME",
            "password",
            "Password",
            "email",
            "Email",
            "identitytoken",
            "identityToken",
            "HttpHeaders",
            "httpheaders",
            "credsStore",
            "credHelpers",
            "https://index.docker.io/v1/",
            "quay.io",
            "*.gcr.io",
            "localhost:5000",
            "u\u017fername",  # long s: Go's field match folds it to S
            "\u212auth",  # Kelvin sign: folds to K, so no field name
        ]
    ),
    st.text(max_size=12),
)
_auth_values = st.one_of(
    st.text(max_size=20),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n", max_size=24
    ),
    st.builds(dockerconfig.encode_auth, st.text(max_size=8), st.text(max_size=8)),
)
_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _auth_values,
)
json_values = st.recursive(
    _json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.tuples(_config_keys, children), max_size=5).map(Members),
    ),
    max_leaves=25,
)


@st.composite
def config_documents(draw: st.DrawFn) -> Any:
    """Mostly shaped like credential files, with every part liable to be wrong."""
    entry = st.lists(st.tuples(_config_keys, json_values), max_size=5).map(Members)
    auths = st.lists(st.tuples(_config_keys, st.one_of(entry, json_values)), max_size=4).map(
        Members
    )
    shape = draw(st.integers(min_value=0, max_value=2))
    if shape == 0:
        return draw(auths)
    if shape == 1:
        top = st.lists(st.tuples(_config_keys, st.one_of(auths, json_values)), max_size=4)
        return Members(draw(top))
    return draw(json_values)


# ---------------------------------------------------------------- references


@CHECK
@given(ref_like)
@example("")
@example("\udcff")
@example("foo@SHA256:" + "f" * 64)
def test_reference_parsers_raise_only_invalid_reference(s: str) -> None:
    for parse in (reference.parse, reference.parse_normalized_named):
        try:
            result = parse(s)
        except InvalidReference as e:
            assert str(e)
        else:
            assert isinstance(result, Reference)
            # What Parse accepts it gives back unchanged.
            if parse is reference.parse:
                assert str(result) == s


@CHECK
@given(reference_strings())
def test_valid_references_round_trip(s: str) -> None:
    try:
        r = reference.parse_normalized_named(s)
    except InvalidReference:
        return
    assert reference.parse_normalized_named(str(r)) == r
    assert reference.parse(str(r)) == r
    # The familiar form normalizes back, unless it is a bare 64-hex identifier or a Docker
    # Hub path whose first component distribution reads as a domain ("localhost/x",
    # "0.0/x": splitDockerDomain takes any first component with a dot or a colon).
    familiar = r.familiar_string
    first, slash, _ = familiar.partition("/")
    reads_as_domain = bool(slash) and (first == "localhost" or "." in first or ":" in first)
    if not re.fullmatch("[a-f0-9]{64}", familiar) and not (
        r.domain == "docker.io" and reads_as_domain
    ):
        assert reference.parse_normalized_named(familiar) == r
    # Only a would-be domain that the grammar refuses leaves the domain empty.
    assert r.domain != "" or "." in r.path.partition("/")[0]


@CHECK
@given(reference_strings())
def test_parse_accepts_its_own_output(s: str) -> None:
    try:
        r = reference.parse(s)
    except InvalidReference:
        return
    assert str(r) == s
    assert reference.parse(str(r)) == r


@CHECK
@given(texts_over("sha256:abcdefABCDEF0123456789+._-=é\udcff"))
def test_validate_digest_raises_only_invalid_reference(d: str) -> None:
    try:
        reference.validate_digest(d)
    except InvalidReference as e:
        assert str(e) in (
            reference.ERR_DIGEST_FORMAT,
            reference.ERR_DIGEST_LENGTH,
            reference.ERR_DIGEST_UNSUPPORTED,
        )
    else:
        algorithm, _, encoded = d.partition(":")
        assert len(encoded) == reference.DIGEST_ALGORITHMS[algorithm]
        assert re.fullmatch("[0-9a-f]+", encoded)


# ---------------------------------------------------------------- net/url

URL_ALPHABET = "ab1.:/@[]%25?#!$*'\"<>\\|^` é\x7f\x01"


@st.composite
def authorities(draw: st.DrawFn) -> str:
    """Registry addresses: userinfo, host (names, IPs, bracketed IPv6 with zones), port, path."""
    piece = st.sampled_from(
        [
            "a",
            "b.c",
            "[::1]",
            "[fe80::1%25eth0]",
            "[fe80::1%eth0]",
            "[::1",
            "::1]",
            "%41",
            "%c3%a9",
            "%25",
            "%zz",
            "%",
            "é",
            "\udcff",
            "*",
            "?",
            "#",
            ":",
            "@",
            "/",
            "[",
            "]",
            " ",
            "\x7f",
            "user:pw@",
            "u%40@",
            ":5000",
            ":x",
            "/v1/",
            "/v2/",
            "/%2F",
            "?q=1",
            "#f",
        ]
    )
    return "".join(draw(st.lists(piece, max_size=8)))


@CHECK
@given(
    st.one_of(texts_over(URL_ALPHABET), authorities()),
    st.sampled_from(["", "https://", "http://", "HTTPS://"]),
)
def test_url_parse_raises_only_url_error(s: str, scheme: str) -> None:
    try:
        u = gourl.parse(scheme + s)
    except gourl.URLError as e:
        assert str(e)
    else:
        assert isinstance(u.host, str)
        assert isinstance(u.path, str)
        if scheme:
            assert u.scheme == scheme[:-3].lower()


@CHECK
@given(texts_over("[]:ab1%"))
def test_split_host_port_raises_only_value_error(s: str) -> None:
    try:
        host, port = gourl.split_host_port(s)
    except ValueError as e:
        assert type(e) is ValueError
    else:
        # What it splits it splits losslessly.
        bracketed = s.startswith("[")
        assert (f"[{host}]:{port}" if bracketed else f"{host}:{port}") == s
        assert ":" not in port


# ---------------------------------------------------------------- filepath.Match

GLOB_ALPHABET = "*?[]^-\\ab/é\udcff"


@CHECK
@given(texts_over(GLOB_ALPHABET, 12), texts_over("ab/-]^\\*é\udcff", 12))
def test_glob_match_raises_only_bad_pattern(pattern: str, name: str) -> None:
    try:
        matched = glob.match(pattern, name)
    except glob.BadPattern as e:
        assert str(e) == "syntax error in pattern"
    else:
        assert isinstance(matched, bool)
        if not glob.has_meta(pattern):
            assert matched == (pattern == name)


@CHECK
@given(st.text(alphabet="ab.-_é*?[]^\\", max_size=10))
def test_glob_star_matches_any_label(name: str) -> None:
    assert glob.match("*", name)
    assert glob.match(glob_escape(name), name)


def glob_escape(s: str) -> str:
    return "".join("\\" + c if c in "*?[\\" else c for c in s)


# ---------------------------------------------------------------- encoding/base64

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n -_é"


@CHECK
@given(st.one_of(texts_over(B64_ALPHABET), st.binary(max_size=60)))
def test_base64_decoders_raise_only_corrupt_input(data: str | bytes) -> None:
    size = len(data) if isinstance(data, bytes) else len(go_bytes(data))
    for decode in (gob64.std_decode, gob64.raw_std_decode):
        try:
            out = decode(data)
        except gob64.CorruptInput as e:
            assert 0 <= e.offset <= size
            assert str(e) == f"illegal base64 data at input byte {e.offset}"
        else:
            assert isinstance(out, bytes)
            assert len(out) <= size


@CHECK
@given(
    st.binary(max_size=60), st.integers(min_value=0), st.sampled_from([*"!-_ .:\x00é", "\udcff"])
)
def test_base64_reports_the_first_illegal_byte(b: bytes, position: int, bad: str) -> None:
    encoded = gob64.std_encode(b)
    data = encoded.rstrip("=")
    i = position % (len(data) + 1)
    with pytest.raises(gob64.CorruptInput) as e:
        gob64.std_decode(encoded[:i] + bad + encoded[i:])
    assert e.value.offset == i
    with pytest.raises(gob64.CorruptInput) as e:
        gob64.raw_std_decode(data[:i] + bad + data[i:])
    assert e.value.offset == i


@CHECK
@given(st.binary(max_size=100))
def test_base64_round_trip(b: bytes) -> None:
    encoded = gob64.std_encode(b)
    assert gob64.std_decode(encoded) == b
    assert gob64.std_decode(encoded.encode()) == b
    assert gob64.raw_std_decode(encoded.rstrip("=")) == b
    # A padded encoding is no raw one, and the reverse.
    if len(b) % 3:
        with pytest.raises(gob64.CorruptInput):
            gob64.raw_std_decode(encoded)
        with pytest.raises(gob64.CorruptInput):
            gob64.std_decode(encoded.rstrip("="))


_b64_chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


@st.composite
def padded_base64(draw: st.DrawFn) -> str:
    """Well-formed padded base64, trailing bits not necessarily zero."""
    quanta = draw(st.lists(st.lists(_b64_chars, min_size=4, max_size=4).map("".join), max_size=8))
    tail = draw(st.sampled_from([0, 2, 3]))
    last = "".join(draw(st.lists(_b64_chars, min_size=tail, max_size=tail)))
    return "".join(quanta) + (last + "=" * (4 - tail) if tail else "")


@CHECK
@given(padded_base64(), st.lists(st.tuples(st.integers(0, 200), st.sampled_from("\r\n"))))
def test_base64_agrees_with_python_on_well_formed_input(s: str, breaks: list[Any]) -> None:
    want = base64.b64decode(s, validate=True)
    assert gob64.std_decode(s) == want
    # Go skips CR and LF wherever they are.
    broken = s
    for position, char in breaks:
        i = position % (len(broken) + 1)
        broken = broken[:i] + char + broken[i:]
    assert gob64.std_decode(broken) == want
    assert gob64.raw_std_decode(s.rstrip("=")) == want
    assert gob64.raw_std_decode(broken.replace("=", "")) == want


# ---------------------------------------------------------------- docker config files


@CHECK
@given(st.one_of(st.binary(max_size=200), texts_over('{}[]":,0123456789.-eEnultrfasu\\ ')))
@example(b"{" * 5000)
@example(b'{"auths": {"x": {"auth": "\xff"}}}')
def test_docker_config_parsers_raise_only_docker_config_error(data: bytes | str) -> None:
    for parse in (
        dockerconfig.parse_config_json,
        dockerconfig.parse_dockercfg,
        dockerconfig.parse_file,
        lambda d: dockerconfig.parse_file(d, "/root/.dockercfg"),
    ):
        try:
            config = parse(data)
        except DockerConfigError as e:
            assert str(e)
        else:
            assert all(isinstance(v, AuthEntry) for v in config.auths.values())


@FEW
@given(config_documents())
def test_docker_config_parsers_on_json_structures(doc: Any) -> None:
    text = _json_dump(doc)
    for parse in (
        dockerconfig.parse_config_json,
        dockerconfig.parse_dockercfg,
        dockerconfig.parse_file,
        lambda d: dockerconfig.parse_file(d, ".dockercfg"),
    ):
        for data in (text, text.encode("utf-8", "surrogatepass")):
            try:
                config = parse(data)
            except DockerConfigError as e:
                assert str(e)
            else:
                for key, entry in config.auths.items():
                    assert isinstance(key, str)
                    assert isinstance(entry.username, str)
                    assert isinstance(entry.password, str)


AUTH_ERROR = (
    r"the auth field (is not base64 \(illegal base64 data at input byte \d+\)"
    r"|has no ':' once decoded); it must be formatted as base64\(username:password\)"
)


@CHECK
@given(texts_over(B64_ALPHABET + ":"))
def test_decode_auth_raises_only_docker_config_error(value: str) -> None:
    try:
        user, password = dockerconfig.decode_auth(value)
    except DockerConfigError as e:
        # Either of two fixed texts: the error never repeats the secret value.
        assert re.fullmatch(AUTH_ERROR, str(e))
    else:
        assert ":" not in user
        assert isinstance(password, str)


@CHECK
@given(st.one_of(st.text(), go_strings), st.one_of(st.text(), go_strings))
def test_auth_round_trip(user: str, password: str) -> None:
    encoded = dockerconfig.encode_auth(user, password)
    if ":" in user:
        # The first ':' splits, so the user name comes back cut.
        got_user, got_password = dockerconfig.decode_auth(encoded)
        assert go_bytes(got_user) == go_bytes(user).split(b":", 1)[0]
        assert go_bytes(got_password) == go_bytes(user).split(b":", 1)[1] + b":" + go_bytes(
            password
        )
        return
    got_user, got_password = dockerconfig.decode_auth(encoded)
    # Compared as Go compares them: the bytes.
    assert (go_bytes(got_user), go_bytes(got_password)) == (go_bytes(user), go_bytes(password))
    # The kubelet also takes the unpadded form (RawStdEncoding when no '=' ends it).
    assert dockerconfig.decode_auth(encoded.rstrip("=")) == (got_user, got_password)


@FEW
@given(
    st.dictionaries(
        st.text(max_size=20),
        st.tuples(
            st.text(max_size=10).filter(lambda u: ":" not in u),
            st.text(max_size=10),
            st.text(max_size=10),
        ),
        max_size=4,
    )
)
def test_config_json_written_is_read_back(auths: dict[str, tuple[str, str, str]]) -> None:
    entries = {k: AuthEntry(u, p, e) for k, (u, p, e) in auths.items()}
    for encode, parse in (
        (dockerconfig.encode_config_json, dockerconfig.parse_config_json),
        (dockerconfig.encode_dockercfg, dockerconfig.parse_dockercfg),
    ):
        config = parse(encode(entries))
        assert config.auths == entries


# ---------------------------------------------------------------- keyring


@CHECK
@given(
    st.lists(st.tuples(texts_over(URL_ALPHABET + "*", 30), st.text(max_size=5)), max_size=6),
    st.lists(texts_over(URL_ALPHABET + "*", 30), max_size=5),
)
@example([("[", "u")], ["x"])
@example([("a.b/%zz", "u"), ("index.docker.io", "hub")], ["a.b/%zz", "ubuntu"])
def test_keyring_never_raises(registries: list[tuple[str, str]], images: list[str]) -> None:
    kr = Keyring()
    skipped = kr.add(((r, AuthEntry(u, "pw")) for r, u in registries), "pod")
    assert all(isinstance(reason, str) for _, reason in skipped)
    for image in images:
        for cred in kr.lookup(image):
            assert cred.password == "pw"


@CHECK
@given(
    st.lists(
        st.sampled_from(["index.docker.io", "https://index.docker.io/v1/", "docker.io", "quay.io"]),
        max_size=4,
    ),
    st.one_of(
        st.sampled_from(
            [
                "ubuntu",
                "library/ubuntu",
                "localhost/x",
                "localhost:5000/x",
                "docker.io/x",
                "index.docker.io/x",
                "a.b/c",
                "a:b/c",
                "/x",
                "",
                "Foo/bar",
                "quay.io/x",
            ]
        ),
        texts_over("ab./:-", 12),
    ),
)
def test_keyring_docker_hub_fallback_matches_the_kubelet(registries: list[str], image: str) -> None:
    files = [[(registry, f"u{n}") for n, registry in enumerate(registries)]]
    kr = Keyring()
    kr.add(((r, AuthEntry(u, "pw")) for r, u in files[0]), "pod")
    assert [(c.registry, c.username) for c in kr.lookup(image)] == oracle_lookup(files, image)


# The kubelet's algorithm (pkg/credentialprovider/keyring.go), as a plain scan:
# every unique key in reverse byte order, each matched against the image.


def _oracle_key(registry: str) -> str | None:
    value = registry if registry.startswith(("https://", "http://")) else "https://" + registry
    try:
        u = gourl.parse(value)
    except gourl.URLError:
        return None
    path = u.path
    if path.startswith("/v2/") or path.startswith("/v1/"):
        path = path[3:]
    return u.host + path if len(path) > 0 and path != "/" else u.host


def _oracle_schemeless(s: str) -> gourl.URL | None:
    try:
        return gourl.parse("https://" + s)
    except gourl.URLError:
        return None


def _oracle_split(u: gourl.URL) -> tuple[list[str], str]:
    try:
        host, port = gourl.split_host_port(u.host)
    except ValueError:
        host, port = u.host, ""
    return host.split("."), port


def _oracle_urls_match(key: str, image: str) -> bool:
    glob_url, target_url = _oracle_schemeless(key), _oracle_schemeless(image)
    if glob_url is None or target_url is None:
        return False
    glob_parts, glob_port = _oracle_split(glob_url)
    target_parts, target_port = _oracle_split(target_url)
    if glob_port != target_port or len(glob_parts) != len(target_parts):
        return False
    if not target_url.path.startswith(glob_url.path):
        return False
    for pattern, part in zip(glob_parts, target_parts, strict=True):
        try:
            if not glob.match(pattern, part):
                return False
        except glob.BadPattern:
            return False
    return True


def _oracle_default_registry_match(image: str) -> bool:
    parts = image.split("/", 1)
    if len(parts[0]) == 0:
        return False
    if len(parts) == 1:
        return True
    if parts[0] in ("docker.io", "index.docker.io"):
        return True
    return not any(c in parts[0] for c in ".:")


def oracle_lookup(files: list[list[tuple[str, str]]], image: str) -> list[tuple[str, str]]:
    creds: dict[str, list[tuple[str, str]]] = {}
    for entries in files:
        for registry, user in entries:
            key = _oracle_key(registry)
            if key is not None:
                creds.setdefault(key, []).append((registry, user))
    index = sorted(creds, key=go_bytes, reverse=True)
    found = [cred for key in index if _oracle_urls_match(key, image) for cred in creds[key]]
    if found:
        return found
    if _oracle_default_registry_match(image):
        return creds.get("index.docker.io", [])
    return []


_labels = st.sampled_from(["quay", "io", "gcr", "eu", "a", "b", "docker", "index"])
_glob_labels = st.one_of(
    _labels, st.sampled_from(["*", "?", "q*", "*o", "[ab]", "[^a]", "[", "\\*", "*[", "a?"])
)
_key_paths = st.sampled_from(
    ["", "/", "/v1/", "/v2/", "/v2/team", "/team", "/team/", "/team/app", "/te", "/v1"]
)
_image_paths = st.sampled_from(["", "/team", "/team/app", "/teamx", "/x", "/team/app/more"])


@st.composite
def keyring_files(draw: st.DrawFn) -> list[list[tuple[str, str]]]:
    files = []
    for f in range(draw(st.integers(1, 3))):
        entries = []
        for e in range(draw(st.integers(0, 6))):
            host = ".".join(draw(st.lists(_glob_labels, min_size=1, max_size=3)))
            if draw(st.integers(0, 9)) == 0:
                host = draw(st.sampled_from(["index.docker.io", "docker.io", "[::1]", "a%zz"]))
            registry = (
                draw(st.sampled_from(["", "", "", "https://", "http://", "HTTPS://"]))
                + host
                + draw(st.sampled_from(["", "", ":5000", ":443"]))
                + draw(_key_paths)
            )
            entries.append((registry, f"u{f}.{e}"))
        files.append(entries)
    return files


@st.composite
def images(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["ubuntu", "library/ubuntu", "localhost/x", "a:b/c", "/x"]))
    host = ".".join(draw(st.lists(_labels, min_size=1, max_size=3)))
    return host + draw(st.sampled_from(["", "", ":5000", ":443"])) + draw(_image_paths)


# Labels each wildcard label matches (or, for a bad pattern, anything).
_WITNESSES = {
    "*": ["quay", "io", "a"],
    "?": ["a", "b"],
    "q*": ["quay", "q"],
    "*o": ["io", "o"],
    "[ab]": ["a", "b"],
    "[^a]": ["b", "a"],
    "[": ["a", "["],
    "\\*": ["*", "a"],
    "*[": ["a", "quay"],
    "a?": ["ab", "a"],
}


@st.composite
def images_near(draw: st.DrawFn, files: list[list[tuple[str, str]]]) -> str:
    """An image under one of the keys (wildcards filled in), or any image."""
    parsed = [_oracle_key(registry) for entries in files for registry, _ in entries]
    keys = [key for key in parsed if key]
    if not keys or draw(st.integers(0, 3)) == 0:
        return draw(images())
    hostport, slash, path = draw(st.sampled_from(keys)).partition("/")
    host, colon, port = hostport.partition(":")
    labels = [draw(st.sampled_from(_WITNESSES.get(label, [label]))) for label in host.split(".")]
    if draw(st.integers(0, 4)) == 0:
        colon, port = ":", draw(st.sampled_from(["5000", "443", "80"]))
    suffix = draw(st.sampled_from(["", "", "/app", "x", "/team/app"]))
    return ".".join(labels) + colon + port + slash + path + suffix


@CHECK
@given(keyring_files(), st.data())
def test_keyring_lookup_matches_a_linear_scan(
    files: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    kr = Keyring()
    for n, entries in enumerate(files):
        kr.add(((r, AuthEntry(u, "pw")) for r, u in entries), f"file{n}")
    targets = data.draw(st.lists(images_near(files), min_size=1, max_size=4))
    for image in targets:
        got = [(c.registry, c.username) for c in kr.lookup(image)]
        assert got == oracle_lookup(files, image)


@CHECK
@given(keyring_files(), st.data())
def test_layered_keyring_answers_as_the_flat_one(
    files: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    # Some files get a Docker Hub entry, so the fallback spans layers too.
    for n, hub in enumerate(data.draw(st.lists(st.booleans(), min_size=len(files)))[: len(files)]):
        if hub:
            files[n].append(("https://index.docker.io/v1/", f"hub{n}"))
    # Files split into layers anywhere (a layer may be empty); the same key may be in several.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(files)), max_size=3)))
    bounds = [0, *cuts, len(files)]
    flat, layers = Keyring(), []
    for start, end in itertools.pairwise(bounds):
        layer = Keyring()
        for n in range(start, end):
            entries = [(r, AuthEntry(u, "pw")) for r, u in files[n]]
            flat.add(entries, f"file{n}")
            layer.add(entries, f"file{n}")
        layers.append(layer)
    layered = LayeredKeyring(layers)
    assert len(layered) == len(flat)
    targets = data.draw(st.lists(images_near(files), min_size=1, max_size=4))
    for image in [*targets, "ubuntu"]:
        assert layered.lookup(image) == flat.lookup(image)


# ---------------------------------------------------------------- Secrets

_b64_of_documents = config_documents().map(
    lambda d: base64.b64encode(_json_dump(d).encode("utf-8", "surrogatepass")).decode()
)
_data_values = st.one_of(_b64_of_documents, json_values, st.text(max_size=12))
_data_maps = st.one_of(
    st.dictionaries(
        st.sampled_from([".dockerconfigjson", ".dockercfg", "other"]), _data_values, max_size=3
    ),
    json_values,
)


@st.composite
def secret_objects(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if draw(st.integers(0, 5)):
        obj["kind"] = draw(st.one_of(st.just("Secret"), json_values))
    if draw(st.booleans()):
        obj["metadata"] = draw(
            st.one_of(
                st.fixed_dictionaries({"name": st.one_of(st.text(), json_values)}), json_values
            )
        )
    if draw(st.integers(0, 5)):
        obj["type"] = draw(
            st.one_of(
                st.sampled_from(
                    ["kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg", "Opaque", ""]
                ),
                json_values,
            )
        )
    if draw(st.integers(0, 5)):
        obj["data"] = draw(_data_maps)
    if draw(st.booleans()):
        obj["stringData"] = draw(
            st.one_of(
                st.dictionaries(
                    st.sampled_from([".dockerconfigjson", ".dockercfg"]),
                    st.one_of(config_documents().map(_json_dump), json_values, go_strings),
                    max_size=2,
                ),
                json_values,
            )
        )
    for key, value in draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)).items():
        obj.setdefault(key, value)
    return obj


@FEW
@given(secret_objects())
def test_read_secret_raises_only_value_errors(obj: dict[str, Any]) -> None:
    try:
        payload = secret.read_secret(obj)
    except ValueError as e:
        # SecretError, or another ValueError such as the UnicodeEncodeError of a
        # stringData value holding a lone surrogate; never TypeError and the like.
        assert str(e)
    else:
        assert payload.type in secret.DATA_KEY
        assert all(isinstance(v, AuthEntry) for v in payload.config.auths.values())


# ---------------------------------------------------------------- manifests

YAML_ALPHABET = "ab: -\n[]{}!&*#?|>'\"%@`,.0123456789T+e\t"


@settings(CHECK, report_multiple_bugs=False)
@given(texts_over(YAML_ALPHABET))
@example("2001-13-01")
def test_load_documents_raises_only_manifest_error(text: str) -> None:
    try:
        docs = manifest.load_documents(text)
    except manifest.ManifestError as e:
        assert str(e)
    else:
        assert isinstance(docs, list)


_plain_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


# Characters JSON may hold raw but a YAML 1.1 reader refuses, or reads as a line break.
NOT_YAML = re.compile("[\x7f-\x9f\ufffe\uffff]")


def _yaml_unsafe(value: Any) -> bool:
    if isinstance(value, str):
        return NOT_YAML.search(value) is not None
    if isinstance(value, float):
        # YAML 1.1 wants a '.' in a float: 1e-05 it reads as a string.
        return "." not in json.dumps(value)
    if isinstance(value, dict):
        return any(_yaml_unsafe(k) or _yaml_unsafe(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_yaml_unsafe(v) for v in value)
    return False


@FEW
@given(st.dictionaries(st.text(max_size=8), _plain_json, min_size=1, max_size=4))
def test_manifests_written_are_read_back(obj: dict[str, Any]) -> None:
    if obj.get("kind") == "List":
        obj["kind"] = "NotList"
    assert manifest.load_documents(manifest.to_yaml(obj)) == [obj]
    if _yaml_unsafe(obj):
        return  # See test_json_manifest_with_yaml_unsafe_text_is_read_back.
    assert manifest.load_documents(manifest.to_json(obj)) == [obj]
    assert manifest.load_documents(manifest.to_yaml(obj) + "---\n" + manifest.to_json(obj)) == [
        obj,
        obj,
    ]


@pytest.mark.parametrize(
    "value", ["a\x7fb", "a\x80b", "a\x85b", "a\x9fb", "a\ufffeb", 1e-05, 1e300]
)
def test_json_manifest_with_yaml_unsafe_text_is_read_back(value: Any) -> None:
    obj = {"data": value}
    assert manifest.load_documents(manifest.to_json(obj)) == [obj]
