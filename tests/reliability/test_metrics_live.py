"""Prometheus multi-process mode under gunicorn: every worker's requests in every scrape.

gunicorn runs with ``-c python:core.gunicorn_hooks`` and ``PROMETHEUS_MULTIPROC_DIR``, as the
README's Deploying section says; whichever worker answers ``/metrics`` reports the sum over all
workers, a SIGKILLed worker's counts included, and files of an earlier run are wiped at start.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.live import ROOT, LiveServer, in_parallel, statuses

TOKEN = "live-metrics-token-0123456789"
HEALTHZ = {"endpoint": "ops.healthz", "method": "GET", "status": "200"}


def healthz_count(server: LiveServer) -> tuple[float, object]:
    """(GET /healthz 200s counted, the scrape's reply)."""
    reply = server.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200, reply.body
    count = 0.0
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if sample.name == "channels_http_requests_total":
                if sample.labels == HEALTHZ:
                    count = sample.value
                assert sample.labels["endpoint"] != "stale.endpoint", "a stale file was counted"
    return count, reply


def _stale_file(directory) -> None:
    """A metrics file as an earlier run would leave it (a counter of another process)."""
    code = (
        "from core import metrics; "
        "metrics.HTTP_REQUESTS.labels('stale.endpoint', 'GET', '200').inc(5)"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT), "PATH": ""}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    assert list(directory.glob("counter_*.db"))


@pytest.fixture
def metrics_server(live_database, tmp_path_factory):
    """gunicorn -w 3 in multi-process mode, with a stale file from an 'earlier run' waiting."""
    directory = tmp_path_factory.mktemp("prometheus")
    _stale_file(directory)
    server = LiveServer(
        live_database,
        workers=3,
        extra_env={"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        extra_args=["-c", "python:core.gunicorn_hooks"],
    )
    server.directory = directory
    server.start(tmp_path_factory.mktemp("gunicorn-metrics"))
    yield server
    server.stop()


def test_every_scrape_adds_up_every_worker(metrics_server):
    """60 parallel requests over 3 workers: each of several scrapes reports all 60."""
    server = metrics_server
    before, _ = healthz_count(server)  # wait_ready's probes do not hit /healthz
    assert before == 0
    replies = in_parallel([lambda: server.request("GET", "/healthz")] * 60)
    assert statuses(replies) == [200] * 60
    # A request is counted when its worker closes the response, just after the client read it:
    # the last few may land a moment after the client saw them.
    deadline = time.monotonic() + 10
    while healthz_count(server)[0] < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    writers = {p.name for p in server.directory.glob("counter_*.db")}
    assert len(writers) >= 2, writers  # more than one worker served (and wrote its own file)
    for _ in range(6):  # then every scrape, whichever worker answers it, reports all of them
        count, _ = healthz_count(server)
        assert count == 60

    # A worker killed: its counts stay in the sums (counters never go down).
    server.kill_worker()
    server.wait_ready()
    for _ in range(4):
        count, _ = healthz_count(server)
        assert count == 60
    assert server.server_errors() == []
