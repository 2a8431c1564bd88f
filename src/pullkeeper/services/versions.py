"""Optimistic concurrency for what people edit: clusters, projects, credentials, policies.

Each such row carries a `version` that every write bumps (store/models.py says how).
A writer may say which version it read: an If-Match header (the ETag of its
GET) or an edit form's hidden field. The use case refuses the write when that
is not the current version, and the store refuses it when a concurrent writer
commits between that check and the write (the UPDATE compares the version it
read). A write that names no version still goes through, as it always has.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from pullkeeper.core import etag
from pullkeeper.core.etag import IfMatch
from pullkeeper.services.errors import Conflict, PreconditionFailed

__all__ = ["guard", "tag"]


def tag(key: str, version: int) -> str:
    """The opaque tag of an object's current version (its ETag, without quotes)."""
    return etag.of(key, version)


def _changed(what: str) -> str:
    return (
        f"{what} was changed by someone else since you read it, so nothing was saved; "
        "read it again, redo your change on what is there now, and retry"
    )


def _require(if_match: IfMatch | None, key: str, version: int, what: str) -> None:
    """Refuse (412) a write based on another version than the current one."""
    if if_match is not None and not if_match.admits(tag(key, version)):
        raise PreconditionFailed(_changed(what))


@contextmanager
def guard(
    session: Session, if_match: IfMatch | None, key: str, version: int, what: str
) -> Iterator[None]:
    """A write of one object whose current version is `version`: refused at once when the
    writer read another one (412); else the block makes its changes and they are written.

    Any flush in the block (a query autoflushes) may find that a concurrent writer committed
    first: the loser gets 412 when it named a version, else 409, and nothing of it is saved.
    """
    _require(if_match, key, version, what)
    try:
        yield
        session.flush()
    except StaleDataError:
        if if_match is not None:
            raise PreconditionFailed(_changed(what)) from None
        raise Conflict(
            f"{what} was changed by a concurrent request, so nothing was saved; "
            "read it again and retry"
        ) from None
