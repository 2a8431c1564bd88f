"""How a node reaches an image under a node profile: the hosts.toml directory containerd reads
for its registry, the mirrors it asks first, in order, and the URL each is asked under, then
the registry itself; how each is trusted; and which of the profile's logins the kubelet
would try, matched as its keyring matches the config.json `node apply` writes.

containerd (hosts.toml) and containers-image (registries.conf, as `node apply` writes it)
ask the same URLs: the mirrors in order, then the registry, the next asked when one fails
(unreachable, refused, not found). Both send the credential the kubelet gives with a pull to
every host they ask: the kubelet names no server with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pullkeeper.core import dockerconfig
from pullkeeper.core.keyring import Credential, Keyring
from pullkeeper.core.nodeconfig import kubelet
from pullkeeper.core.nodeconfig.containerd import server_url
from pullkeeper.core.nodeconfig.profile import NodeProfile, RegistryConfig
from pullkeeper.core.reference import Reference, parse_normalized_named

__all__ = ["Hop", "Route", "node_keyring", "route"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One host the runtime asks for the image: a mirror, or the registry itself."""

    url: str  # the mirror's URL as the profile gives it; the registry's hosts.toml server
    host: str  # host[:port] it connects to
    repository_url: str  # the repository's root: manifests/REF and blobs/DIGEST go under it
    mirror: bool
    override_path: bool = False
    plain_http: bool = False
    skip_verify: bool = False
    ca: bool = False  # checked with the profile's CA for its host

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "host": self.host,
            "repository_url": self.repository_url,
            "override_path": self.override_path,
            "plain_http": self.plain_http,
            "skip_verify": self.skip_verify,
            "ca": self.ca,
        }


@dataclass(frozen=True, slots=True)
class Route:
    image: str
    registry: str  # host[:port] as the image names it, docker.io for Docker Hub
    repository: str  # the path in the registry (library/nginx)
    # The directory under containerd's config_path it reads hosts.toml from, as `node apply`
    # writes it: the registry as the image names it (docker.io, not its API host). containerd
    # looks in HOST_PORT_ first, then HOST:PORT, then _default: a node's own HOST_PORT_
    # directory would be read instead.
    hosts_dir: str
    in_profile: bool  # whether the profile says anything of the registry
    hops: tuple[Hop, ...]  # in the order asked: the mirrors, then the registry
    logins: tuple[Credential, ...]  # the profile's logins the kubelet would try, in order

    @property
    def name(self) -> str:
        """The repository name the kubelet looks credentials up with."""
        return f"{self.registry}/{self.repository}"

    @property
    def mirrors(self) -> tuple[Hop, ...]:
        return self.hops[:-1]

    @property
    def server(self) -> Hop:
        return self.hops[-1]

    def as_dict(self) -> dict[str, Any]:
        """The route as data (the logins are left to the credentials' own listing)."""
        return {
            "registry": self.registry,
            "repository": self.repository,
            "hosts_dir": self.hosts_dir,
            "in_profile": self.in_profile,
            "mirrors": [h.as_dict() for h in self.mirrors],
            "server": self.server.as_dict(),
            # The kubelet's credential goes to every host the runtime asks.
            "credentials_to_mirrors": bool(self.mirrors),
        }


def _repository_url(scheme_host: str, api_path: str, repository: str) -> str:
    return f"{scheme_host}{api_path}/{repository}"


def _mirror_hops(profile: NodeProfile, r: RegistryConfig, repository: str) -> list[Hop]:
    hops = []
    for m in r.mirrors:
        scheme = "http" if m.plain_http else "https"
        own = profile.registry(m.host)  # the mirror's host trusted as the profile says of it
        skip = bool(own and own.insecure == "skip_verify")
        hops.append(
            Hop(
                url=m.url,
                host=m.host,
                repository_url=_repository_url(f"{scheme}://{m.host}", m.api_path, repository),
                mirror=True,
                override_path=m.override_path,
                plain_http=m.plain_http,
                skip_verify=skip,
                ca=bool(own and own.ca_pem) and not skip,
            )
        )
    return hops


def _server_hop(r: RegistryConfig, repository: str) -> Hop:
    url = server_url(r)
    return Hop(
        url=url,
        host=url.partition("://")[2],
        repository_url=_repository_url(url, "/v2", repository),
        mirror=False,
        plain_http=url.startswith("http://"),
        skip_verify=r.insecure == "skip_verify",
        ca=bool(r.ca_pem) and r.insecure is None,
    )


def node_keyring(profile: NodeProfile, source: str) -> Keyring:
    """The kubelet's keyring of the node's config.json as `node apply` writes it (read back as
    the kubelet reads it); empty when the profile has no logins (then none is written)."""
    keyring = Keyring()
    for rendered in kubelet.files(profile):
        config = dockerconfig.parse_file(rendered.content, "config.json")
        keyring.add(config.auths.items(), source)
    return keyring


def route(image: str | Reference, profile: NodeProfile, source: str = "config.json") -> Route:
    """How a node with the profile pulls image: raises InvalidReference when image is not
    one. `source` names the node's config.json in the logins found."""
    ref = image if isinstance(image, Reference) else parse_normalized_named(image)
    r = profile.registry(ref.domain)
    own = r or RegistryConfig(ref.domain)  # not in the profile: the runtime's defaults
    hops = [*_mirror_hops(profile, own, ref.path), _server_hop(own, ref.path)]
    return Route(
        image=str(image),
        registry=ref.domain,
        repository=ref.path,
        hosts_dir=ref.domain,
        in_profile=r is not None,
        hops=tuple(hops),
        logins=tuple(node_keyring(profile, source).lookup(ref.name)),
    )
