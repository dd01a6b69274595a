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
from werkzeug.security import generate_password_hash

from core.extensions import db
from core.models import User
from tests import factories
from tests.console.helpers import PASSWORD, sign_in

# Users of these tests store a cheap hash of PASSWORD (real scrypt costs ~0.5 s per hash and
# check). Signing in runs exactly the production code path; only the work factor differs.
CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def make_console_user(email: str, role: str = "admin", tenant=None) -> User:
    """A user of ``role`` (``tenant`` for admins) whose password is ``PASSWORD``."""
    user = User(
        email=email,
        name="",
        password_hash=CHEAP_HASH,
        role=role,
        tenant_id=tenant.id if tenant is not None and role == "admin" else None,
    )
    db.session.add(user)
    db.session.commit()
    return user


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
    return make_console_user("admin@example.org", "admin", tenant)


@pytest.fixture
def support_user(app):
    """A support-staff user (no tenant, read-only)."""
    return make_console_user("support@example.org", "support")


@pytest.fixture
def console(client, admin):
    """The test client, signed in as ``admin`` through the sign-in form."""
    response = sign_in(client, admin.email)
    assert response.status_code == 303
    return client


@pytest.fixture
def support_console(client, support_user):
    """The test client, signed in as a support user (read-only) who has a second factor (they
    need one to open a tenant; given after signing in, so the sign-in is the password alone)."""
    response = sign_in(client, support_user.email)
    assert response.status_code == 303
    factories.enroll_totp(support_user)
    return client


def another_browser(app, email: str, user_agent: str | None = None) -> ConsoleClient:
    """Another browser (its own cookies, optionally its own User-Agent), signed in as ``email``."""
    app.test_client_class = ConsoleClient
    browser = app.test_client()
    if user_agent is not None:
        browser.environ_base["HTTP_USER_AGENT"] = user_agent
    assert sign_in(browser, email).status_code == 303
    return browser
