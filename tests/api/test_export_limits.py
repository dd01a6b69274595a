"""GET /api/channels/export is rate limited like every other API request (RATELIMIT_API per
key): the same budget as the list, a 429 envelope with Retry-After before anything streams."""

from __future__ import annotations

import uuid

import pytest

from tests import factories
from tests.conftest import base_config


@pytest.fixture
def app_config(database_url):
    """The limiter on, in memory: 3 API requests per key and minute."""
    config = base_config(database_url)
    config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_KEY_NAMESPACE=f"channels-test-{uuid.uuid4().hex}:",
        RATELIMIT_API="3 per minute",
    )
    return config


def test_exports_share_the_keys_budget(client, tenant, setup):
    """A list and two exports use the key's 3 requests; the 4th (an export) is 429."""
    factories.make_channel(setup, "email")
    headers = {"Authorization": f"Bearer {factories.make_api_key(tenant, scope='read')}"}
    assert client.get("/api/channels", headers=headers).status_code == 200
    for export_format in ("csv", "ndjson"):
        response = client.get(f"/api/channels/export?format={export_format}", headers=headers)
        assert response.status_code == 200 and response.get_data()
    limited = client.get("/api/channels/export", headers=headers)
    assert limited.status_code == 429
    assert limited.mimetype == "application/json"
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
