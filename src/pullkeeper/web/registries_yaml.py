"""A node profile's registries as the Nodes page's form holds them: YAML, the `registries`
of a node profile file; read with errors naming their line, written back for editing, and a
service error's field (`registries[1].ca`) traced to the line that holds it."""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["EXAMPLE", "RegistriesError", "dump", "line_of", "load"]

# The textarea's placeholder: what a profile file's `registries` holds.
EXAMPLE = """\
- host: registry.corp.example:5000
  ca: |
    -----BEGIN CERTIFICATE-----
    ...
    -----END CERTIFICATE-----
- host: lab.corp.example
  insecure: http
- host: docker.io
  mirrors:
    - https://mirror.corp.example
    - {url: https://art.corp.example/v2/hub, override_path: true}
"""


_DEEP = "is nested too deeply for a list of registries; see the example"


class RegistriesError(ValueError):
    """The text is no list of registries; the message says where and what to do."""


def _where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or "is not YAML"
    if mark is None:
        return f"{problem}; fix the YAML"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}; fix the YAML there"


def load(text: str) -> list[Any]:
    """The registries the text lists: a YAML list, or a profile file's mapping with
    `registries` (and nothing else); [] for none."""
    if not text.strip():
        return []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RegistriesError(_where(e)) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise RegistriesError(_DEEP) from None
    if isinstance(doc, dict) and "registries" in doc:
        if "logins" in doc:
            raise RegistriesError(
                "logins: a node's logins are the cluster's credentials of cluster scope: "
                "tick them under Credentials, and leave logins out of the YAML"
            )
        other = sorted(str(k) for k in doc if k != "registries")
        if other:
            raise RegistriesError(f"{other[0]}: only the registries go here")
        doc = doc["registries"]
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise RegistriesError("is a list of registries, one `- host: ...` each (see the example)")
    return doc


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (a CA's PEM) as literal blocks, as one writes them by hand."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(registries: list[Any]) -> str:
    """The registries as the form shows them to edit: what load() reads back the same."""
    if not registries:
        return ""
    return yaml.dump(registries, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


_STEP = re.compile(r"\[(\d+)\]|\.([^.\[]+)")


def line_of(text: str, field: str) -> int | None:
    """The line of the text where `field` (registries[1].mirrors[0]) is, or as near as the
    text has it (the registry, when it has no such key); None when the text is no YAML."""
    if not field.startswith("registries"):
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    if node is None:
        return None
    if isinstance(node, yaml.MappingNode):
        found = _value(node, "registries")
        if found is None:
            return None
        node = found
    for index, key in _STEP.findall(field.removeprefix("registries")):
        if index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
        elif key and isinstance(node, yaml.MappingNode) and (v := _value(node, key)):
            node = v
        else:
            break
    return int(node.start_mark.line) + 1


def _value(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None
