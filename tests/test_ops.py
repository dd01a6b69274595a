"""Operations endpoints: /healthz, /readyz (database and broker), /metrics (token, content).

The database outage under gunicorn is in tests/reliability/test_faults.py, and multi-process
metrics under gunicorn in tests/reliability/test_metrics_live.py.
"""

from __future__ import annotations

import os
import re

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.extensions import db
from core.metrics import OutboxState, register_outbox_probe, register_scrape_collector
from tests import factories
from tests.services.fake_providers import closed_port

TOKEN = "metrics-token-0123456789abcdef"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def get(client, path, **kwargs):
    """GET, the response closed (the WSGI close is when a request is measured)."""
    response = client.get(path, **kwargs)
    response.close()
    return response


def scrape(client, token=TOKEN) -> dict[str, dict]:
    """/metrics parsed: {sample name: {frozenset(labels): value}}."""
    response = get(client, "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get(name, {}).get(frozenset(labels.items()), 0.0)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "METRICS_TOKEN": TOKEN}


@pytest.fixture
def clean_probes():
    """Scrape-time collectors registered by a test are removed after it."""
    before = dict(metrics._SCRAPE_COLLECTORS)
    yield
    metrics._SCRAPE_COLLECTORS.clear()
    metrics._SCRAPE_COLLECTORS.update(before)


# --- /healthz and /readyz ----------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(app, client, monkeypatch):
    """200 {"status": "ok"}, no-store, and not one statement (the engine is made to fail)."""

    def broken(*args, **kwargs):
        raise AssertionError("healthz touched the database")

    monkeypatch.setattr(db.engine, "connect", broken)
    monkeypatch.setattr(db.session, "execute", broken)
    response = get(client, "/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_200_when_the_database_answers(client):
    """Database up, no broker configured: 200 naming the one check."""
    response = get(client, "/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and list(body["checks"]) == ["database"]
    assert body["checks"]["database"]["status"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_naming_the_database_when_it_fails(app, client, monkeypatch):
    """A failing database: 503, Retry-After, the check named with its error class only."""
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("secret-host:5432"))

    monkeypatch.setattr(db.engine, "connect", down)
    response = get(client, "/readyz")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    assert body["status"] == "unavailable" and body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "unavailable"
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert "secret-host" not in response.get_data(as_text=True)
    monkeypatch.undo()
    assert get(client, "/readyz").status_code == 200  # back


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def test_readyz_checks_the_broker_when_configured(app, client):
    """BROKER_URL set: a broker that answers is ok; one that does not makes readyz 503."""
    if not _redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    app.config["BROKER_URL"] = REDIS_URL
    response = get(client, "/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["broker"]["status"] == "ok"

    app.config["BROKER_URL"] = f"redis://:hunter2@127.0.0.1:{closed_port()}/7"
    response = get(client, "/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["error"] == "ConnectionError"
    assert "hunter2" not in response.get_data(as_text=True)


def test_ops_routes_need_no_key_and_have_no_rate_limit(app, client):
    """Load balancers poll often: no API key, no session, never a 429 even when limits are on."""
    app.config["RATELIMIT_ENABLED"] = True
    for _ in range(30):
        assert get(client, "/healthz").status_code == 200
        assert get(client, "/readyz").status_code == 200


# --- /metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
def test_metrics_needs_the_token(client, header):
    """No token, a wrong one or another scheme: 401 with WWW-Authenticate, no metric shown."""
    headers = {"Authorization": header} if header else {}
    response = get(client, "/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert b"channels_http" not in response.data


def test_metrics_is_off_without_a_token(app_config):
    """METRICS_TOKEN unset: /metrics is a 404 like any unknown path, and nothing is measured."""
    from app import create_app

    app = create_app({**app_config, "METRICS_TOKEN": None})
    client = app.test_client()
    off = get(client, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    unknown = get(client, "/no-such-page")
    assert off.status_code == unknown.status_code == 404

    def page(response):  # the CSRF token carries a timestamp: the rest must be the same
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", response.get_data(as_text=True))

    assert page(off) == page(unknown)
    assert not isinstance(app.wsgi_app, metrics.MetricsMiddleware)


def test_requests_are_counted_by_endpoint_method_and_status(app, client, tenant):
    """API and console requests land under their Flask endpoint and status, with latencies."""
    key = factories.make_api_key(tenant, scope="write")
    auth = {"Authorization": f"Bearer {key}"}
    before = scrape(client)
    for _ in range(3):
        assert get(client, "/api/channels", headers=auth).status_code == 200
    assert get(client, "/api/channels", headers={"Authorization": "Bearer nope"}).status_code == 401
    response = client.post("/api/channels", json={"name": ""}, headers=auth)
    response.close()
    assert response.status_code == 422
    assert get(client, "/definitely/not/a/route").status_code == 404
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    listed = {"endpoint": "api.list_channels", "method": "GET", "status": "200"}
    assert delta("channels_http_requests_total", **listed) == 3
    refused = {"endpoint": "api.list_channels", "method": "GET", "status": "401"}
    assert delta("channels_http_requests_total", **refused) == 1
    invalid = {"endpoint": "api.create_channel", "method": "POST", "status": "422"}
    assert delta("channels_http_requests_total", **invalid) == 1
    # A made-up path is one bounded series, never its own label value.
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert delta("channels_http_requests_total", **unmatched) == 1
    assert not any("/definitely" in str(labels) for labels in after["channels_http_requests_total"])
    # The histogram: 3 observations, every bucket cumulative up to +Inf, a positive sum.
    assert delta("channels_http_request_duration_seconds_count", **listed) == 3
    assert delta("channels_http_request_duration_seconds_bucket", **listed, le="+Inf") == 3
    assert delta("channels_http_request_duration_seconds_sum", **listed) > 0
    buckets = [
        value(after, "channels_http_request_duration_seconds_bucket", **listed, le=le)
        for le in [*(str(b) for b in metrics.LATENCY_BUCKETS), "+Inf"]
    ]
    assert buckets == sorted(buckets)


def test_metrics_content_types(client):
    """Prometheus text by default; OpenMetrics when the scraper asks for it."""
    plain = get(client, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE channels_webhook_deliveries_total counter" in plain.get_data(as_text=True)
    open_metrics = get(
        client,
        "/metrics",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
    )
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.get_data(as_text=True).rstrip().endswith("# EOF")


def test_delivery_and_task_counters_are_exposed(client):
    """The counters the webhooks code increments appear with their labels."""
    before = scrape(client)
    metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
    metrics.WEBHOOK_DELIVERIES.labels("failed").inc(2)
    metrics.TASK_FAILURES.labels("webhooks.deliver").inc()
    after = scrape(client)
    for name, labels, expected in [
        ("channels_webhook_deliveries_total", {"outcome": "delivered"}, 1),
        ("channels_webhook_deliveries_total", {"outcome": "failed"}, 2),
        ("channels_task_failures_total", {"task": "webhooks.deliver"}, 1),
    ]:
        assert value(after, name, **labels) - value(before, name, **labels) == expected


def test_outbox_probe_is_read_at_scrape_time(client, clean_probes):
    """The registered probe runs at each scrape; its values are the gauges, probe_up 1."""
    states = iter([OutboxState(7, 42.5), OutboxState(0, 0.0)])
    register_outbox_probe(lambda: next(states))
    first = scrape(client)
    assert value(first, "channels_outbox_depth") == 7
    assert value(first, "channels_outbox_oldest_age_seconds") == 42.5
    assert value(first, "channels_scrape_probe_up", probe="outbox") == 1
    second = scrape(client)
    assert value(second, "channels_outbox_depth") == 0


def test_a_failing_probe_does_not_fail_the_scrape(client, clean_probes):
    """A probe that raises (database down): probe_up 0, every other metric still served."""

    def down():
        raise RuntimeError("database unavailable")

    register_outbox_probe(down)
    register_scrape_collector("other", lambda: [])
    samples = scrape(client)
    assert value(samples, "channels_scrape_probe_up", probe="outbox") == 0
    assert value(samples, "channels_scrape_probe_up", probe="other") == 1
    assert "channels_outbox_depth" not in samples
    assert "channels_http_requests_total" in samples


def test_metrics_token_is_never_shown(client):
    """The token never appears in what /metrics, /readyz or the settings errors show."""
    body = get(client, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).data
    assert TOKEN.encode() not in body
    assert TOKEN.encode() not in get(client, "/readyz").data


@pytest.mark.parametrize("bad", ["short", "has spaces in it 0123456789"])
def test_a_weak_metrics_token_stops_the_app(app_config, bad):
    """A token under 16 characters or with spaces refuses to start, the value not echoed."""
    from app import create_app
    from core.settings import SettingsError

    with pytest.raises(SettingsError) as caught:
        create_app({**app_config, "METRICS_TOKEN": bad})
    assert "METRICS_TOKEN" in str(caught.value) and bad not in str(caught.value)


def test_multiproc_dir_only_in_the_app_config_stops_the_app(app_config, tmp_path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR must be in the environment: prometheus-client reads it there."""
    from app import create_app
    from core.settings import SettingsError

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(SettingsError, match="expected in the environment"):
        create_app({**app_config, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR.*existing directory"):
        create_app({**app_config, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})


def test_metric_names_follow_prometheus_conventions(client):
    """Every family is channels_-prefixed snake case; counters end in _total, times in seconds."""
    response = get(client, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        assert re.fullmatch(r"channels_[a-z_]+", family.name), family.name
        if "duration" in family.name:
            assert family.name.endswith("_seconds")
