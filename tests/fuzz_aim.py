"""How the schemathesis runs (in-process in tests/api/test_openapi.py, live in
tests/reliability/) aim schema-valid cases at the logic behind them.

In positive cases, two path ids in three point at the tenant's real resources, a made-up
``cursor`` becomes a well-formed one near ``anchor``, and an inverted audit time range
(``since`` after ``until``, a documented 400 that JSON Schema cannot express) is put in order.
Negative cases are left alone: their job is to be rejected.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from core.pagination import encode_cursor
from core.services.audit_queries import parse_rfc3339


def aim_case(case, ids: dict[str, list[str]], anchor: datetime) -> None:
    """Point some generated ids at real resources; make cursors and time ranges usable."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name, value in (case.path_parameters or {}).items():
        choices = ids.get(name)
        seed = zlib.crc32(str(value).encode())
        if choices and seed % 3:
            case.path_parameters[name] = choices[seed % len(choices)]
    query = case.query
    if not query:
        return
    if isinstance(query.get("cursor"), str):
        seed = zlib.crc32(query["cursor"].encode())
        when = anchor + timedelta(seconds=seed % 7 - 3)
        query["cursor"] = encode_cursor(when.astimezone(UTC), f"{seed:08x}")
    since, until = query.get("since"), query.get("until")
    if isinstance(since, str) and isinstance(until, str):
        since_at, until_at = parse_rfc3339(since), parse_rfc3339(until)
        if since_at and until_at and since_at > until_at:
            query["since"], query["until"] = until, since
