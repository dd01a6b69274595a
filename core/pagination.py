"""Keyset pagination, newest first: stable under inserts, no OFFSET, no COUNT(*)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from sqlalchemy import Select, and_, or_

from core.errors import ServiceError


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
        if when.tzinfo is None or not isinstance(object_id, str) or len(object_id) > 36:
            raise ValueError
        return when, object_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeError) as exc:
        raise BadCursor("The cursor is not valid.", {"cursor": ["Not a cursor from this API."]}) from exc


def keyset_page(session, query: Select, model, limit: int, cursor: str | None):
    """One page of ``query`` ordered by (created_at, id) descending, and the next cursor."""
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(
            or_(model.created_at < when, and_(model.created_at == when, model.id < last_id))
        )
    rows = list(
        session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1))
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor
