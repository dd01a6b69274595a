"""Prometheus metrics (prometheus-client): what is measured, and how ``/metrics`` reads it.

Served at ``GET /metrics`` (``blueprints/ops``) with ``Authorization: Bearer <METRICS_TOKEN>``;
with ``METRICS_TOKEN`` unset the route answers 404 and requests are not measured at all (the
hot path pays nothing for metrics nobody can read).

**Metrics**, all prefixed ``channels_``:

- ``channels_http_requests_total{endpoint, method, status}`` and
  ``channels_http_request_duration_seconds{endpoint, method, status}`` (histogram): every
  request, timed from the moment the WSGI call starts until the response body is closed.
  ``endpoint`` is the Flask endpoint (``api.create_channel``), never the raw path, so that
  made-up URLs cannot grow the series: a request no route matched is ``unmatched``.
- ``channels_webhook_deliveries_total{outcome}`` — ``WEBHOOK_DELIVERIES``; the deliverer counts
  each attempt's outcome (suggested: ``delivered``, ``failed`` (will retry), ``gave_up``,
  ``refused`` (SSRF guard)).
- ``channels_task_failures_total{task}`` — ``TASK_FAILURES``; a task that raised (the task
  engine's failure signal).
- ``channels_outbox_depth`` and ``channels_outbox_oldest_age_seconds`` — gauges read from the
  database *at scrape time*: the webhooks code registers a probe with
  ``register_outbox_probe(fn)`` (``fn()`` returns an ``OutboxState``; it runs inside the
  ``/metrics`` request, in its app context). A probe that fails (database down) is logged and
  reported as ``channels_scrape_probe_up{probe="outbox"} 0`` instead of failing the scrape.
  ``register_scrape_collector(name, fn)`` does the same for any other families. These values
  are global (one database), so every machine reports the same: aggregate them with ``max``.

**Multi-process mode** (gunicorn, several workers per machine): with ``PROMETHEUS_MULTIPROC_DIR``
in the environment *when prometheus-client is imported*, every process writes its counters and
histograms to files there and ``/metrics`` (whichever worker answers) adds up all of them
(``MultiProcessCollector``). The directory must be emptied at each start of the server:
``gunicorn -c python:core.gunicorn_hooks`` does it (and marks dead workers' files). A task
worker on the same machine given the same directory is included too; on a machine of its own,
``serve_metrics(port)`` exposes its counters to Prometheus on an internal port.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from flask import Flask, current_app, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from werkzeug.wsgi import ClosingIterator

from core.settings import SettingsError

log = logging.getLogger("channels.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
ENDPOINT_KEY = "channels.metrics_endpoint"
# Latency buckets for a JSON API answering in milliseconds, with room for slow outliers.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

# ``*_created`` series (a timestamp per label set) double the output and nothing here reads them.
disable_created_metrics()

# In-process metrics live in a registry of our own (never prometheus-client's global one): the
# exposition is exactly what is declared here, in every mode.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "channels_http_requests",
    "HTTP requests answered, by Flask endpoint, method and status code.",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "channels_http_request_duration_seconds",
    "Time from the start of a request until its response was sent, in seconds.",
    ["endpoint", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "channels_webhook_deliveries",
    "Webhook delivery attempts, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
TASK_FAILURES = Counter(
    "channels_task_failures",
    "Background tasks that raised, by task name.",
    ["task"],
    registry=REGISTRY,
)


class OutboxState(NamedTuple):
    """What an outbox probe reports: rows waiting, and the age of the oldest (0 when empty)."""

    depth: int
    oldest_age_seconds: float


# name -> fn() returning metric families; read at every scrape, in the /metrics request.
_SCRAPE_COLLECTORS: dict[str, Callable[[], Iterable[Metric]]] = {}


def register_scrape_collector(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Add families computed at scrape time (``GaugeMetricFamily`` ...); one per ``name``
    (registering a name again replaces it, so module reloads and repeated apps are harmless)."""
    _SCRAPE_COLLECTORS[name] = collect


def register_outbox_probe(probe: Callable[[], OutboxState]) -> None:
    """Report the outbox's depth and oldest row at every scrape from ``probe()``."""

    def collect() -> Iterable[Metric]:
        state = probe()
        depth = GaugeMetricFamily(
            "channels_outbox_depth", "Outbox rows not yet handed to the task engine."
        )
        depth.add_metric([], state.depth)
        age = GaugeMetricFamily(
            "channels_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet handed over, in seconds (0 when empty).",
        )
        age.add_metric([], state.oldest_age_seconds)
        return [depth, age]

    register_scrape_collector("outbox", collect)


def multiprocess_dir() -> str | None:
    """The directory of multi-process mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


class _Exposition:
    """What one scrape reports: the processes' metrics plus the scrape-time collectors."""

    def collect(self) -> Iterable[Metric]:
        directory = multiprocess_dir()
        if directory:
            yield from multiprocess.MultiProcessCollector(None, path=directory).collect()
        else:
            yield from REGISTRY.collect()
        probes_up = GaugeMetricFamily(
            "channels_scrape_probe_up",
            "1 when a scrape-time probe (read from the database) answered, else 0.",
            labels=["probe"],
        )
        for name, collect in list(_SCRAPE_COLLECTORS.items()):
            try:
                families = list(collect())
            except Exception:  # the scrape must still answer with everything else
                log.warning("metrics probe %s failed", name, exc_info=True)
                probes_up.add_metric([name], 0)
                continue
            probes_up.add_metric([name], 1)
            yield from families
        if _SCRAPE_COLLECTORS:
            yield probes_up


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type (OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Exposition()), content_type


def serve_metrics(port: int, addr: str = "127.0.0.1") -> None:
    """Expose this process's metrics (and its machine's, in multi-process mode) on ``port``:
    for task workers on machines without gunicorn. No token: bind it to an internal address."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=_Exposition())


# --- measuring requests --------------------------------------------------------------------------


class MetricsMiddleware:
    """Times every request from the start of the WSGI call until its body is closed."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status: list[str] = []

        def start_and_keep_status(code, headers, exc_info=None):
            status[:] = [code.split(" ", 1)[0]]
            return start_response(code, headers, exc_info)

        def observe():
            labels = (
                environ.get(ENDPOINT_KEY) or UNMATCHED,
                environ.get("REQUEST_METHOD", ""),
                status[0] if status else "500",
            )
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)

        try:
            body = self.wsgi_app(environ, start_and_keep_status)
        except BaseException:
            observe()
            raise
        return ClosingIterator(body, observe)


def init_metrics(app: Flask) -> None:
    """Measure requests when ``METRICS_TOKEN`` is set; check the multi-process set-up."""
    configured = app.config.get("PROMETHEUS_MULTIPROC_DIR")
    if configured and os.path.realpath(configured) != os.path.realpath(multiprocess_dir() or ""):
        # Set in instance/config.py or test_config: prometheus-client never sees it there.
        raise SettingsError(
            [
                f"{MULTIPROC_ENV}: expected in the environment of the server process "
                "(prometheus-client reads it from there when it is imported), not only in the "
                "app's configuration."
            ]
        )
    if not app.config.get("METRICS_TOKEN"):
        return

    def _remember_endpoint():
        # The rule matched (None for 404/405): a bounded label, never the raw path.
        request.environ[ENDPOINT_KEY] = request.endpoint or UNMATCHED

    app.before_request_funcs.setdefault(None, []).insert(0, _remember_endpoint)
    app.wsgi_app = MetricsMiddleware(app.wsgi_app)


def metrics_token() -> str | None:
    """The configured bearer token (None: /metrics is off)."""
    return current_app.config.get("METRICS_TOKEN")
