"""The console's cookie session belongs to the console: API requests never open it.

The API authenticates with bearer keys only (CSRF exempt), so its requests neither read nor
verify the console's cookie, never refresh it and do not vary on it; the console keeps its
session exactly as before (``app.SigningSessionInterface``).
"""

from __future__ import annotations

import pytest
from flask import session

from tests import factories


def _vary(response) -> set[str]:
    return {value.strip().lower() for value in response.headers.get("Vary", "").split(",")}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/channels"),
        ("get", "/api/openapi.json"),
        ("get", "/api/nothing-here"),
        ("post", "/api/channels"),
    ],
)
def test_an_api_request_ignores_the_console_cookie(console, tenant, method, path):
    """A signed-in browser's API request: answered as from any client, with no Set-Cookie (the
    console's session is not refreshed) and no ``Vary: Cookie`` (the answer does not depend on
    it), whatever the route and status."""
    key = factories.make_api_key(tenant)
    response = getattr(console, method)(path, headers={"Authorization": f"Bearer {key}"}, json={})
    assert response.headers.get("Content-Type") == "application/json"
    assert "Set-Cookie" not in response.headers, path
    assert "cookie" not in _vary(response), path


def test_the_console_cookie_does_not_authenticate_the_api(console):
    """Signed in to the console, an API request without a key is still 401."""
    response = console.get("/api/channels")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", ["/channels", "/api-keys"])
def test_the_console_keeps_its_session(console, path):
    """Console pages still read the session (the signed-in page) and vary on the cookie, those
    whose path merely starts with "/api" too."""
    response = console.get(path)
    assert response.status_code == 200
    assert "cookie" in _vary(response)


def test_an_api_request_cannot_write_a_session(app):
    """Writing to the session during an API request is a bug, refused with a clear message
    (never silently dropped)."""
    with app.test_request_context("/api/channels"):
        assert dict(session) == {}
        with pytest.raises(RuntimeError, match="no console session"):
            session["user"] = "x"
    with app.test_request_context("/channels"):
        session["user"] = "x"  # the console's own session still takes writes
        assert session["user"] == "x"
