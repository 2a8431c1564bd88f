"""Use cases on credential files: read them, resolve an image against them, build Secrets."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pullkeeper.core import dockerconfig, manifest
from pullkeeper.core import secret as ksecret
from pullkeeper.core.dockerconfig import AuthEntry, DockerConfig, DockerConfigError
from pullkeeper.core.go import json as gojson
from pullkeeper.core.keyring import Credential, Keyring, lookup_union
from pullkeeper.core.reference import InvalidReference, Reference, parse_normalized_named
from pullkeeper.files import write_atomic
from pullkeeper.node import credhelpers

__all__ = [
    "Decoded",
    "HelperLogin",
    "Imported",
    "InputError",
    "Resolution",
    "decode",
    "docker_registry_secret",
    "dumps_secret",
    "helper_login",
    "import_config",
    "merge_into",
    "resolve",
    "resolve_content",
]


class InputError(ValueError):
    """Input the user must fix; the message says which file and what is wrong."""


@dataclass(frozen=True, slots=True)
class _Source:
    """One credential file, as one imagePullSecret would contribute it."""

    label: str
    type: str
    config: DockerConfig
    ignored: str = ""  # why the kubelet passes over this Secret, when it does


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


def _is_manifest(doc: Any) -> bool:
    return isinstance(doc, gojson.Members) and any(k == "kind" for k, _ in doc)


def _secret_sources(path: str, text: str, json_error: str | None = None) -> list[_Source]:
    try:
        docs = manifest.load_documents(text)
    except manifest.ManifestError as e:
        raise InputError(f"{path}: not a docker config or a Secret manifest: {e}") from None
    if not docs or not all(isinstance(d, dict) and "kind" in d for d in docs):
        if json_error:
            raise InputError(f"{path}: not valid JSON ({json_error}), nor a Secret manifest")
        raise InputError(f"{path}: not a docker config.json, .dockercfg or Secret manifest")
    sources = []
    for i, doc in enumerate(docs):
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        label = path if len(docs) == 1 else f"{path}#{i} ({name})"
        try:
            payload = ksecret.read_secret(doc)
        except ksecret.IgnoredSecret as e:
            nothing = DockerConfig(dockerconfig.CONFIG_JSON, {})
            sources.append(_Source(label, str(doc.get("type") or "Opaque"), nothing, str(e)))
            continue
        except (ksecret.SecretError, DockerConfigError) as e:
            which = f"Secret {name!r}" if len(docs) > 1 else "Secret"
            raise InputError(f"{path}: {which}: {e}") from None
        sources.append(_Source(label, payload.type, payload.config))
    return sources


def _load_sources(path: str) -> list[_Source]:
    """The credential files in path: a raw config.json or .dockercfg, or Secret manifests."""
    return _parse_sources(_read(path), path)


def _parse_sources(data: bytes, path: str) -> list[_Source]:
    """The sources in a file's content (an upload, say), as _load_sources finds them; path names
    the file in messages."""
    try:
        doc = gojson.loads(data)
    except gojson.JSONSyntaxError as e:
        return _secret_sources(path, data.decode("utf-8", "replace"), str(e))
    if _is_manifest(doc):
        return _secret_sources(path, data.decode("utf-8", "replace"))
    try:
        config = dockerconfig.parse_file(data, Path(path).name)
    except DockerConfigError as e:
        raise InputError(f"{path}: {e}") from None
    type_ = (
        ksecret.TYPE_DOCKERCFG
        if config.format == dockerconfig.DOCKERCFG
        else ksecret.TYPE_DOCKERCONFIGJSON
    )
    return [_Source(path, type_, config)]


def _load_one(path: str) -> _Source:
    sources = _load_sources(path)
    if len(sources) != 1:
        raise InputError(f"{path}: holds {len(sources)} Secrets; give a file with one")
    if sources[0].ignored:
        raise InputError(f"{path}: Secret: {sources[0].ignored}")
    return sources[0]


@dataclass(slots=True)
class Resolution:
    image: str
    repository: str
    matches: list[Credential]  # the pod's, then the node's
    warnings: list[str] = field(default_factory=list)
    node_from: int = 0  # matches[node_from:] are the node's config.json's

    def from_node(self, i: int) -> bool:
        return i >= self.node_from


def _keyring(sources: Sequence[_Source], warnings: list[str]) -> Keyring:
    keyring = Keyring()
    for source in sources:
        if source.ignored:
            warnings.append(f"{source.label}: {source.ignored}; it counts as no credentials")
            continue
        config = source.config
        if config.creds_store or config.cred_helpers:
            warnings.append(
                f"{source.label}: uses credential helpers (credsStore/credHelpers), "
                "which the kubelet never runs; turn it into a Secret with "
                "`pullkeeper secret import`"
            )
        for registry, reason in keyring.add(config.auths.items(), source.label):
            warnings.append(f"{source.label}: the kubelet skips the entry {registry!r}: {reason}")
    return keyring


def _reference(image: str) -> Reference:
    try:
        return parse_normalized_named(image)
    except InvalidReference as e:
        raise InputError(f"{image!r} is not a valid image reference: {e}") from None


def _repository(image: str) -> str:
    return _reference(image).name


def _resolution(
    image: str, repository: str, pod: Sequence[_Source], node: Sequence[_Source] = ()
) -> Resolution:
    warnings: list[str] = []
    pod_keyring, node_keyring = _keyring(pod, warnings), _keyring(node, warnings)
    pod_matches = pod_keyring.lookup(repository)
    matches = lookup_union([pod_keyring, node_keyring], repository)
    return Resolution(image, repository, matches, warnings, node_from=len(pod_matches))


def resolve(
    image: str,
    config_paths: Sequence[str],
    node_config_paths: Sequence[str] = (),
    *,
    normalize: bool = True,
    node_contents: Sequence[tuple[str, bytes]] = (),
) -> Resolution:
    """Which credentials the kubelet would try for image, in its order.

    The --config files are the pod's imagePullSecrets, merged into one keyring
    in order; the node's config files (read from node_config_paths, then given as
    (label, content) in node_contents) form a second keyring tried after it.
    """
    repository = _repository(image) if normalize else image
    pod = [s for p in config_paths for s in _load_sources(p)]
    node = [s for p in node_config_paths for s in _load_sources(p)]
    node += [s for label, content in node_contents for s in _parse_sources(content, label)]
    return _resolution(image, repository, pod, node)


def resolve_content(image: str, data: bytes, label: str) -> Resolution:
    """resolve() with one file's content (an upload) as the pod's only pull secret."""
    repository = _repository(image)
    return _resolution(image, repository, _parse_sources(data, label))


def docker_registry_secret(
    name: str,
    server: str,
    username: str,
    password: str,
    email: str,
    metadata: ksecret.Metadata,
) -> dict[str, Any]:
    """The Secret `kubectl create secret docker-registry` would make."""
    try:
        return ksecret.docker_registry_secret(
            name,
            server=server,
            username=username,
            password=password,
            email=email,
            metadata=metadata,
        )
    except (ksecret.SecretError, ValueError) as e:
        raise InputError(str(e)) from None


@dataclass(slots=True)
class Imported:
    secret: dict[str, Any]
    registries: list[str]
    warnings: list[str]


def _add_login(
    auths: dict[str, AuthEntry], server: str, entry: AuthEntry, warnings: list[str]
) -> None:
    """Import one registry's login; one whose user name the written auth field could not
    carry is skipped with a warning, so the other registries of the file still come over."""
    try:
        dockerconfig.check_username(entry.username)
    except dockerconfig.InvalidUsername as e:
        warnings.append(f"{server}: {e}; skipped")
        return
    auths[server] = entry


def _from_helper(
    helper: str, server: str, email: str, auths: dict[str, AuthEntry], warnings: list[str]
) -> None:
    try:
        creds = credhelpers.get(helper, server)
    except credhelpers.CredentialHelperError as e:
        raise InputError(str(e)) from None
    if creds is None:
        warnings.append(f"docker-credential-{helper} holds nothing for {server}; skipped")
    elif creds.is_identity_token:
        warnings.append(
            f"{server}: docker-credential-{helper} holds an identity token, which the "
            "kubelet cannot use; skipped (log in with a user name and password or token)"
        )
    else:
        _add_login(auths, server, AuthEntry(creds.username, creds.secret, email), warnings)


def import_config(path: str, name: str, metadata: ksecret.Metadata) -> Imported:
    """One Secret with every registry of a docker config, helpers resolved as docker does."""
    source = _load_one(path)
    config = source.config
    warnings: list[str] = []
    auths: dict[str, AuthEntry] = {}
    if config.creds_store:
        try:
            servers = credhelpers.list_servers(config.creds_store)
        except credhelpers.CredentialHelperError as e:
            raise InputError(str(e)) from None
        for server in servers:
            email = config.auths.get(server, AuthEntry()).email
            _from_helper(config.creds_store, server, email, auths, warnings)
    else:
        for server, entry in config.auths.items():
            if entry.username or entry.password:
                _add_login(auths, server, entry, warnings)
            elif entry.identity_token:
                warnings.append(
                    f"{server}: holds only an identity token, which the kubelet cannot use; skipped"
                )
            else:
                warnings.append(f"{server}: has no credentials in {path}; skipped")
    for server, helper in config.cred_helpers.items():
        email = config.auths.get(server, AuthEntry()).email
        _from_helper(helper, server, email, auths, warnings)
    if not auths:
        raise InputError(f"{path}: no usable registry credentials found")
    imported = DockerConfig(dockerconfig.CONFIG_JSON, auths, config.http_headers)
    try:
        secret = ksecret.config_secret(name, imported, metadata)
    except ValueError as e:
        raise InputError(str(e)) from None
    return Imported(secret, sorted(auths), warnings)


@dataclass(frozen=True, slots=True)
class Decoded:
    type: str
    auths: dict[str, AuthEntry]


def decode(path: str) -> Decoded:
    """The registry entries of a Secret manifest or a raw credential file."""
    source = _load_one(path)
    return Decoded(source.type, source.config.auths)


def dumps_secret(obj: dict[str, Any], output: str) -> str:
    return manifest.to_json(obj) + "\n" if output == "json" else manifest.to_yaml(obj)


@dataclass(frozen=True, slots=True)
class HelperLogin:
    """What a docker credential helper holds for a registry: a user name and password, or an
    identity token (then `username` is empty)."""

    source: str  # docker-credential-NAME
    server: str
    username: str
    secret: str = field(repr=False)
    identity_token: bool


def helper_login(image: str, path: str) -> tuple[HelperLogin | None, list[str]]:
    """docker's own credential for image from the config at path: its credHelpers entry for
    the registry, else its credsStore; none when it names no helper. The warnings say why a
    helper gave nothing."""
    config = _load_one(path).config
    domain = _reference(image).domain
    server = "https://index.docker.io/v1/" if domain == "docker.io" else domain
    helper = config.cred_helpers.get(server) or config.creds_store
    if not helper:
        return None, []
    try:
        found = credhelpers.get(helper, server)
    except credhelpers.CredentialHelperError as e:
        return None, [str(e)]
    if found is None:
        return None, []
    source = f"docker-credential-{helper}"
    if found.is_identity_token:
        return HelperLogin(source, server, "", found.secret, identity_token=True), []
    return HelperLogin(source, server, found.username, found.secret, identity_token=False), []


def merge_into(path: Path, logins: Callable[[], bytes]) -> dockerconfig.Merged:
    """Write the registries of `logins()` (a .dockerconfigjson), asked for once the file is
    known to take them, into the docker config.json at path, keeping everything else in it
    and its mode; a new file is the owner's only (0600), in a directory made the owner's
    only. The file is replaced whole, never half-written; a symbolic link (a dotfiles
    manager's) is kept, and its target replaced."""
    target = path.resolve() if path.is_symlink() else path
    try:
        current: bytes | None = target.read_bytes()
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        current, mode = None, 0o600
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        merged = dockerconfig.merge_logins(dockerconfig.config_to_merge(current), logins())
    except DockerConfigError as e:
        raise InputError(f"{path}: {e}; nothing was written") from None
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(target, merged.data, mode)
        os.chmod(target, mode)  # as it was, whatever the umask took from the new file's
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None
    return merged
