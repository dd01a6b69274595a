"""Column types shared by the models: UUID4 string ids, UTC timestamps, portable JSON."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def new_id() -> str:
    """A fresh UUID4 as the canonical lower-case string."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC on every backend and always returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use core.db_types.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def rfc3339(value: datetime | None) -> str | None:
    """Render a timestamp as RFC 3339 in UTC with second precision: 2024-10-03T12:00:00Z."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # the database's own values are UTC already
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
