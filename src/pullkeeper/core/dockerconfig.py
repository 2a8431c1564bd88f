"""Docker credential files: `config.json` and the legacy `.dockercfg`.

Reading follows the kubelet (pkg/credentialprovider/config.go), because what
matters is what the kubelet will accept: Go's decoder (case-insensitive field
names, last duplicate wins, unknown fields ignored, a repeated map merges), and
an `auth` field that, when present, replaces username and password. Writing
follows kubectl, byte for byte.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pullkeeper.core.go import base64 as gob64
from pullkeeper.core.go import json as gojson

CONFIG_JSON = "config.json"
DOCKERCFG = "dockercfg"

_AUTH_FORMAT = "must be formatted as base64(username:password)"
# What Go's strings.TrimSpace removes (unicode.IsSpace); Python's strip() also
# removes \x1c-\x1f.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


class DockerConfigError(ValueError):
    """A credential file the kubelet would refuse; the message names the bad entry."""


@dataclass(frozen=True, slots=True)
class AuthEntry:
    """One registry entry as the kubelet reads it, plus what docker adds."""

    username: str = ""
    password: str = field(default="", repr=False)
    email: str = ""
    # Docker keeps OAuth refresh tokens here; the kubelet cannot use them.
    identity_token: str = field(default="", repr=False)

    @property
    def has_password(self) -> bool:
        return self.password != ""


@dataclass(slots=True)
class DockerConfig:
    """A decoded credential file."""

    format: str
    auths: dict[str, AuthEntry]
    http_headers: dict[str, str] = field(default_factory=dict)
    creds_store: str = ""
    cred_helpers: dict[str, str] = field(default_factory=dict)


def decode_auth(value: str) -> tuple[str, str]:
    """The kubelet's decodeDockerConfigFieldAuth; the error never repeats the value."""
    try:
        if value.strip(_GO_SPACE).endswith("="):
            decoded = gob64.std_decode(value)
        else:
            decoded = gob64.raw_std_decode(value)
    except gob64.CorruptInput as e:
        raise DockerConfigError(f"the auth field is not base64 ({e}); it {_AUTH_FORMAT}") from None
    text = decoded.decode("utf-8", "surrogateescape")
    user, colon, password = text.partition(":")
    if not colon:
        raise DockerConfigError(f"the auth field has no ':' once decoded; it {_AUTH_FORMAT}")
    return user, password


class InvalidUsername(ValueError):
    """A registry user name an `auth` field cannot carry; the message says what to change."""


_NAMED_CONTROLS = {"\n": "a line feed (\\n)", "\r": "a carriage return (\\r)", "\t": "a tab"}


def check_username(username: str) -> None:
    """Refuse a user name that `base64(username:password)` would not give back.

    Docker, the kubelet and registries split the decoded `auth` field at its first ':',
    so a ':' in the user name moves the rest of it into the password. Control characters
    and line separators are no part of any registry's user names; in a header, a log line
    or a terminal they start a new line or rewrite one. The message never repeats the name.
    """
    if ":" in username:
        raise InvalidUsername(
            "a registry user name cannot contain ':' (docker splits the auth field at the "
            "first ':', and HTTP basic auth allows none in a user name); if you pasted "
            "user:password, the part after ':' goes in the password"
        )
    for position, char in enumerate(username, 1):
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            name = _NAMED_CONTROLS.get(char, f"U+{ord(char):04X}")
            raise InvalidUsername(
                "a registry user name cannot contain control characters or line breaks; "
                f"character {position} is {name}: type the user name again on one line"
            )


def _where(path: list[str]) -> str:
    return "".join(path)


def _string(value: Any, path: list[str]) -> str | None:
    """A Go string field: null leaves it unchanged, anything but a string is an error."""
    if value is None or isinstance(value, str):
        return value
    raise DockerConfigError(f"{_where(path)} must be a string, not {gojson.type_name(value)}")


