"""Use cases on image references."""

from __future__ import annotations

from typing import Any

from pullkeeper.core.reference import InvalidReference, parse_normalized_named

__all__ = ["describe"]


def describe(ref: str) -> dict[str, Any]:
    """A reference's parts, or the error distribution gives for it."""
    try:
        r = parse_normalized_named(ref)
    except InvalidReference as e:
        return {"input": ref, "error": str(e)}
    return {
        "input": ref,
        "name": r.name,
        "domain": r.domain,
        "path": r.path,
        "tag": r.tag,
        "digest": r.digest,
        "string": str(r),
        "familiar": r.familiar_string,
        "familiar_name": r.familiar_name,
    }
