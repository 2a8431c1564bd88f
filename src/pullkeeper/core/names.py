"""Kubernetes object-name rules, with the API server's own messages."""

from __future__ import annotations

import re

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + ")*"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN)


class InvalidName(ValueError):
    """A name the API server would refuse."""


def validate_subdomain(value: str, what: str = "metadata.name") -> None:
    """IsDNS1123Subdomain: most object names, Secrets included."""
    if len(value) > 253:
        raise InvalidName(f'{what}: Invalid value: "{value}": must be no more than 253 characters')
    if not _SUBDOMAIN_RE.fullmatch(value):
        raise InvalidName(
            f'{what}: Invalid value: "{value}": a lowercase RFC 1123 subdomain must consist of '
            "lower case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            f"'{_SUBDOMAIN}')"
        )


def validate_label(value: str, what: str = "metadata.namespace") -> None:
    """IsDNS1123Label: namespace names."""
    if len(value) > 63:
        raise InvalidName(f'{what}: Invalid value: "{value}": must be no more than 63 characters')
    if not _LABEL_RE.fullmatch(value):
        raise InvalidName(
            f'{what}: Invalid value: "{value}": a lowercase RFC 1123 label must consist of '
            "lower case alphanumeric characters or '-', and must start and end with an "
            "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation "
            f"is '{_LABEL}')"
        )
