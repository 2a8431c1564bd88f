""" "Can this pull?": the kubelet's credentials for an image, tried against the registry.

The candidates come in the kubelet's order (keyring lookup, foundation
issue); like the kubelet, the check stops at the first that works unless
asked to try them all, and with no candidate it pulls anonymously.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pullkeeper.core import oci, pullpolicy
from pullkeeper.core.egress import EgressPolicy
from pullkeeper.core.keyring import Credential
from pullkeeper.core.reference import InvalidReference, Reference, parse_normalized_named
from pullkeeper.registry.auth import Login
from pullkeeper.registry.client import TLS, Fetched, Registry, api_host
from pullkeeper.registry.errors import Cause, RegistryError
from pullkeeper.registry.pool import RegistryPool

__all__ = [
    "Attempt",
    "Candidate",
    "CheckInputError",
    "Report",
    "candidate",
    "candidates_from_keyring",
    "check",
    "check_many",
    "parse_image",
    "parse_platform",
    "tls",
    "trusting",
]


class CheckInputError(ValueError):
    """An image or platform the check cannot start from."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A credential to try, and how to name it in the report (never its secret)."""

    source: str
    registry: str  # the address it is stored under
    login: Login
    credential_id: str | None = None


@dataclass
class Attempt:
    source: str
    registry: str
    username: str
    ok: bool
    credential_id: str | None = None
    error: RegistryError | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "registry": self.registry,
            "username": self.username,
            "credential_id": self.credential_id,
            "ok": self.ok,
            "cause": str(self.error.cause) if self.error else None,
            "message": self.error.message if self.error else None,
        }


@dataclass
class Report:
    image: str
    reference: str
    registry: str
    repository: str
    attempts: list[Attempt] = field(default_factory=list)
    not_tried: int = 0
    untried: list[str] = field(default_factory=list)  # the sources of those, in order
    digest: str | None = None
    media_type: str | None = None
    platforms: list[str] = field(default_factory=list)
    platform: str | None = None
    platform_available: bool | None = None
    platform_digest: str | None = None
    pull_policy: str = ""
    error: RegistryError | None = None
    from_node: bool = False  # the kubelet uses the node's copy; the registry is not asked

    @property
    def ok(self) -> bool:
        if self.from_node:
            return True
        return any(a.ok for a in self.attempts) and self.platform_available is not False

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "reference": self.reference,
            "registry": self.registry,
            "repository": self.repository,
            "ok": self.ok,
            "attempts": [a.as_dict() for a in self.attempts],
            "not_tried": self.not_tried,
            "untried": self.untried,
            "digest": self.digest,
            "media_type": self.media_type,
            "platforms": self.platforms,
            "platform": self.platform,
            "platform_available": self.platform_available,
            "platform_digest": self.platform_digest,
            "pull_policy": self.pull_policy,
            "from_node": self.from_node,
            "error": self.error.as_dict() if self.error else None,
        }


def candidate(
    source: str,
    registry: str,
    username: str = "",
    password: str = "",
    *,
    identity_token: str | None = None,
    credential_id: str | None = None,
) -> Candidate:
    """A credential to try: a user name and password, or an identity (refresh) token."""
    login = Login(identity_token=identity_token) if identity_token else Login(username, password)
    return Candidate(source, registry, login, credential_id)


def tls(
    ca_file: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    insecure: bool = False,
) -> TLS:
    """How to reach a registry: an extra CA, a client certificate, or no verification."""
    return TLS(ca_file, client_cert, client_key, insecure)


def trusting(candidate: Candidate, token_hosts: Sequence[str]) -> Candidate:
    """The candidate whose login may also go to these token hosts."""
    if not token_hosts:
        return candidate
    hosts = tuple(dict.fromkeys((*candidate.login.token_hosts, *token_hosts)))
    return replace(candidate, login=replace(candidate.login, token_hosts=hosts))


def candidates_from_keyring(matches: Sequence[Credential]) -> list[Candidate]:
    return [Candidate(m.source, m.registry, Login(m.username, m.password)) for m in matches]


def parse_image(image: str) -> Reference:
    try:
        return parse_normalized_named(image)
    except InvalidReference as e:
        raise CheckInputError(f"{image!r} is not a valid image reference: {e}") from None


def parse_platform(text: str | None) -> oci.Platform | None:
    if not text:
        return None
    try:
        return oci.Platform.parse(text)
    except ValueError as e:
        raise CheckInputError(str(e)) from None


def _platforms(registry: Registry, ref: Reference, fetched: Fetched) -> list[oci.Platform]:
    if fetched.manifest.is_index:
        return fetched.manifest.platforms
    config = fetched.manifest.config
    if config is None:
        return []
    found = oci.config_platform(registry.get_blob(ref.path, config.digest))
    return [found] if found else []


