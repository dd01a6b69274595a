"""Column types shared by the models: UUID4 string ids, UTC timestamps, portable JSON."""

import os
import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def new_id() -> str:
    """A fresh UUID4 as the canonical lower-case string."""
    return str(uuid.uuid4())


# The variant's hex digit (RFC 9562 §4.1: binary 10xx) for each hex digit of random bits.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


def new_ids(count: int) -> list[str]:
    """``count`` fresh UUID4s (``new_id``'s form) from one ``os.urandom`` call: a batch's ids
    (``core.services.bulk``, ``core.events.emit_created``) at a fifth of ``new_id``'s cost each
    (one system call and one UUID object per id there)."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:]}")
    return ids


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

    def result_processor(self, dialect, coltype):
        """``process_result_value`` as one function per value read, not TypeDecorator's two.

        A list page reads 100 timestamps; TypeDecorator's generic processor calls a closure that
        calls ``process_result_value`` (with the dialect) for each. Where the driver hands over
        ``datetime`` objects itself (psycopg), the processor is this one function; where the
        dialect's own type converts first (SQLite's text), it runs that conversion, then the
        same. Same values as ``process_result_value`` (``test_db_types``)."""
        convert = self.impl_instance.result_processor(dialect, coltype)
        if convert is None:

            def process(value):
                return None if value is None else value.replace(tzinfo=UTC)

        else:

            def process(value):
                value = convert(value)
                return None if value is None else value.replace(tzinfo=UTC)

        return process


def rfc3339(value: datetime | None) -> str | None:
    """Render a timestamp as RFC 3339 in UTC with second precision: 2024-10-03T12:00:00Z.

    An aware UTC value's ``isoformat`` ends in ``+00:00`` (its offset is zero), which becomes
    ``Z``: one call, where taking the zone off first (``replace(tzinfo=None)``) built a second
    datetime per timestamp rendered (a list page renders 100). Same text for every value
    (``test_db_types`` compares it with that form, microseconds and the day's last second
    included)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # the database's own values are UTC already
        value = value.astimezone(UTC)
    return value.isoformat("T", "seconds")[:-6] + "Z"
