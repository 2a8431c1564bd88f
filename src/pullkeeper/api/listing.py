"""How the API answers a page of a listing: encoded once, straight from the service's dicts.

A route's dict return would be validated against its annotation and serialized by
the framework in another hop to the thread pool; a listing's rows are plain JSON
values already, so that buys nothing and costs a good part of the request.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from pullkeeper.services.paging import Page

__all__ = ["listing"]


def listing(page: Page, limit: int, offset: int) -> JSONResponse:
    return JSONResponse(
        {
            "items": page.items,
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "next": page.next,
            "prev": page.prev,
        }
    )
