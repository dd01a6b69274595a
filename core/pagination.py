"""Keyset pagination, newest first: stable under inserts, no OFFSET, no COUNT(*)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_

from core.errors import ServiceError
from core.tenancy import lookup_id

# Page sizes of every list (DESIGN §4): the API reads `limit` within these; the document says so.
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200


class BadCursor(ServiceError):
    status = 400
    code = "bad_request"


def encode_cursor(created_at: datetime, object_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), object_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, object_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or lookup_id(object_id) is None:
            raise ValueError
        return when, object_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeError) as exc:
        raise BadCursor(
            "The cursor is not valid.", {"cursor": ["Not a cursor from this API."]}
        ) from exc


def keyset_page(
    session, query: Select, model, limit: int, cursor: str | None, *, columns: bool = False
):
    """One page of ``query`` ordered by (created_at, id) descending, and the next cursor.

    ``columns``: ``query`` selects columns (``created_at`` and ``id`` among them), the page is
    its rows, read on the session's connection (no ORM loading); otherwise it selects one
    entity, the page is its objects."""
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(
            or_(model.created_at < when, and_(model.created_at == when, model.id < last_id))
        )
    page = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.connection().execute(page) if columns else session.scalars(page))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


@dataclass
class Window:
    """A page for a UI that steps both ways: ``older_cursor`` for "Next", ``newer_cursor``
    for "Newer" (None when there is nothing that way)."""

    rows: list
    older_cursor: str | None
    newer_cursor: str | None


def _beyond(model, created_at: datetime, object_id: str, newer: bool):
    """Rows after (older) or before (newer) the row at (created_at, id) in newest-first order."""
    same_time = model.created_at == created_at
    if newer:
        return or_(model.created_at > created_at, and_(same_time, model.id > object_id))
    return or_(model.created_at < created_at, and_(same_time, model.id < object_id))


def keyset_window(
    session, query: Select, model, limit: int, after: str | None = None, before: str | None = None
) -> Window:
    """One page of ``query``, newest first: the rows older than ``after`` (the API's cursor),
    or the ``limit`` rows just newer than ``before``; with cursors to both neighbours."""
    if before:
        when, object_id = decode_cursor(before)
        rows = list(
            session.scalars(
                query.where(_beyond(model, when, object_id, newer=True))
                .order_by(model.created_at.asc(), model.id.asc())
                .limit(limit)
            )
        )
        rows.reverse()
    else:
        rows, _ = keyset_page(session, query, model, limit, after)
    if not rows:
        return Window([], None, None)

    def exists(row, newer: bool) -> bool:
        probe = query.with_only_columns(model.id).where(
            _beyond(model, row.created_at, row.id, newer)
        )
        return session.scalar(probe.limit(1)) is not None

    first, last = rows[0], rows[-1]
    return Window(
        rows,
        encode_cursor(last.created_at, last.id) if exists(last, newer=False) else None,
        encode_cursor(first.created_at, first.id) if exists(first, newer=True) else None,
    )
