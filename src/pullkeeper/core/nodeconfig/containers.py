"""containers-image's registry settings, read by CRI-O, podman, skopeo and buildah: a
registries.conf drop-in (containers-registries.conf(5), version 2) with a [[registry]]
per registry of a profile, the CAs in certs.d (containers-certs.d(5)) and the logins in
auth.json (containers-auth.json(5)). Read at each pull: CRI-O reloads registries.conf on
SIGHUP.

A mirror's location is a reference prefix, host[/namespace], that containers-image asks at
/v2/[namespace/]REPOSITORY: a mirror whose registry API containerd asks at /v2 or /v2/NS
(its hosts.toml rule, Mirror.api_path) gets the location that asks the same URLs; any
other mirror has none, and is left out of registries.conf (`left_out` says which, and
why), while the runtimes that can use it still do."""

from __future__ import annotations

import posixpath

import tomlkit

from pullkeeper.core.dockerconfig import encode_config_json
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import Mirror, NodeProfile, ProfileError
from pullkeeper.core.reference import InvalidReference, parse, split_docker_domain

__all__ = ["DROP_IN", "files", "left_out", "mirror_location"]

DROP_IN = "registries.conf.d/50-pullkeeper.conf"


def mirror_location(m: Mirror, where: str) -> str:
    """The mirror as containers-image names it: a reference prefix (host[/namespace]) that
    replaces the registry's in the image's name, which it then asks for under /v2/ (so the
    same URLs as containerd's hosts.toml); ProfileError for a mirror whose API is not under
    /v2/, which containers-image cannot reach."""
    api = m.api_path
    if api != "/v2" and not api.startswith("/v2/"):
        raise ProfileError(
            where,
            f"{m.url!r} serves the registry API under {api}, not under /v2/: containers-image "
            "(CRI-O, podman) cannot use it",
        )
    location = m.host + api[len("/v2") :]
    try:  # containers-image parses the rewritten name as an image reference
        parse(location + "/x")
    except InvalidReference as e:
        raise ProfileError(where, f"{location!r} is not an image name prefix ({e})") from None
    if split_docker_domain(location + "/x")[0] != m.host:
        raise ProfileError(
            where,
            f"containers-image would read {m.host!r} as a Docker Hub namespace: give the "
            "mirror's host a dot or a port",
        )
    return location


def _usable(profile: NodeProfile) -> dict[tuple[int, int], str | ProfileError]:
    """Each mirror's location, or why it has none, by (registry, mirror) index."""
    out: dict[tuple[int, int], str | ProfileError] = {}
    for i, r in enumerate(profile.registries):
        for j, m in enumerate(r.mirrors):
            try:
                out[i, j] = mirror_location(m, f"registries[{i}].mirrors[{j}].url")
            except ProfileError as e:
                out[i, j] = e
    return out


def left_out(profile: NodeProfile) -> list[str]:
    """The profile's mirrors registries.conf cannot hold, one line each saying why."""
    return [
        f"{e.field}: left out of registries.conf: {e.message}"
        for e in _usable(profile).values()
        if isinstance(e, ProfileError)
    ]


def registries_conf(profile: NodeProfile) -> str:
    doc = tomlkit.document()
    entries = tomlkit.aot()
    usable = _usable(profile)
    for i, r in enumerate(profile.registries):
        entry = tomlkit.table()
        entry["location"] = r.host
        # containers-image's insecure means both: plain HTTP allowed, TLS not verified.
        entry["insecure"] = r.insecure is not None
        mirrors = tomlkit.aot()
        for j, m in enumerate(r.mirrors):
            location = usable[i, j]
            if isinstance(location, ProfileError):
                continue
            mirror = tomlkit.table()
            mirror["location"] = location
            other = profile.registry(m.host)
            mirror["insecure"] = m.plain_http or bool(other and other.insecure)
            mirrors.append(mirror)
        if mirrors:
            entry["mirror"] = mirrors
        entries.append(entry)
    doc["registry"] = entries
    return tomlkit.dumps(doc)


def files(profile: NodeProfile, root: str = "/etc/containers") -> list[Rendered]:
    out = [Rendered(posixpath.join(root, DROP_IN), registries_conf(profile).encode())]
    out += [
        Rendered(posixpath.join(root, "certs.d", r.host, "ca.crt"), r.ca_pem.encode())
        for r in profile.registries
        if r.ca_pem
    ]
    if profile.logins:
        out.append(
            Rendered(
                posixpath.join(root, "auth.json"), encode_config_json(profile.logins), secret=True
            )
        )
    return out
