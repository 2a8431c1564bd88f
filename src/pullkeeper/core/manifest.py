"""Kubernetes manifests as text: read YAML or JSON documents, write what kubectl writes."""

from __future__ import annotations

import json
from typing import Any


class ManifestError(ValueError):
    """Text that is not a manifest."""


_TOO_DEEP = "nested too deeply to be a manifest"


def to_json(obj: Any) -> str:
    """kubectl -o json: four-space indentation, fields in object order."""
    return json.dumps(obj, indent=4, ensure_ascii=False)


def to_yaml(obj: Any) -> str:
    """kubectl -o yaml: keys sorted, block style."""
    import yaml  # noqa: PLC0415 - PyYAML loads only for YAML, not with every config file

    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=1 << 30)


def _yaml_documents(text: str) -> list[Any]:
    import yaml  # noqa: PLC0415 - PyYAML loads only for YAML, not with every config file

    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"not valid YAML or JSON{where}: {problem}") from None
    except (ValueError, TypeError) as e:
        # PyYAML's constructors raise these for values such as "2001-13-01".
        raise ManifestError(f"not valid YAML: {e}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ManifestError(_TOO_DEEP) from None


def load_documents(text: str) -> list[Any]:
    """Every document in a JSON text or a YAML stream; empty documents dropped.

    JSON is read as JSON first: a YAML 1.1 reader refuses some characters JSON
    allows raw and reads numbers such as 1e-05 as strings.
    """
    try:
        docs = [json.loads(text)]
    except ValueError:
        docs = _yaml_documents(text)
    except RecursionError:
        raise ManifestError(_TOO_DEEP) from None
    out: list[Any] = []
    for doc in docs:
        if doc is None:
            continue
        if (
            isinstance(doc, dict)
            and doc.get("kind") == "List"
            and isinstance(doc.get("items"), list)
        ):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out
