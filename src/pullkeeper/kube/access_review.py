"""Asking a cluster who pullkeeper is there: the API server's version (GET /version) and,
one SelfSubjectAccessReview per verb and resource (several at a time), which of the needed
permissions its account lacks (what `kubectl auth can-i` asks)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview

from pullkeeper.kube.api import Access, KubeError, client_for, http_of, translated

__all__ = ["Permission", "Probe", "probe"]


@dataclass(frozen=True, slots=True, order=True)
class Permission:
    group: str  # "" for the core group
    resource: str
    verb: str

    def __str__(self) -> str:
        where = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {where}"


@dataclass(frozen=True, slots=True)
class Probe:
    version: str  # gitVersion, e.g. v1.34.2
    missing: tuple[Permission, ...]


def probe(
    access: Access,
    needed: Iterable[Permission],
    *,
    timeout: float = 10.0,
    workers: int = 8,
    total: float = 30.0,
) -> Probe:
    """The server's version and the needed permissions it denies; a KubeError when it cannot
    be asked (unreachable, bad credentials, TLS). The reviews are asked `workers` at a time,
    all within `total` seconds (a request thread waits for them)."""
    client = client_for(access, timeout=timeout)
    http = http_of(client)

    def version() -> dict[str, Any]:
        answer = http.get("/version")
        if answer.status_code >= 400:
            raise ApiError(request=answer.request, response=answer)
        try:
            found = answer.json()
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise KubeError(
                "asking the API server's version: the answer is not a Kubernetes API "
                "server's (no JSON version object); check the kubeconfig's server address"
            )
        return found

    def allowed(p: Permission) -> bool:
        review = SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(
                resourceAttributes=ResourceAttributes(
                    group=p.group, resource=p.resource, verb=p.verb
                )
            )
        )
        done = translated(
            lambda: client.create(review),
            "asking what pullkeeper may do",
            "create",
            "selfsubjectaccessreviews",
        )
        return bool(done.status and done.status.allowed)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="access-review")
    try:
        found = translated(version, "asking the API server's version")
        asked = list(needed)
        futures = [pool.submit(allowed, p) for p in asked]
        _, late = wait(futures, timeout=total)
        if late:
            raise KubeError(
                f"asking what pullkeeper may do: the API server did not answer "
                f"{len(late)} of {len(asked)} access reviews within {total:.0f} s; try again"
            )
        missing = tuple(p for p, f in zip(asked, futures, strict=True) if not f.result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        client.close()
    return Probe(str(found.get("gitVersion", "")), missing)
