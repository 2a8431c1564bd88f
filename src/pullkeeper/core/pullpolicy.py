"""A container's effective imagePullPolicy, as the API server defaults it and admission sets it."""

from __future__ import annotations

from pullkeeper.core.reference import InvalidReference, parse_normalized_named

ALWAYS = "Always"
IF_NOT_PRESENT = "IfNotPresent"
NEVER = "Never"
POLICIES = (ALWAYS, IF_NOT_PRESENT, NEVER)


class InvalidPullPolicy(ValueError):
    """A value the API server's validation refuses."""


def default_pull_policy(image: str) -> str:
    """SetDefaults_Container: Always for tag latest, or for neither tag nor digest.

    An image the kubelet cannot parse defaults to IfNotPresent, as in Kubernetes.
    """
    try:
        ref = parse_normalized_named(image)
    except InvalidReference:
        return IF_NOT_PRESENT
    tag = ref.tag
    if tag is None and ref.digest is None:
        tag = "latest"
    return ALWAYS if tag == "latest" else IF_NOT_PRESENT


def effective_pull_policy(
    image: str, given: str | None = None, *, always_pull: bool = False
) -> str:
    """The policy the kubelet acts on: AlwaysPullImages overrides, else given, else the default."""
    if given and given not in POLICIES:
        supported = ", ".join(f'"{p}"' for p in POLICIES)
        raise InvalidPullPolicy(
            f'imagePullPolicy: Unsupported value: "{given}": supported values: {supported}'
        )
    if always_pull:
        return ALWAYS
    return given or default_pull_policy(image)
