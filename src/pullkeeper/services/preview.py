"""What a policy would do to one image, before it is saved: the rewrite and the verdict.

The proposed values are checked as `policies.put` checks them, laid over the
parent's (a project's over its cluster's), and judged with the webhook's own
rules (`core/imagepolicy.py`), so the preview says what admission will do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.orm import Session

from pullkeeper.core import imagepolicy
from pullkeeper.core.policy import (
    Policy,
    PolicyError,
    check_allowlist_entry,
    check_default_registry,
)
from pullkeeper.services import policies
from pullkeeper.services.errors import Invalid
from pullkeeper.store.models import Cluster, Project

__all__ = ["Preview", "preview", "proposed"]


@dataclass(frozen=True, slots=True)
class Preview:
    image: str
    pulled: str  # the image as it will be pulled (after any rewrite)
    rewritten: bool
    allowed: bool  # whether the pod is admitted (a violation in warn or audit mode is)
    mode: str
    violations: tuple[str, ...]
    always_pull: bool


def proposed(
    session: Session, cluster: Cluster, project: Project | None, values: dict[str, Any]
) -> Policy:
    """These policy values (None inherits) over the parent's; Invalid names a bad field."""
    try:
        if values.get("default_registry") is not None:
            check_default_registry(values["default_registry"])
        if values.get("allowlist") is not None:
            values["allowlist"] = tuple(check_allowlist_entry(e) for e in values["allowlist"])
    except PolicyError as e:
        raise Invalid(str(e), e.field) from None
    if values.get("mode") is not None and values["mode"] not in imagepolicy.MODES:
        raise Invalid(f"mode must be one of {', '.join(imagepolicy.MODES)}", "mode")
    own = Policy(**{f.name: values.get(f.name) for f in fields(Policy)})
    parent = policies.get(session, cluster, None) if project is not None else Policy()
    return own.over(parent)


def preview(image: str, policy: Policy) -> Preview:
    image = image.strip()
    if not image:
        raise Invalid("type an image, e.g. nginx:1.27 or quay.io/org/app@sha256:...", "image")
    new = imagepolicy.rewritten(image, policy.default_registry)
    pulled = new or image
    found = imagepolicy.judge(pulled, policy)
    mode = policy.mode or imagepolicy.ENFORCE
    return Preview(
        image=image,
        pulled=pulled,
        rewritten=new is not None,
        allowed=not found or mode != imagepolicy.ENFORCE,
        mode=mode,
        violations=tuple(v.message for v in found),
        always_pull=bool(policy.always_pull),
    )
