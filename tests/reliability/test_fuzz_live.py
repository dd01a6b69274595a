"""schemathesis against the LIVE gunicorn server, every check, a fixed seed.

tests/api/test_openapi.py fuzzes in-process, per operation, with the default checks. This run
goes over real HTTP to 4 workers and adds the checks that need several requests (stateful
links, use-after-free, resource availability, ignored auth, unsupported methods, missing
headers). It reuses that module's settings (seed, no NUL bytes, no generated Authorization
headers, the statuses a well-formed request may legitimately get) and its aiming of ids and
cursors at real data (tests/reliability/fuzz_hooks.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.extensions import db
from core.services import webhooks
from tests import factories
from tests.reliability.live import ROOT

SEED = 20241003
# The run is bounded by a number of cases, not by time: with `--max-time` schemathesis repeats
# its fuzzing until the budget is spent, so a loaded machine got fewer cases (320 instead of
# ~3,000 in one CI run) and failed the coverage floor below. The same cases on any machine; about
# 45 s of fuzzing on an idle 2-core one.
MAX_EXAMPLES = 15  # per operation and phase
TIME_BUDGET = 600  # a guard against a hung run, not a pace: ~10x the idle time

CONFIG = f"""
seed = {SEED}
headers = {{ Authorization = "Bearer ${{CHANNELS_FUZZ_KEY}}" }}
[generation]
deterministic = false
max-examples = {MAX_EXAMPLES}
with-security-parameters = false
allow-extra-parameters = false
allow-x00 = false
database = "none"

[checks.positive_data_acceptance]
# 304: If-None-Match naming the current version; 412: If-Match naming an older one.
expected-statuses = ["2xx", "304", "401", "403", "404", "409", "412", "422"]
"""


def _seed_data(live) -> tuple[str, dict]:
    """A tenant with channels of both types, a pending domain and a number; its key and ids."""
    with live.context():
        ready = factories.make_ready_tenant(factories.make_tenant(), domain="fuzz.example")
        channels = [
            factories.make_channel(ready, "email"),
            factories.make_channel(ready, "sms"),
            factories.make_channel(ready, "email", metadata={"team": "care"}),
        ]
        pending = factories.make_domain(ready.tenant, "pending.fuzz.example", verified=False)
        endpoint, _ = factories.make_webhook_endpoint(ready.tenant, "http://127.0.0.1:9/fuzz")
        delivery = webhooks.send_test(ready.tenant.id, endpoint.id, factories.ACTOR)
        db.session.commit()
        ids = {
            "channel_id": [c.id for c in channels],
            "integration_id": [ready.email_integration.id, ready.sms_integration.id],
            "domain_id": [ready.domain.id, pending.id],
            "phone_number_id": [ready.number.id],
            "endpoint_id": [endpoint.id],
            "delivery_id": [delivery.id],
        }
        return factories.make_api_key(ready.tenant), ids


def test_live_server_has_no_server_errors_nor_schema_violations_under_fuzzing(live, tmp_path):
    """Every operation, all checks, fixed seed: 0 server errors, 0 schema violations."""
    key, ids = _seed_data(live)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = tmp_path / "events.ndjson"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{live.url}/api/openapi.json",
        "--checks",
        "all",
        # One client thread: schemathesis' generators hit a CPython 3.11 bug ("AST constructor
        # recursion depth mismatch") when several threads build strategies at once. The server
        # side still runs 4 gunicorn workers; parallel clients are test_concurrency.py's job.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--output-sanitize",
        "true",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.reliability.fuzz_hooks",
        "CHANNELS_FUZZ_IDS": json.dumps(ids),
        "CHANNELS_FUZZ_KEY": key,
    }
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIME_BUDGET
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]

    operations, examples, failures = _summary(report)
    assert failures == []
    documented = live.request("GET", "/api/openapi.json").json()["paths"]
    expected = {
        f"{method.upper()} {path}"
        for path, item in documented.items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and path != "/api/openapi.json"
    }
    assert expected <= operations, expected - operations
    assert examples >= 10 * len(expected)
    print(f"schemathesis: {len(operations)} operations, {examples} generated cases, seed {SEED}")


def _summary(report: Path) -> tuple[set[str], int, list[str]]:
    """From schemathesis' events: operations tested, test cases generated, failed checks."""
    operations: set[str] = set()
    cases = 0
    failures = []
    for line in report.read_text().splitlines():
        payload = json.loads(line).get("ScenarioFinished")
        if not payload:
            continue
        recorder = payload.get("recorder") or {}
        if recorder.get("cases"):
            operations.add(recorder.get("label", ""))
            cases += len(recorder["cases"])
        for case_id, checks in (recorder.get("checks") or {}).items():
            failures += [f"{case_id} {c['name']}" for c in checks if c.get("status") == "failure"]
    return operations, cases, failures
