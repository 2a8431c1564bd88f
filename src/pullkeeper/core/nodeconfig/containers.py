"""containers-image's registry settings, read by CRI-O, podman, skopeo and buildah: a
registries.conf drop-in (containers-registries.conf(5), version 2) with a [[registry]]
per registry of a profile, the CAs in certs.d (containers-certs.d(5)) and the logins in
auth.json (containers-auth.json(5)). Read at each pull: CRI-O reloads registries.conf on
SIGHUP.

A mirror's location is host[/namespace], asked at /v2/namespace/REPOSITORY: a mirror at a
URL's root, or one whose override_path URL is .../v2/NAMESPACE, is asked what containerd
asks it; a mirror below another path (containerd asks PATH/v2/...) has no such location and
is left out, said by `left_out`."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import tomlkit

from pullkeeper.core.dockerconfig import encode_config_json
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import Mirror, NodeProfile

__all__ = ["DROP_IN", "files", "left_out"]

DROP_IN = "registries.conf.d/50-pullkeeper.conf"


def _location(m: Mirror) -> str | None:
    """The mirror's location, asked as containerd's hosts.toml asks it; None: there is none."""
    parts = urlsplit(m.url)
    path = parts.path.rstrip("/")
    if not path:
        return parts.netloc
    if m.override_path and path.startswith("/v2/"):
        return parts.netloc + path.removeprefix("/v2")
    return None


def left_out(profile: NodeProfile) -> list[str]:
    """The profile's mirrors registries.conf cannot hold, one line each saying why."""
    return [
        f"the mirror {m.url} is left out: containers-image asks a mirror at /v2/[NAMESPACE/], "
        "not below another path (serve it at a URL's root, or give its .../v2/NAMESPACE URL "
        "with override_path)"
        for r in profile.registries
        for m in r.mirrors
        if _location(m) is None
    ]


def registries_conf(profile: NodeProfile) -> str:
    doc = tomlkit.document()
    entries = tomlkit.aot()
    for r in profile.registries:
        entry = tomlkit.table()
        entry["location"] = r.host
        # containers-image's insecure means both: plain HTTP allowed, TLS not verified.
        entry["insecure"] = r.insecure is not None
        usable = [(m, loc) for m in r.mirrors if (loc := _location(m)) is not None]
        if usable:
            mirrors = tomlkit.aot()
            for m, location in usable:
                mirror = tomlkit.table()
                mirror["location"] = location
                other = profile.registry(m.host)
                mirror["insecure"] = m.plain_http or bool(other and other.insecure)
                mirrors.append(mirror)
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
