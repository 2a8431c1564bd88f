"""Imports point down: the faces do not import one another, and nothing below them imports
a face or the application they make up together (pullkeeper.app)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pullkeeper"
FACES = ("api", "web", "cli")


def _imports(path: Path) -> set[str]:
    """The project modules a file imports, absolute ("pullkeeper.x.y")."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                found.add(".".join((*base, node.module)))
            else:
                found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("pullkeeper.")}


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for name in sorted(_imports(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize(("face", "other"), [("api", "web"), ("web", "api")])
def test_a_face_does_not_import_another(face: str, other: str) -> None:
    assert _offending(face, (f"pullkeeper.{other}", "pullkeeper.app")) == []


@pytest.mark.parametrize("layer", ["services", "store", "registry", "kube", "node", "core"])
def test_the_layers_below_the_faces_import_none(layer: str) -> None:
    faces = tuple(f"pullkeeper.{face}" for face in FACES)
    assert _offending(layer, (*faces, "pullkeeper.app")) == []
