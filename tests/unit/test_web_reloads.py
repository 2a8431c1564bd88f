"""Every page address a form posts to answers GET too (its page, or a way back to its form):
reloading the browser after a form's answer never gives 'Method Not Allowed'."""

from __future__ import annotations

import importlib
import pkgutil
import re

from fastapi import APIRouter
from fastapi.routing import APIRoute

import pullkeeper.web


def _web_routes() -> list[APIRoute]:
    found = []
    for info in pkgutil.iter_modules(pullkeeper.web.__path__):
        module = importlib.import_module(f"pullkeeper.web.{info.name}")
        for value in vars(module).values():
            if isinstance(value, APIRouter):
                found += [r for r in value.routes if isinstance(r, APIRoute)]
    return found


def test_every_address_a_page_posts_to_answers_get() -> None:
    routes = _web_routes()

    def shape(path: str) -> str:  # /a/{x}/b and /a/{y}/b are one address
        return re.sub(r"\{[^}]*\}", "{}", path)

    gets = {shape(r.path) for r in routes if "GET" in r.methods}
    posts = {shape(r.path) for r in routes if "POST" in r.methods}
    assert len(posts) > 20, posts  # the pages' forms were found
    assert sorted(posts - gets) == []
