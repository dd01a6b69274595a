"""schemathesis hooks for the live fuzz run (loaded through SCHEMATHESIS_HOOKS).

The same aiming as tests/api/test_openapi.py (tests/fuzz_aim.py), for a separate process: the
real resources come from CHANNELS_FUZZ_IDS.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from urllib.parse import quote

import schemathesis

from tests.fuzz_aim import aim_case

IDS: dict[str, list[str]] = json.loads(os.environ.get("CHANNELS_FUZZ_IDS", "{}"))
ANCHOR = datetime.now(UTC)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Aim schema-valid cases at real ids, real cursors and ordered time ranges."""
    aim_case(case, IDS, ANCHOR)


# gunicorn refuses a request line over 4094 bytes (its --limit-request-line) with its own 414
# before the application sees the request; the fuzzer's query strings can grow past that (a run
# that drew 6,120 bytes of repeated ``limit`` values failed on the 414). Such cases test
# gunicorn, not this API: keep every generated query well under the limit.
QUERY_BYTES_MAX = 3000


def _encoded_length(query: dict) -> int:
    total = 0
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            total += len(quote(str(name))) + len(quote(str(item))) + 2
    return total


@schemathesis.hook
def filter_query(context, query):
    """Keep queries that fit gunicorn's request line (see QUERY_BYTES_MAX)."""
    return not query or _encoded_length(query) <= QUERY_BYTES_MAX
