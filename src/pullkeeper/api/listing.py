"""How the API answers a page of a listing: encoded once, straight from the service's dicts.

A route's dict return would be validated against its annotation and serialized by
the framework in another hop to the thread pool; a listing's rows are plain JSON
values already, so that buys nothing and costs a good part of the request.
"""

from __future__ import annotations

from fastapi import Response

from pullkeeper.services.paging import Page

__all__ = ["encoded", "listing"]


def encoded(body: bytes) -> Response:
    """An answer encoded already (a page, or one kept by the read cache)."""
    return Response(body, media_type="application/json")


def listing(page: Page, limit: int, offset: int) -> Response:
    return encoded(page.body(limit, offset))
