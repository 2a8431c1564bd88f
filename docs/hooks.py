"""MkDocs hooks: pages made at build time from the code, so they cannot drift from it.

- `reference/api.md` and `reference/openapi.json`: the REST API from the OpenAPI document of
  the app `pullkeeper serve` runs, built in-process (no server, no network) as the tests do.
- `benchmarks.md`: benchmarks/README.md, which lives beside the scripts it describes; the
  pages' links to `../benchmarks/README.md` are pointed at it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from pullkeeper.app import openapi_document

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few words: `string`, `array of Cluster`, `integer or null`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(option) for option in schema[key])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    return str(schema.get("type", "any"))


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    if op.get("description") or op.get("summary"):
        lines += [op.get("description") or op["summary"], ""]
    if not op.get("security"):
        lines += ["No token needed.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
            )
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
    answers = ", ".join(
        f"`{status}` {_cell(answer.get('description', ''))}"
        for status, answer in op.get("responses", {}).items()
    )
    lines += [f"Answers: {answers}.", ""]
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, spec in properties.items():
            lines.append(
                f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
                f"{_cell(spec.get('description', ''))} |"
            )
        lines.append("")
    elif "enum" in schema:
        lines += [f"One of {_type(schema)}.", ""]
    return lines


def api_page(doc: dict[str, Any]) -> str:
    """The REST API reference as markdown, one section per tag, then the schemas."""
    info = doc["info"]
    lines = [
        "# REST API reference",
        "",
        f"{info.get('description', '')} Version {info['version']}; OpenAPI {doc['openapi']}.",
        "",
        "This page is generated from the OpenAPI document of the server's own app, as "
        "`pullkeeper serve` serves it at `/api/v1/openapi.json` (also here: "
        "[openapi.json](openapi.json)); a running server shows the same in Swagger UI at "
        "`/api/v1/docs`. Authentication, errors, listings and `If-Match` are described in "
        "[The management server](../server.md#the-api-apiv1-openapi-at-apiv1openapijson).",
        "",
    ]
    by_tag: dict[str, list[str]] = {}
    for path, ops in doc["paths"].items():
        for method in METHODS:
            if method in ops:
                tag = (ops[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).extend(_operation(path, method, ops[method]))
    for tag in sorted(by_tag):
        lines += [f"## {tag.capitalize()}", "", *by_tag[tag]]
    lines += ["## Schemas", ""]
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines)


def benchmarks_page() -> str:
    text = (ROOT / "benchmarks" / "README.md").read_text()
    # Its links are relative to benchmarks/; the page lives in docs/.
    return re.sub(r"\]\(\.\./docs/", "](", text)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    doc = openapi_document()
    generated = {
        "reference/api.md": api_page(doc),
        "reference/openapi.json": json.dumps(doc, indent=2) + "\n",
        "benchmarks.md": benchmarks_page(),
    }
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return markdown.replace("](../benchmarks/README.md)", "](benchmarks.md)")
