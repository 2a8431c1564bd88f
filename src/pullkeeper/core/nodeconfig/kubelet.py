"""The kubelet's own credentials: `config.json` in its root directory (--root-dir, by
default /var/lib/kubelet), the first place it looks (seed 003), in the format it parses
(`{"auths": {...}}`, as kubectl writes a Secret's). Read at each pull the kubelet makes
without credentials of the pod's: no restart."""

from __future__ import annotations

import posixpath

from pullkeeper.core.dockerconfig import encode_config_json
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import NodeProfile

__all__ = ["DEFAULT_ROOT_DIR", "files"]

DEFAULT_ROOT_DIR = "/var/lib/kubelet"


def files(profile: NodeProfile, root_dir: str = DEFAULT_ROOT_DIR) -> list[Rendered]:
    if not profile.logins:
        return []
    path = posixpath.join(root_dir, "config.json")
    return [Rendered(path, encode_config_json(profile.logins), secret=True)]
