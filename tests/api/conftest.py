"""Fixtures of the API tests: a second tenant, ready for channels, with its own key."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def other_setup(app, other_tenant):
    """Another tenant with its own integrations, verified domain (example.com) and number."""
    return factories.make_ready_tenant(other_tenant)


@pytest.fixture
def other_api(app, client, other_tenant):
    """A write-key client of the other tenant."""
    return factories.ApiClient(client, factories.make_api_key(other_tenant, scope="write"))
