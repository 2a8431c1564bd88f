"""Docker credential files read as the kubelet reads them, written as kubectl writes them."""

from __future__ import annotations

import base64
import json

import pytest

from pullkeeper.core import dockerconfig
from pullkeeper.core.dockerconfig import (
    CONFIG_JSON,
    DOCKERCFG,
    AuthEntry,
    DockerConfigError,
    InvalidUsername,
    check_username,
    decode_auth,
    encode_auth,
    encode_config_json,
    encode_dockercfg,
    parse_config_json,
    parse_dockercfg,
    parse_file,
)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(
    ("field", "user", "password"),
    [
        (b64("alice:s3cret"), "alice", "s3cret"),
        (b64("alice:s3cret").rstrip("="), "alice", "s3cret"),
        (b64("alice:pa:ss:word"), "alice", "pa:ss:word"),
        (b64(":"), "", ""),
        (b64("alice:"), "alice", ""),
        (b64(":pw"), "", "pw"),
        (b64("u:p\u00e9"), "u", "p\u00e9"),
        ("YWxp\nY2U6cHc=", "alice", "pw"),
        ("YWxpY2U6cHc=\r\n", "alice", "pw"),
    ],
)
def test_decode_auth(field: str, user: str, password: str) -> None:
    assert decode_auth(field) == (user, password)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (b64("no-colon"), "the auth field has no ':' once decoded"),
        ("not base64!", "the auth field is not base64 (illegal base64 data at input byte 3)"),
        ("YWxpY2U6cHc= ", "the auth field is not base64 (illegal base64 data at input byte 12)"),
        ("YWxpY2U6c=Hc", "the auth field is not base64 (illegal base64 data at input byte 9)"),
        ("YWxpY2U", "the auth field has no ':' once decoded"),
        ("YWxpY2U6cHc==", "illegal base64 data at input byte 12"),
        ("Y", "illegal base64 data at input byte 0"),
    ],
)
def test_decode_auth_errors(field: str, message: str) -> None:
    with pytest.raises(DockerConfigError) as e:
        decode_auth(field)
    assert message in str(e.value)
    assert "base64(username:password)" in str(e.value)


def test_unpadded_decoding_chosen_by_trailing_equals() -> None:
    # Without a trailing "=" the kubelet decodes raw (unpadded) base64, so the
    # same text with its padding removed still decodes, and trailing bits pass.
    assert decode_auth(b64("alice:pw!").rstrip("=")) == ("alice", "pw!")
    assert decode_auth("YWxpY2U6cH") == ("alice", "p")


# (user name, the refusal's telling part, or None when it is fine)
USERNAME_CASES = [
    ("robot", None),
    ("team-a+bot", None),
    ("puller@acme.iam.gserviceaccount.com", None),
    ("robot$ci", None),
    ("ünïcode-usér", None),
    ("with space", None),  # odd, but an auth field carries it back intact
    ("", None),  # whether one is required is the provider's rule
    ("robot:extra", "cannot contain ':'"),
    ("ci:", "cannot contain ':'"),
    ("alice:hunter2", "the part after ':' goes in the password"),
    ("robot\n", "character 6 is a line feed (\\n)"),
    ("robot\r\nX: 1", "cannot contain ':'"),  # the colon is found first
    ("ro\rbot", "character 3 is a carriage return (\\r)"),
    ("\trobot", "character 1 is a tab"),
    ("robot\x00", "character 6 is U+0000"),
    ("ro\x1b[0mbot", "character 3 is U+001B"),
    ("robot\x7f", "character 6 is U+007F"),
    ("robot\x85", "character 6 is U+0085"),  # NEL, a C1 control
    ("robot\u2028", "character 6 is U+2028"),  # line separator
    ("robot\u2029", "character 6 is U+2029"),  # paragraph separator
]


@pytest.mark.parametrize(("username", "refusal"), USERNAME_CASES)
def test_check_username(username: str, refusal: str | None) -> None:
    if refusal is None:
        check_username(username)
        assert decode_auth(encode_auth(username, "p:w")) == (username, "p:w")
        return
    with pytest.raises(InvalidUsername) as e:
        check_username(username)
    assert refusal in str(e.value)
    assert username not in str(e.value)
    # Why: what the auth field gives back is not the login that went in.
    if ":" in username:
        assert decode_auth(encode_auth(username, "pw")) != (username, "pw")


