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


# Label keys and annotation keys: apimachinery's IsQualifiedName; label values:
# IsValidLabelValue. The messages are the API server's (field.Invalid's form).
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(_QUALIFIED)
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED}')"
)
_LABEL_VALUE = f"({_QUALIFIED})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE)
# The sum of every annotation's key and value, in bytes (TotalAnnotationSizeLimitB).
ANNOTATIONS_MAX_BYTES = 256 * 1024


def _invalid(what: str, value: str, message: str) -> InvalidName:
    return InvalidName(f'{what}: Invalid value: "{value}": {message}')


def _qualified_name_error(value: str) -> str | None:
    """IsQualifiedName's first complaint about value ([prefix/]name), or None."""
    parts = value.split("/")
    if len(parts) > 2:
        return (
            f"a qualified name {_QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        )
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "prefix part must be non-empty"
        try:
            validate_subdomain(prefix, "prefix")
        except InvalidName as e:
            return "prefix part " + str(e).partition(f'"{prefix}": ')[2]
    if not name:
        return "name part must be non-empty"
    if len(name.encode()) > 63:  # Go counts bytes
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_RE.fullmatch(name):
        return f"name part {_QUALIFIED_MSG}"
    return None


def validate_labels(labels: dict[str, str], what: str = "metadata.labels") -> None:
    """ValidateLabels: each key a qualified name, each value a label value."""
    for key, value in labels.items():
        if (error := _qualified_name_error(key)) is not None:
            raise _invalid(what, key, error)
        if len(value.encode()) > 63:
            raise _invalid(what, value, "must be no more than 63 characters")
        if not _LABEL_VALUE_RE.fullmatch(value):
            raise _invalid(
                what,
                value,
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                f"'{_LABEL_VALUE}')",
            )


def validate_annotations(annotations: dict[str, str], what: str = "metadata.annotations") -> None:
    """ValidateAnnotations: each key a qualified name whatever its case, all of them and
    their values together at most 256 KiB."""
    for key in annotations:
        if (error := _qualified_name_error(key.lower())) is not None:
            raise _invalid(what, key, error)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        raise InvalidName(f"{what}: Too long: may not be more than {ANNOTATIONS_MAX_BYTES} bytes")
