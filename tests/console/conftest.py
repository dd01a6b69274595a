"""Console fixtures: users of each role and signed-in test clients.

The ``app`` fixture keeps one application context pushed for the whole test, and Flask reuses
a pushed context for the test client's requests, so ``g`` would carry per-request caches
(Flask-Login's user, Flask-WTF's CSRF token, the console's tenant) from one request into the
next — which never happens in production. ``ConsoleClient`` starts every request with an
empty ``g``, as a real request would.
"""

from __future__ import annotations

import pytest
from flask import g
from flask.testing import FlaskClient

from tests import factories
from tests.console.helpers import sign_in


class ConsoleClient(FlaskClient):
    """The Flask test client, with a fresh ``g`` for every request (see the module docstring)."""

    def open(self, *args, **kwargs):
        """Clear the request-scoped caches, then make the request."""
        g.__dict__.clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    """A browser-like client of the console (overrides pytest-flask's ``client``)."""
    app.test_client_class = ConsoleClient
    return app.test_client()


@pytest.fixture
def admin(app, tenant):
    """A tenant admin of ``tenant``."""
    return factories.make_user(tenant, role="admin", email="admin@example.org")


@pytest.fixture
def support_user(app):
    """A support-staff user (no tenant, read-only)."""
    return factories.make_user(role="support", email="support@example.org")


@pytest.fixture
def console(client, admin):
    """The test client, signed in as ``admin``."""
    response = sign_in(client, admin.email)
    assert response.status_code == 303
    return client