# (config.json text, expected {registry: (username, password, email)})
CONFIG_JSON_CASES = [
    ('{"auths": {}}', {}),
    ("{}", {}),
    ("null", {}),
    ('{"auths": null}', {}),
    (
        '{"auths": {"quay.io": {"username": "u", "password": "p", "email": "e@x"}}}',
        {"quay.io": ("u", "p", "e@x")},
    ),
    # auth wins over username/password, wherever it stands.
    (
        '{"auths": {"r": {"auth": "' + b64("a:b") + '", "username": "x", "password": "y"}}}',
        {"r": ("a", "b", "")},
    ),
    # An empty auth does not override.
    ('{"auths": {"r": {"auth": "", "username": "x", "password": "y"}}}', {"r": ("x", "y", "")}),
    # Field names are case-insensitive, Go's way (long s and Kelvin sign fold too).
    (
        '{"AUTHS": {"r": {"UserName": "x", "PASSWORD": "y", "eMail": "z"}}}',
        {"r": ("x", "y", "z")},
    ),
    ('{"auths": {"r": {"u\u017fername": "x"}}}', {"r": ("x", "", "")}),
    # The last duplicate field wins, across spellings.
    ('{"auths": {"r": {"username": "a", "Username": "b"}}}', {"r": ("b", "", "")}),
    # A null string field leaves the earlier value.
    ('{"auths": {"r": {"username": "a", "username": null}}}', {"r": ("a", "", "")}),
    # Registry keys are map keys: exact, the last duplicate wins.
    (
        '{"auths": {"r": {"username": "a"}, "R": {"username": "b"}, "r": {"username": "c"}}}',
        {"r": ("c", "", ""), "R": ("b", "", "")},
    ),
    # A repeated "auths" merges into the map; null empties it.
    (
        '{"auths": {"a": {"username": "1"}}, "auths": {"b": {"username": "2"}}}',
        {"a": ("1", "", ""), "b": ("2", "", "")},
    ),
    ('{"auths": {"a": {"username": "1"}}, "auths": null}', {}),
    # Unknown fields, and docker's own settings, are ignored.
    (
        '{"auths": {"r": {"username": "u", "identitytoken": "t", "x": [1]}}, '
        '"credsStore": 5, "proxies": {}, "psFormat": "x"}',
        {"r": ("u", "", "")},
    ),
    ('{"auths": {"r": null}}', {"r": ("", "", "")}),
    ('{"auths": {"r": {}}}', {"r": ("", "", "")}),
    (
        '{"auths": {"r": {"username": "\\u00e9\\u003c"}}, "HttpHeaders": {"User-Agent": "x"}}',
        {"r": ("\u00e9<", "", "")},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CONFIG_JSON_CASES)
def test_config_json_as_the_kubelet_reads_it(
    text: str, expected: dict[str, tuple[str, str, str]]
) -> None:
    config = parse_config_json(text.encode())
    assert config.format == CONFIG_JSON
    got = {k: (e.username, e.password, e.email) for k, e in config.auths.items()}
    assert got == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ('{"auths": {"r": {"username": "u"}},}', "not valid JSON"),
        ("[]", "a docker config.json must be a JSON object, not array"),
        ('"x"', "a docker config.json must be a JSON object, not string"),
        ('{"auths": []}', "auths must be an object mapping registry addresses"),
        ('{"auths": "x"}', "auths must be an object mapping registry addresses"),
        ('{"auths": {"quay.io": "x"}}', 'auths["quay.io"] must be an object'),
        ('{"auths": {"quay.io": [1]}}', 'auths["quay.io"] must be an object'),
        ('{"auths": {"quay.io": {"username": 5}}}', 'auths["quay.io"].username must be a string'),
        ('{"auths": {"q": {"Password": true}}}', 'auths["q"].Password must be a string, not bool'),
        ('{"auths": {"q": {"auth": {}}}}', 'auths["q"].auth must be a string, not object'),
        ('{"auths": {"q": {"auth": "bm9jb2xvbg=="}}}', 'auths["q"]: the auth field has no'),
        ('{"auths": {"q": {"auth": "%%%"}}}', 'auths["q"]: the auth field is not base64'),
        ('{"HttpHeaders": {"X": 1}}', 'HttpHeaders["X"] must be a string'),
        ('{"HttpHeaders": []}', "HttpHeaders must be an object"),
        ("NaN", "not valid JSON"),
    ],
)
def test_config_json_errors_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(DockerConfigError) as e:
        parse_config_json(text.encode())
    assert message in str(e.value)


def test_errors_never_repeat_the_secret() -> None:
    secret_auth = base64.b64encode(b"no-colon-here-hunter2").decode()
    with pytest.raises(DockerConfigError) as e:
        parse_config_json(json.dumps({"auths": {"r": {"auth": secret_auth}}}).encode())
    assert secret_auth not in str(e.value)
    assert "hunter2" not in str(e.value)


def test_docker_extras_are_kept() -> None:
    config = parse_config_json(
        b'{"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop",'
        b' "credHelpers": {"gcr.io": "gcloud", "bad": 1}, "HttpHeaders": {"User-Agent": "a"}}'
    )
    assert config.creds_store == "desktop"
    assert config.cred_helpers == {"gcr.io": "gcloud"}
    assert config.http_headers == {"User-Agent": "a"}


def test_identity_token_is_read_but_not_a_password() -> None:
    config = parse_config_json(b'{"auths": {"r": {"identitytoken": "tok"}}}')
    entry = config.auths["r"]
    assert entry.identity_token == "tok"
    assert not entry.has_password
    assert "tok" not in repr(entry)


