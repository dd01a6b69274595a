"""One lookup for "this tenant's X": another tenant's id, an unknown id and a malformed one are
all the same answer, so no caller can tell another tenant's rows exist."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select

from core.errors import NotFound
from core.extensions import db

ID_MAX = 36  # ids are UUID strings; a longer one cannot name a row (and is not sent to the db)

T = TypeVar("T")


def lookup_id(object_id: object) -> str | None:
    """An id worth looking up: a malformed one (not a string, empty, too long) matches nothing."""
    if isinstance(object_id, str) and object_id and len(object_id) <= ID_MAX:
        return object_id
    return None


def find_for_tenant(model: type[T], tenant_id: str, object_id: object) -> T | None:
    """The tenant's row of ``model`` with ``object_id``, or None."""
    clean = lookup_id(object_id)
    if clean is None:
        return None
    return db.session.scalar(select(model).where(model.id == clean, model.tenant_id == tenant_id))


def get_for_tenant(model: type[T], tenant_id: str, object_id: object, *conditions) -> T:
    """The tenant's row of ``model`` with ``object_id`` (and ``conditions``), or NotFound
    ("Channel not found.", ...): malformed, unknown and other tenants' ids alike."""
    clean = lookup_id(object_id)
    found = None
    if clean is not None:
        found = db.session.scalar(
            select(model).where(model.id == clean, model.tenant_id == tenant_id, *conditions)
        )
    if found is None:
        raise NotFound(f"{getattr(model, 'LABEL', model.__name__)} not found.")
    return found
