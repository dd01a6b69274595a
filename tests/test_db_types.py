"""core.db_types: the UTC timestamps' rendering and reading, equal to their earlier forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from core.db_types import UTCDateTime, rfc3339


def zone_stripped(value: datetime) -> str:
    """rfc3339's earlier form: the zone taken off, then ``isoformat`` and "Z"."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


VALUES = [
    datetime(2024, 10, 3, 12, 0, 0, tzinfo=UTC),
    datetime(2024, 10, 3, 12, 0, 0, 123456, tzinfo=UTC),  # microseconds: dropped
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # the year's last instant
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),  # a leap day's last second
    datetime(2024, 6, 30, 23, 59, 59, 500000, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year below 1000: four digits
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 10, 3, 23, 30, tzinfo=timezone(timedelta(hours=-8))),  # next day in UTC
    datetime(2024, 10, 4, 0, 15, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 10, 3, 12, tzinfo=ZoneInfo("UTC")),  # UTC, but not datetime.UTC
    datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
]


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_rfc3339_renders_what_the_zone_stripped_form_rendered(value):
    assert rfc3339(value) == zone_stripped(value)


def test_rfc3339_examples():
    assert rfc3339(datetime(2024, 10, 3, 12, 0, 0, 123456, tzinfo=UTC)) == "2024-10-03T12:00:00Z"
    assert rfc3339(datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == (
        "2024-12-31T23:59:59Z"
    )
    assert rfc3339(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0999-01-02T03:04:05Z"
    assert rfc3339(None) is None


@pytest.mark.parametrize("dialect", [postgresql.psycopg.dialect(), sqlite.dialect()])
def test_the_result_processor_returns_what_process_result_value_returns(dialect):
    """``UTCDateTime.result_processor`` (one function per value) against TypeDecorator's own
    (the dialect's conversion, then ``process_result_value``)."""
    kind = UTCDateTime().dialect_impl(dialect)
    ours = kind.result_processor(dialect, None)
    convert = kind.impl_instance.result_processor(dialect, None)

    def generic(value):
        return kind.process_result_value(convert(value) if convert else value, dialect)

    naive = [datetime(2024, 12, 31, 23, 59, 59, 999999), datetime(2024, 10, 3, 12)]
    stored = [str(v) for v in naive] if convert else naive  # SQLite hands over text
    for value in [*stored, None]:
        got, expected = ours(value), generic(value)
        assert got == expected and (got is None or got.tzinfo is UTC), (value, got)
