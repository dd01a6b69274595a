"""schemathesis hooks for the live fuzz run (loaded through SCHEMATHESIS_HOOKS).

The same aiming as tests/api/test_openapi.py (tests/fuzz_aim.py), for a separate process: the
real resources come from CHANNELS_FUZZ_IDS.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import schemathesis

from tests.fuzz_aim import aim_case

IDS: dict[str, list[str]] = json.loads(os.environ.get("CHANNELS_FUZZ_IDS", "{}"))
ANCHOR = datetime.now(UTC)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Aim schema-valid cases at real ids, real cursors and ordered time ranges."""
    aim_case(case, IDS, ANCHOR)