def _entry(value: Any, path: list[str]) -> AuthEntry:
    if value is None:
        return AuthEntry()
    if not isinstance(value, gojson.Members):
        raise DockerConfigError(
            f"{_where(path)} must be an object with username, password, email or auth, "
            f"not {gojson.type_name(value)}"
        )
    fields: dict[str, str] = {}
    for key, member in value:
        name = gojson.fold(key)
        if name in ("USERNAME", "PASSWORD", "EMAIL", "AUTH"):
            s = _string(member, [*path, "." + key])
            if s is not None:
                fields[name] = s
        elif name == "IDENTITYTOKEN" and isinstance(member, str):
            fields[name] = member
    username, password = fields.get("USERNAME", ""), fields.get("PASSWORD", "")
    if fields.get("AUTH"):
        try:
            username, password = decode_auth(fields["AUTH"])
        except DockerConfigError as e:
            raise DockerConfigError(f"{_where(path)}: {e}") from None
    return AuthEntry(username, password, fields.get("EMAIL", ""), fields.get("IDENTITYTOKEN", ""))


def _auths(
    value: Any, into: dict[str, AuthEntry] | None, path: list[str]
) -> dict[str, AuthEntry] | None:
    """A Go map[string]DockerConfigEntry: null resets it, a repeated object merges into it."""
    if value is None:
        return None
    if not isinstance(value, gojson.Members):
        raise DockerConfigError(
            f"{_where(path) or 'the file'} must be an object mapping registry addresses "
            f"to credentials, not {gojson.type_name(value)}"
        )
    result = {} if into is None else into
    for key, member in value:
        label = f"[{gojson.encode_string(key)}]" if path else f"entry {gojson.encode_string(key)}"
        result[key] = _entry(member, [*path, label])
    return result


def _string_map(value: Any, into: dict[str, str], path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, gojson.Members):
        raise DockerConfigError(f"{path} must be an object, not {gojson.type_name(value)}")
    for key, member in value:
        s = _string(member, [f"{path}[{gojson.encode_string(key)}]"])
        into[key] = s or ""
    return into


def _load(data: bytes | str) -> Any:
    try:
        return gojson.loads(data)
    except gojson.JSONSyntaxError as e:
        raise DockerConfigError(f"not valid JSON: {e}") from None


def parse_config_json(data: bytes | str) -> DockerConfig:
    """A `config.json` (`{"auths": {...}}`), read as the kubelet reads it."""
    return _config_json(_load(data))


def _config_json(doc: Any) -> DockerConfig:
    config = DockerConfig(CONFIG_JSON, {})
    if doc is None:
        return config
    if not isinstance(doc, gojson.Members):
        raise DockerConfigError(
            f"a docker config.json must be a JSON object, not {gojson.type_name(doc)}"
        )
    auths: dict[str, AuthEntry] | None = None
    for key, value in doc:
        name = gojson.fold(key)
        if name == "AUTHS":
            auths = _auths(value, auths, ["auths"])
        elif name == "HTTPHEADERS":
            config.http_headers = _string_map(value, config.http_headers, "HttpHeaders")
        # Docker's own settings: the kubelet ignores them, so never an error here.
        elif name == "CREDSSTORE" and isinstance(value, str):
            config.creds_store = value
        elif name == "CREDHELPERS" and isinstance(value, gojson.Members):
            config.cred_helpers.update((k, v) for k, v in value if isinstance(v, str))
    config.auths = auths or {}
    return config


def parse_dockercfg(data: bytes | str) -> DockerConfig:
    """A legacy `.dockercfg`: registry addresses straight to credentials."""
    return DockerConfig(DOCKERCFG, _auths(_load(data), None, []) or {})


_CONFIG_JSON_KEYS = frozenset({"AUTHS", "CREDSSTORE", "CREDHELPERS", "HTTPHEADERS"})


def parse_file(data: bytes | str, filename: str = "") -> DockerConfig:
    """A raw credential file: `.dockercfg` by name, else config.json when it looks like one."""
    doc = _load(data)
    if filename.rsplit("/", 1)[-1] == ".dockercfg":
        return DockerConfig(DOCKERCFG, _auths(doc, None, []) or {})
    if isinstance(doc, gojson.Members) and any(gojson.fold(k) in _CONFIG_JSON_KEYS for k, _ in doc):
        return _config_json(doc)
    return DockerConfig(DOCKERCFG, _auths(doc, None, []) or {})


def encode_auth(username: str, password: str) -> str:
    """kubectl's encodeDockerConfigFieldAuth."""
    return gob64.std_encode((username + ":" + password).encode("utf-8", "surrogateescape"))


def _go_sorted(keys: Iterable[str]) -> list[str]:
    # Go's json.Marshal writes map keys in byte order.
    return sorted(keys, key=lambda k: k.encode("utf-8", "surrogateescape"))


