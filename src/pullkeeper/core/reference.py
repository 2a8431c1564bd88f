"""Image references, exactly as distribution/reference (v0.6) parses and normalizes them.

Grammar::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain '/'] remote-name
    domain           := host [':' port-number]
    host             := domain-name | IPv4address | \\[ IPv6address \\]
    domain-name      := domain-component ['.' domain-component]*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    port-number      := /[0-9]+/
    path-component   := alpha-numeric [separator alpha-numeric]*
    remote-name      := path-component ['/' path-component]*
    alpha-numeric    := /[a-z0-9]+/
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" hex       (then checked as go-digest does)
    identifier       := /[a-f0-9]{64}/

Error messages are distribution's and go-digest's own text, since that is what
users see in `kubectl describe pod` and container runtime logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

ERR_INVALID_FORMAT = "invalid reference format"
ERR_NAME_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_DIGEST_FORMAT = "invalid checksum digest format"
ERR_DIGEST_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"

_alphanumeric = r"[a-z0-9]+"
_separator = r"(?:[._]|__|[-]+)"
_domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_optional_port = r"(?::[0-9]+)?"
_tag = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"
_digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_ipv6 = r"\[(?:[a-fA-F0-9:]+)\]"
_domain_name = _domain_component + r"(?:\." + _domain_component + ")*"
_host = "(?:" + _domain_name + "|" + _ipv6 + ")"
_domain_and_port = _host + _optional_port
_path_component = _alphanumeric + "(?:" + _separator + _alphanumeric + ")*"
_remote_name = _path_component + "(?:/" + _path_component + ")*"

# distribution matches the whole reference, then splits its name with a second
# anchored expression; both are greedy-first, so one expression with the
# domain and path captured inside gives the same split.
_REFERENCE = re.compile(
    "(?:(" + _domain_and_port + ")/)?(" + _remote_name + ")"
    "(?::(" + _tag + "))?(?:@(" + _digest + "))?"
)
_IDENTIFIER = re.compile("[a-f0-9]{64}")
# go-digest's DigestRegexp, used only to tell an unknown algorithm from a malformed one.
_GO_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX = re.compile("[a-f0-9]+")
# Algorithms a kubelet binary links in, and their hex lengths.
DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(ValueError):
    """A reference distribution would refuse; str() is distribution's message."""


def _go_lower_rune(c: str) -> str:
    if c == "\u0130":
        return "i"
    if "\ud800" <= c <= "\udfff":
        # A byte that is not UTF-8 (carried as a surrogate escape): strings.Map
        # writes utf8.RuneError in its place, so the result differs from the input.
        return "\ufffd"
    return c.lower()


def go_lower(s: str) -> str:
    """strings.ToLower: simple per-rune lowercase mapping, no context."""
    if s.isascii():
        return s.lower()
    return "".join(_go_lower_rune(c) for c in s)


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: domain and path, and an optional tag and digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name, e.g. docker.io/library/nginx."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += ":" + self.tag
        if self.digest is not None:
            s += "@" + self.digest
        return s

    def familiar(self) -> Reference:
        """The short form the docker CLI shows: docker.io and library/ removed."""
        if self.domain != DEFAULT_DOMAIN:
            return self
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in rest:
                path = rest
        return Reference("", path, self.tag, self.digest)

    @property
    def familiar_name(self) -> str:
        return self.familiar().name

    @property
    def familiar_string(self) -> str:
        return str(self.familiar())


def _go_len(s: str) -> int:
    """len() of the Go string s stands for: its UTF-8 bytes, a surrogate escape being one."""
    if s.isascii():
        return len(s)
    escaped = sum(1 for c in s if "\udc80" <= c <= "\udcff")
    return len(s.encode("utf-8", "surrogatepass")) - 2 * escaped


def validate_digest(d: str) -> None:
    """go-digest's Digest.Validate with sha256, sha384 and sha512 available."""
    i = d.find(":")
    if i <= 0 or i + 1 == len(d):
        raise InvalidReference(ERR_DIGEST_FORMAT)
    algorithm, encoded = d[:i], d[i + 1 :]
    size = DIGEST_ALGORITHMS.get(algorithm)
    if size is None:
        if not _GO_DIGEST.fullmatch(d):
            raise InvalidReference(ERR_DIGEST_FORMAT)
        raise InvalidReference(ERR_DIGEST_UNSUPPORTED)
    if _go_len(encoded) != size:
        raise InvalidReference(ERR_DIGEST_LENGTH)
    if not _LOWER_HEX.fullmatch(encoded):
        raise InvalidReference(ERR_DIGEST_FORMAT)


def parse(s: str) -> Reference:
    """reference.Parse: the grammar, without Docker Hub normalization."""
    if s == "":
        raise InvalidReference(ERR_NAME_EMPTY)
    m = _REFERENCE.fullmatch(s)
    if m is None:
        lowered = go_lower(s)
        if lowered != s and _REFERENCE.fullmatch(lowered):
            raise InvalidReference(ERR_NAME_UPPERCASE)
        raise InvalidReference(ERR_INVALID_FORMAT)
    domain, path, tag, digest = m.groups()
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(ERR_NAME_TOO_LONG)
    if digest is not None:
        validate_digest(digest)
    return Reference(domain or "", path, tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    """Split into domain and remainder, defaulting to Docker Hub as distribution does."""
    maybe_domain, slash, maybe_remote = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain or go_lower(maybe_domain) != maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse_normalized_named(s: str) -> Reference:
    """reference.ParseNormalizedNamed: what docker, containerd and the kubelet accept."""
    if len(s) == 64 and _IDENTIFIER.fullmatch(s):
        raise InvalidReference(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_docker_domain(s)
    remote = remainder.partition(":")[0]
    if go_lower(remote) != remote:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    return parse(domain + "/" + remainder)