def check(
    image: str,
    candidates: Sequence[Candidate],
    tls_for: Callable[[str], TLS],
    *,
    platform: str | None = None,
    pull_policy: str | None = None,
    always_pull: bool = False,
    try_all: bool = False,
    allowed: Callable[[Reference], str | None] | None = None,
    pool: RegistryPool | None = None,
    on_node: bool = False,
    egress: EgressPolicy | None = None,
) -> Report:
    """Try the candidates as the kubelet would; the report says what worked and why not.

    `allowed` returns a reason when policy forbids the image's registry; the
    registry is then not contacted. Nor is it when the kubelet would not pull:
    with imagePullPolicy Never, or IfNotPresent and the image `on_node` already.
    """
    ref = parse_image(image)
    wanted = parse_platform(platform)
    reference = ref.digest or ref.tag or "latest"
    report = Report(
        image=image,
        reference=str(ref) if (ref.tag or ref.digest) else f"{ref}:latest",
        registry=ref.domain,
        repository=ref.path,
        platform=str(wanted) if wanted else None,
        pull_policy=pullpolicy.effective_pull_policy(image, pull_policy, always_pull=always_pull),
    )
    reason = allowed(ref) if allowed else None
    if reason:
        report.error = RegistryError(Cause.NOT_ALLOWED, reason)
        return report
    if report.pull_policy == pullpolicy.NEVER and not on_node:
        report.error = RegistryError(
            Cause.NEVER_PULLED,
            "imagePullPolicy is Never and the image is not on the node: the kubelet does not "
            "pull it and the pod fails with ErrImageNeverPull; put the image on the node first "
            "(if it is there, say so with --on-node), or let the container pull",
        )
        return report
    if on_node and report.pull_policy != pullpolicy.ALWAYS:
        report.from_node = True  # the kubelet runs the node's copy, credentials or not
        return report
    tls = tls_for(api_host(ref.domain))
    tries = list(candidates) or [Candidate("anonymous", ref.domain, Login())]
    for i, candidate in enumerate(tries):
        attempt = Attempt(
            candidate.source,
            candidate.registry,
            candidate.login.username,
            ok=False,
            credential_id=candidate.credential_id,
        )
        report.attempts.append(attempt)
        try:
            with _client(pool, ref.domain, candidate.login, tls, egress) as registry:
                fetched = registry.get_manifest(ref.path, reference)
                attempt.ok = True
                if report.digest is None:
                    _describe(report, registry, ref, fetched, wanted)
        except RegistryError as e:
            attempt.error = e
            if e.cause in (Cause.DNS, Cause.REFUSED, Cause.TLS, Cause.TLS_UNTRUSTED):
                # The registry cannot be reached at all: every other credential would fail alike.
                report.error = e
                report.untried = [c.source for c in tries[i + 1 :]]
                report.not_tried = len(report.untried)
                break
        if attempt.ok and not try_all:
            report.untried = [c.source for c in tries[i + 1 :]]
            report.not_tried = len(report.untried)
            break
    if not any(a.ok for a in report.attempts) and report.error is None and report.attempts:
        report.error = report.attempts[-1].error
    return report


@contextmanager
def _client(
    pool: RegistryPool | None, host: str, login: Login, tls: TLS, egress: EgressPolicy | None
) -> Iterator[Registry]:
    """A pooled client (kept for the next check), or one of its own closed after this one."""
    if pool is not None:
        yield pool.get(host, login, tls)
        return
    with Registry(host, login, tls, egress=egress) as registry:
        yield registry


def check_many(
    images: Sequence[str],
    candidates_for: Callable[[str], Sequence[Candidate]],
    tls_for: Callable[[str], TLS],
    *,
    jobs: int = 8,
    pool: RegistryPool | None = None,
    **options: Any,
) -> list[Report]:
    """check() of many images at once, sharing connections and tokens; reports in order."""
    own = pool is None
    shared = pool or RegistryPool(egress=options.get("egress"))
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as executor:
            return list(
                executor.map(
                    lambda image: check(
                        image, candidates_for(image), tls_for, pool=shared, **options
                    ),
                    images,
                )
            )
    finally:
        if own:
            shared.close()


def _describe(
    report: Report,
    registry: Registry,
    ref: Reference,
    fetched: Fetched,
    wanted: oci.Platform | None,
) -> None:
    report.digest, report.media_type = fetched.digest, fetched.media_type
    platforms = _platforms(registry, ref, fetched)
    report.platforms = [str(p) for p in platforms]
    if wanted is None:
        return
    report.platform_available = any(wanted.matches(p) for p in platforms)
    if not report.platform_available:
        has = ", ".join(report.platforms) or "no platform information"
        report.error = RegistryError(
            Cause.NOT_FOUND, f"{report.reference} has no {wanted} image (it has: {has})"
        )
    if fetched.manifest.is_index:
        for entry in fetched.manifest.manifests:
            if entry.platform is not None and wanted.matches(entry.platform):
                report.platform_digest = entry.digest
                break
    elif report.platform_available:
        report.platform_digest = fetched.digest
