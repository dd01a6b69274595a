"""schemathesis hooks for the live fuzz run (loaded through SCHEMATHESIS_HOOKS).

The same aiming as tests/api/test_openapi.py's ``FuzzTenant.aim``, for a separate process: in
positive (schema-valid) cases, two path ids in three point at the tenant's real resources
(listed in CHANNELS_FUZZ_IDS), and a made-up ``cursor`` becomes a real one, so that the fuzzer
reaches the logic behind a found resource and a valid page instead of 404 / 400 every time.
Negative cases are left alone: their job is to be rejected.
"""

from __future__ import annotations

import json
import os
import zlib
from datetime import UTC, datetime, timedelta

import schemathesis

from core.pagination import encode_cursor

IDS: dict[str, list[str]] = json.loads(os.environ.get("CHANNELS_FUZZ_IDS", "{}"))
ANCHOR = datetime.now(UTC)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Aim schema-valid cases at real ids and real cursors."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name, value in (case.path_parameters or {}).items():
        choices = IDS.get(name)
        seed = zlib.crc32(str(value).encode())
        if choices and seed % 3:
            case.path_parameters[name] = choices[seed % len(choices)]
    if case.query and isinstance(case.query.get("cursor"), str):
        seed = zlib.crc32(case.query["cursor"].encode())
        when = ANCHOR + timedelta(seconds=seed % 7 - 3)
        case.query["cursor"] = encode_cursor(when, f"{seed:08x}")
