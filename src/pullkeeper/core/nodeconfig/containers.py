"""containers-image's registry settings, read by CRI-O, podman, skopeo and buildah: a
registries.conf drop-in (containers-registries.conf(5), version 2) with a [[registry]]
per registry of a profile, the CAs in certs.d (containers-certs.d(5)) and the logins in
auth.json (containers-auth.json(5)). Read at each pull: CRI-O reloads registries.conf on
SIGHUP."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import tomlkit

from pullkeeper.core.dockerconfig import encode_config_json
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import NodeProfile

__all__ = ["DROP_IN", "files"]

DROP_IN = "registries.conf.d/50-pullkeeper.conf"


def registries_conf(profile: NodeProfile) -> str:
    doc = tomlkit.document()
    entries = tomlkit.aot()
    for r in profile.registries:
        entry = tomlkit.table()
        entry["location"] = r.host
        # containers-image's insecure means both: plain HTTP allowed, TLS not verified.
        entry["insecure"] = r.insecure is not None
        if r.mirrors:
            mirrors = tomlkit.aot()
            for m in r.mirrors:
                parts = urlsplit(m.url)
                mirror = tomlkit.table()
                mirror["location"] = parts.netloc + parts.path
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
