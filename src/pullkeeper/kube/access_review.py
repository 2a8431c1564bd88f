"""Asking a cluster who pullkeeper is there: the API server's version (GET /version) and,
one SelfSubjectAccessReview per verb and resource, which of the needed permissions its
account lacks (what `kubectl auth can-i` asks)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview

from pullkeeper.kube.api import Access, client_for, translated

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


def probe(access: Access, needed: Iterable[Permission], *, timeout: float = 10.0) -> Probe:
    """The server's version and the needed permissions it denies; a KubeError when it cannot
    be asked (unreachable, bad credentials, TLS)."""
    client = client_for(access, timeout=timeout)
    http = client._client._client  # lightkube's httpx client, with the kubeconfig's auth

    def version() -> dict[str, Any]:
        answer = http.get("/version")
        if answer.status_code >= 400:
            raise ApiError(request=answer.request, response=answer)
        found: dict[str, Any] = answer.json()
        return found

    def allowed(p: Permission) -> bool:
        review = SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(
                resourceAttributes=ResourceAttributes(
                    group=p.group, resource=p.resource, verb=p.verb
                )
            )
        )
        done = client.create(review)
        return bool(done.status and done.status.allowed)

    try:
        found = translated(version, "asking the API server's version")
        missing = tuple(
            p
            for p in needed
            if not translated(
                lambda p=p: allowed(p),  # type: ignore[misc]
                "asking what pullkeeper may do",
                "create",
                "selfsubjectaccessreviews",
            )
        )
    finally:
        client.close()
    return Probe(str(found.get("gitVersion", "")), missing)