def _encode_entry(entry: AuthEntry) -> str:
    members = [
        ("username", entry.username),
        ("password", entry.password),
        ("email", entry.email),
        ("auth", encode_auth(entry.username, entry.password)),
    ]
    return (
        "{"
        + ",".join(f"{gojson.encode_string(k)}:{gojson.encode_string(v)}" for k, v in members if v)
        + "}"
    )


def _encode_auths(auths: Mapping[str, AuthEntry]) -> str:
    return (
        "{"
        + ",".join(
            f"{gojson.encode_string(k)}:{_encode_entry(auths[k])}" for k in _go_sorted(auths)
        )
        + "}"
    )


def encode_config_json(
    auths: Mapping[str, AuthEntry], http_headers: Mapping[str, str] | None = None
) -> bytes:
    """`{"auths":{...}}` exactly as kubectl create secret docker-registry writes it."""
    out = '{"auths":' + _encode_auths(auths)
    if http_headers:
        out += (
            ',"HttpHeaders":{'
            + ",".join(
                f"{gojson.encode_string(k)}:{gojson.encode_string(http_headers[k])}"
                for k in _go_sorted(http_headers)
            )
            + "}"
        )
    return (out + "}").encode("utf-8", "surrogateescape")


def encode_dockercfg(auths: Mapping[str, AuthEntry]) -> bytes:
    """A legacy `.dockercfg` in the same encoding."""
    return _encode_auths(auths).encode("utf-8", "surrogateescape")


# Merging logins into someone's own config.json, as `docker login` updates it: every other
# entry and setting kept, in its order; the file indented with tabs, as docker writes it.


@dataclass(frozen=True, slots=True)
class Merged:
    """A config.json with logins merged in: its bytes, the registries written (each new or
    replaced), and those whose login docker takes from a credential helper instead."""

    data: bytes
    added: list[str]
    replaced: list[str]
    # registry -> the helper docker asks for it (credHelpers[registry], else credsStore).
    shadowed: dict[str, str]


def _field(doc: dict[str, Any], name: str) -> str:
    """The key docker reads as `name` (Go's decoder ignores case; the last one wins)."""
    found = [k for k in doc if k.lower() == name.lower()]
    return found[-1] if found else name


def _helper_for(doc: dict[str, Any], registry: str) -> str:
    helpers = doc.get(_field(doc, "credHelpers"))
    host = registry.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if isinstance(helpers, dict):
        for key in (registry, host):
            if isinstance(helpers.get(key), str) and helpers[key]:
                return str(helpers[key])
    store = doc.get(_field(doc, "credsStore"))
    return store if isinstance(store, str) else ""


def _json_document(data: bytes) -> Any:
    """JSON as plain values: a file written back must keep what it held, as it held it."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DockerConfigError(f"not valid JSON: {e}") from None


def config_to_merge(current: bytes | None) -> dict[str, Any]:
    """The config.json `current` (None: no file yet) as a document logins can merge into."""
    # An empty file is a config with nothing in it, as docker reads one.
    doc: Any = {} if current is None or not current.strip() else _json_document(current)
    if not isinstance(doc, dict):
        raise DockerConfigError("is not a JSON object, so it is not a docker config.json")
    auths_key = _field(doc, "auths")
    if not isinstance(doc.setdefault(auths_key, {}), dict):
        raise DockerConfigError(f"{auths_key} is not a JSON object")
    return doc


def merge_logins(doc: dict[str, Any], logins: bytes) -> Merged:
    """The config.json document (config_to_merge's) with each registry of `logins` (a
    .dockerconfigjson) written into its `auths`, replacing that registry's entry only."""
    auths = doc[_field(doc, "auths")]
    incoming = _json_document(logins)
    if not isinstance(incoming, dict) or not isinstance(incoming.get("auths"), dict):
        raise DockerConfigError("the logins to merge are not a .dockerconfigjson")
    added: list[str] = []
    replaced: list[str] = []
    shadowed: dict[str, str] = {}
    for registry, entry in incoming["auths"].items():
        (replaced if registry in auths else added).append(registry)
        auths[registry] = entry
        if helper := _helper_for(doc, registry):
            shadowed[registry] = helper
    data = json.dumps(doc, indent="\t", ensure_ascii=False).encode("utf-8") + b"\n"
    return Merged(data, added, replaced, shadowed)