def test_legacy_dockercfg() -> None:
    config = parse_dockercfg(
        ('{"https://index.docker.io/v1/": {"auth": "' + b64("u:p") + '", "email": "e"}}').encode()
    )
    assert config.format == DOCKERCFG
    assert config.auths == {"https://index.docker.io/v1/": AuthEntry("u", "p", "e")}
    with pytest.raises(DockerConfigError, match='entry "x" must be an object'):
        parse_dockercfg(b'{"x": 1}')


@pytest.mark.parametrize(
    ("text", "filename", "fmt", "registries"),
    [
        ('{"auths": {"a": {}}}', "config.json", CONFIG_JSON, ["a"]),
        ('{"Auths": {"a": {}}}', "anything", CONFIG_JSON, ["a"]),
        ('{"credsStore": "pass"}', "x.json", CONFIG_JSON, []),
        ('{"credHelpers": {"gcr.io": "gcloud"}}', "x.json", CONFIG_JSON, []),
        ('{"quay.io": {"username": "u"}}', "anything", DOCKERCFG, ["quay.io"]),
        # A file named .dockercfg is always the legacy format.
        ('{"auths": {"username": "u"}}', "/home/me/.dockercfg", DOCKERCFG, ["auths"]),
    ],
)
def test_format_detection(text: str, filename: str, fmt: str, registries: list[str]) -> None:
    config = parse_file(text.encode(), filename)
    assert config.format == fmt
    assert list(config.auths) == registries


def test_encoding_is_kubectls() -> None:
    payload = encode_config_json({"r.io:5000": AuthEntry("u", "p&<>:x", "")})
    assert payload == (
        b'{"auths":{"r.io:5000":{"username":"u","password":"p\\u0026\\u003c\\u003e:x",'
        b'"auth":"dTpwJjw+Ong="}}}'
    )
    assert encode_auth("u", "p&<>:x") == "dTpwJjw+Ong="


def test_encoding_sorts_registries_by_bytes_and_omits_empty_fields() -> None:
    payload = encode_config_json(
        {
            "quay.io": AuthEntry("q", "p", "e@x"),
            "Quay.io": AuthEntry("Q", "p"),
            "https://index.docker.io/v1/": AuthEntry("h", "p"),
        },
        {"User-Agent": "pk"},
    )
    doc = json.loads(payload)
    assert list(doc["auths"]) == ["Quay.io", "https://index.docker.io/v1/", "quay.io"]
    assert list(doc["auths"]["quay.io"]) == ["username", "password", "email", "auth"]
    assert list(doc["auths"]["Quay.io"]) == ["username", "password", "auth"]
    assert doc["HttpHeaders"] == {"User-Agent": "pk"}
    assert b" " not in payload


def test_written_files_read_back() -> None:
    auths = {"a.io": AuthEntry("u\u00e9", 'p:w\n"', "m"), "b.io:1": AuthEntry("x", "y")}
    assert parse_config_json(encode_config_json(auths)).auths == auths
    assert parse_dockercfg(encode_dockercfg(auths)).auths == auths


# --------------------------------------------------------------------------- merging logins

_LOGIN = b'{"auths":{"quay.io":{"username":"u","password":"p","auth":"dTpw"}}}'


@pytest.mark.parametrize(
    ("current", "auths_key", "added", "replaced", "shadowed"),
    [
        (None, "auths", ["quay.io"], [], {}),
        (b"  \n", "auths", ["quay.io"], [], {}),  # empty, as docker reads it: nothing in it
        (b'{"Auths": {"quay.io": {}}}', "Auths", [], ["quay.io"], {}),  # Go ignores case
        (b'{"credsStore": "desktop"}', "auths", ["quay.io"], [], {"quay.io": "desktop"}),
        (
            b'{"credsStore": "desktop", "credHelpers": {"quay.io": "pass"}}',
            "auths",
            ["quay.io"],
            [],
            {"quay.io": "pass"},
        ),
        (b'{"credHelpers": {"gcr.io": "gcloud"}}', "auths", ["quay.io"], [], {}),
    ],
)
def test_merge_logins(
    current: bytes | None,
    auths_key: str,
    added: list[str],
    replaced: list[str],
    shadowed: dict[str, str],
) -> None:
    merged = dockerconfig.merge_logins(dockerconfig.config_to_merge(current), _LOGIN)
    assert (merged.added, merged.replaced, merged.shadowed) == (added, replaced, shadowed)
    doc = json.loads(merged.data)
    assert doc[auths_key]["quay.io"] == json.loads(_LOGIN)["auths"]["quay.io"]
    assert merged.data.endswith(b"}\n")


@pytest.mark.parametrize(
    ("current", "says"),
    [
        (b"[]", "is not a JSON object, so it is not a docker config.json"),
        (b'{"auths": []}', "auths is not a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"auths": {"\xff": {}}}', "not valid JSON"),
    ],
)
def test_merge_refuses_what_is_not_a_config(current: bytes, says: str) -> None:
    with pytest.raises(dockerconfig.DockerConfigError, match=says):
        dockerconfig.config_to_merge(current)
