"""429 rate_limited: the per-key limit of DESIGN §4, in the envelope, with Retry-After."""

from __future__ import annotations

import uuid

import pytest

from core.models import Channel
from tests import factories
from tests.api.assertions import assert_error, count_rows
from tests.conftest import base_config


@pytest.fixture
def app_config(database_url):
    """The limiter on, three requests a minute per key, counters of this test only."""
    config = base_config(database_url)
    config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_API="3 per minute",
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_KEY_NAMESPACE=f"test-{uuid.uuid4().hex}:",
    )
    return config


def test_the_fourth_request_in_a_minute_is_429(api, tenant):
    """Three requests pass; the fourth is 429 rate_limited with a Retry-After in seconds."""
    for _ in range(3):
        assert api.get("/api/channels").status_code == 200
    response = api.get("/api/channels")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 61  # a minute, rounded up


def test_the_limit_is_per_key(api, client, tenant):
    """Another key of the same tenant has its own budget."""
    for _ in range(3):
        api.get("/api/channels")
    assert api.get("/api/channels").status_code == 429
    other = factories.ApiClient(client, factories.make_api_key(tenant, name="Second key"))
    assert other.get("/api/channels").status_code == 200


def test_writes_count_and_are_refused_too(api, setup):
    """A POST over the limit is 429 and creates nothing."""
    for _ in range(3):
        api.get("/api/channels")
    response = api.post("/api/channels", json=setup.email_payload())
    assert_error(response, 429, "rate_limited")
    assert count_rows(Channel) == 0


def test_the_budget_is_shared_by_every_route(api, setup):
    """One budget per key across endpoints: reads of three different routes exhaust it."""
    assert api.get("/api/channels").status_code == 200
    assert api.get("/api/integrations").status_code == 200
    assert api.get("/api/email_domains").status_code == 200
    assert_error(api.get("/api/phone_numbers"), 429, "rate_limited")
