"""Security headers on every response: every GET route (API and console, signed in or not),
errors of every kind (401, 404, 405, 413, 415, 400, 500), and static files.

HTML pages: a CSP whose script-src names exactly our origin and the pinned htmx URL (the
``<script>`` tag carries the SRI hash), frame-ancestors 'none'. API responses: CSP
``default-src 'none'`` (JSON never needs to load anything) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.console.conftest import ConsoleClient, make_console_user
from tests.console.helpers import sign_in
from tests.reliability.sweep import get_urls, is_api


def _assert_common(response, url: str) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("Referrer-Policy") in (
        "same-origin",
        "strict-origin-when-cross-origin",
        "no-referrer",
    ), url
    assert headers.get("X-Frame-Options") == "DENY", url
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    assert "Server" not in headers or "Werkzeug" not in headers.get("Server", ""), url


def _assert_headers(app, response, url: str) -> None:
    """The headers every response needs, and the kind-specific ones."""
    _assert_common(response, url)
    csp = response.headers["Content-Security-Policy"]
    if is_api(url):
        assert csp.startswith("default-src 'none'"), url
        assert response.headers.get("Cache-Control") == "no-store", url
        # JSON, but for the export's own body (NDJSON by default; its errors are JSON).
        streamed = url == "/api/channels/export" and response.status_code == 200
        expected = "application/x-ndjson" if streamed else "application/json"
        assert response.mimetype == expected, url
    elif response.mimetype == "text/html":
        script_src = re.search(r"script-src ([^;]*)", csp).group(1).split()
        assert script_src == ["'self'", app.config["HTMX_SRC"]], (url, csp)
        assert "object-src 'none'" in csp and "base-uri 'self'" in csp, url


@pytest.fixture
def ids(app, setup):
    """Real ids of every kind of resource of ``setup``'s tenant."""
    channel = factories.make_channel(setup, "email")
    factories.make_api_key(setup.tenant, name="Listed key")
    from core.models import ApiKey

    key = ApiKey.query.filter_by(tenant_id=setup.tenant.id).first()
    admin = make_console_user("headers-admin@example.org", "admin", setup.tenant)
    return {
        "channel_id": channel.id,
        "integration_id": setup.email_integration.id,
        "domain_id": setup.domain.id,
        "phone_number_id": setup.number.id,
        "key_id": key.id,
        "user_id": admin.id,
        "_admin_email": admin.email,
    }


def test_every_get_route_sends_the_security_headers(app, setup, ids):
    """Each GET route: anonymous, signed-in admin, and with an API key — headers on all."""
    app.test_client_class = ConsoleClient
    anonymous, console = app.test_client(), app.test_client()
    assert sign_in(console, ids["_admin_email"]).status_code == 303
    key = factories.make_api_key(setup.tenant)
    urls = get_urls(app, ids)
    assert any(is_api(u) for u in urls) and any(not is_api(u) for u in urls)
    html_pages = 0
    for url in urls:
        for client, headers in (
            (anonymous, {}),
            (console, {}),
            (anonymous, {"Authorization": f"Bearer {key}"}),
        ):
            response = client.get(url, headers=headers)
            assert response.status_code < 500, (url, response.status_code)
            _assert_headers(app, response, url)
            html_pages += response.mimetype == "text/html" and response.status_code == 200
            response.close()  # static files are streamed from open files
            # htmx fragments of the same page carry the headers too.
            fragment = client.get(url, headers={**headers, "HX-Request": "true"})
            _assert_headers(app, fragment, url)
            fragment.close()
    assert html_pages >= 5


def test_pages_load_htmx_from_the_pinned_url_with_sri(app, setup, ids):
    """The only external script is HTMX_SRC, with the pinned integrity hash and crossorigin."""
    app.test_client_class = ConsoleClient
    console = app.test_client()
    sign_in(console, ids["_admin_email"])
    html = console.get("/channels").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    external = [s for s in scripts if 'src="http' in s]
    assert len(external) == 1
    assert f'src="{app.config["HTMX_SRC"]}"' in external[0]
    assert f'integrity="{app.config["HTMX_SRI"]}"' in external[0]
    assert 'crossorigin="anonymous"' in external[0]
    assert all("src=" in s for s in scripts)  # no inline scripts (the CSP would block them)


def test_error_responses_send_the_security_headers(app, api, setup, monkeypatch):
    """401, 400, 404, 405, 413, 415, 500 on the API and 404/405 on the console: same headers."""
    cases = [
        ("/api/channels", api.client.get("/api/channels"), 401),
        (
            "/api/channels",
            api.post("/api/channels", data="{", content_type="application/json"),
            400,
        ),
        ("/api/nope", api.get("/api/nope"), 404),
        ("/api/channels", api.client.put("/api/channels"), 405),
        (
            "/api/channels",
            api.post("/api/channels", data="x" * 70_000, content_type="application/json"),
            413,
        ),
        ("/api/channels", api.post("/api/channels", data="{}", content_type="text/plain"), 415),
        ("/nope", api.client.get("/nope"), 404),
        ("/login", api.client.put("/login"), 405),
    ]
    import blueprints.api.channels as channel_views

    def explode(*args, **kwargs):
        raise RuntimeError("boom: a bug in a view")

    monkeypatch.setattr(channel_views, "channel_row_to_api", explode)
    factories.make_channel(setup, "email")
    cases.append(("/api/channels", api.get("/api/channels"), 500))
    for url, response, status in cases:
        assert response.status_code == status, (url, response.status_code)
        _assert_headers(app, response, url)
        assert "Traceback" not in response.get_data(as_text=True)
        assert "boom" not in response.get_data(as_text=True)


def test_console_errors_and_static_files_send_the_headers(app, client):
    """Static assets and the console's HTML error page carry the same protections."""
    for url in ("/static/app.css", "/static/app.js", "/channels/does-not-exist/edit"):
        response = client.get(url)
        _assert_common(response, url)
        response.close()
