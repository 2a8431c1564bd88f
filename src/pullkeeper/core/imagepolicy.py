"""What a registry policy does to one image: rewrite it to the default registry, judge it.

The same rules serve the admission webhook, the CLI preview and the UI:

- An image is *unqualified* when its first path component names no registry
  (no `.`, no `:`, not `localhost`, no capital letter — distribution's rule),
  i.e. distribution puts it on Docker Hub implicitly. Only such images are
  rewritten, to the default registry + the normalized path (`library/` for
  official images) + the tag and digest as written. `docker.io/...` written
  out names its registry and is left alone.
- The allowlist, "require digest" and "forbid latest" judge the normalized
  reference after the rewrite, never the string.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullkeeper.core.policy import Policy, allowlist_admits
from pullkeeper.core.reference import InvalidReference, Reference, go_lower, parse_normalized_named

ENFORCE, WARN, AUDIT = "enforce", "warn", "audit"
MODES = (ENFORCE, WARN, AUDIT)


def unqualified(image: str) -> bool:
    first, slash, _ = image.partition("/")
    if not slash:
        return True
    return not ("." in first or ":" in first or first == "localhost" or go_lower(first) != first)


def rewritten(image: str, default_registry: str | None) -> str | None:
    """The image under the default registry, or None when it is not to be rewritten."""
    if not default_registry or not unqualified(image):
        return None
    try:
        ref = parse_normalized_named(image)
    except InvalidReference:
        return None  # the violation is reported by `judge`
    out = f"{default_registry}/{ref.path}"
    if ref.tag is not None:
        out += ":" + ref.tag
    if ref.digest is not None:
        out += "@" + ref.digest
    return out


@dataclass(frozen=True, slots=True)
class Violation:
    image: str  # as the pod names it (after any rewrite)
    rule: str  # "invalid", "allowlist", "digest", "latest"
    message: str


def judge(image: str, policy: Policy) -> list[Violation]:
    """What the policy refuses about an image (as it will be pulled: after the rewrite)."""
    try:
        ref = parse_normalized_named(image)
    except InvalidReference as e:
        return [Violation(image, "invalid", f"{image!r} is not a valid image reference: {e}")]
    found = []
    allowlist = policy.allowlist
    if allowlist is not None and not allowlist_admits(allowlist, ref.domain, ref.path):
        allowed = ", ".join(allowlist) or "none (the allowlist is empty)"
        found.append(
            Violation(
                image,
                "allowlist",
                f"image {image} comes from {ref.domain}, which is not on the allowlist "
                f"(allowed: {allowed})",
            )
        )
    if policy.require_digest and ref.digest is None:
        found.append(
            Violation(
                image,
                "digest",
                f"image {image} has no digest; the policy requires one: name it as "
                f"{_name(ref)}@sha256:...",
            )
        )
    if policy.forbid_latest and ref.digest is None and (ref.tag is None or ref.tag == "latest"):
        what = "the tag latest" if ref.tag == "latest" else "no tag (that is latest)"
        found.append(
            Violation(
                image,
                "latest",
                f"image {image} has {what}; the policy forbids it: name a version tag or a digest",
            )
        )
    return found


def _name(ref: Reference) -> str:
    return ref.familiar_name if ref.domain == "docker.io" else ref.name
