"""The providers' HTTP transport (httpx): redirects not followed, PROVIDER_TIMEOUT honoured,
PROVIDER_CA_FILE trusted, answers capped, against real local HTTP and HTTPS servers."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from app import create_app
from core.providers.outcome import ProviderFailure
from core.providers.transport import MAX_RESPONSE_BYTES, HttpCall, http_request
from core.services.provider_checks import check_credentials
from tests.conftest import base_config
from tests.services.fake_providers import LocalHTTPServer, SilentServer, make_tls_files


class _Handler(BaseHTTPRequestHandler):
    """Redirects ``/redirect...`` elsewhere, floods ``/big``, answers a small JSON otherwise."""

    server: LocalServer

    def log_message(self, format, *args):  # keep test output clean
        return

    def do_GET(self):
        """Record the request, then answer as the path asks."""
        self.server.received.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        )
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * (4 * MAX_RESPONSE_BYTES) if self.path == "/big" else b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalServer(LocalHTTPServer):
    """A local HTTP server (HTTPS with ``tls_context``) that records what it receives."""

    def __init__(self, tls_context=None):
        super().__init__(_Handler, tls_context)
        self.redirect_to = ""


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(CA file, server TLS context) for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def transport_app():
    """An app for calls that touch no database; tests change its config with monkeypatch."""
    config = base_config("sqlite://")
    config.update(PROVIDER_TIMEOUT=3.0, PROVIDER_CA_FILE=None)
    application = create_app(config)
    with application.app_context():
        yield application


def test_redirects_are_not_followed(transport_app, monkeypatch):
    """A 302 comes back as the answer; the credentials never reach the redirect's target."""
    with LocalServer() as provider, LocalServer() as elsewhere:
        provider.redirect_to = f"{elsewhere.url}/stolen"
        answer = http_request(
            "SendGrid", HttpCall("GET", f"{provider.url}/redirect", {"Authorization": "Bearer k"})
        )
        monkeypatch.setitem(
            transport_app.config, "PROVIDER_BASE_URLS", {"sendgrid": f"{provider.url}/redirect"}
        )
        result = check_credentials("sendgrid", {"api_key": "SG.secret"})
    assert answer.status == 302
    assert elsewhere.received == []
    assert not result.ok
    assert result.message.startswith("SendGrid answered with an unexpected status (HTTP 302")


def test_timeout_comes_from_the_setting(transport_app, monkeypatch):
    """A server that never answers is given up on after PROVIDER_TIMEOUT, not later."""
    monkeypatch.setitem(transport_app.config, "PROVIDER_TIMEOUT", 0.3)
    with SilentServer() as silent:
        started = time.monotonic()
        with pytest.raises(ProviderFailure) as failure:
            http_request("Postmark", HttpCall("GET", f"http://127.0.0.1:{silent.port}/server"))
        elapsed = time.monotonic() - started
    assert failure.value.message == (
        f"Postmark did not answer within 0.3 seconds (127.0.0.1:{silent.port})."
    )
    assert elapsed < 2.5


def test_ca_file_is_trusted_when_set(transport_app, tls, monkeypatch):
    """HTTPS to a server signed by PROVIDER_CA_FILE's CA works; without it, it is refused."""
    with LocalServer(tls_context=tls[1]) as server:
        call = HttpCall("GET", f"{server.url}/ok")
        with pytest.raises(ProviderFailure) as untrusted:
            http_request("Twilio", call)
        monkeypatch.setitem(transport_app.config, "PROVIDER_CA_FILE", tls[0])
        answer = http_request("Twilio", call)
    assert untrusted.value.message.startswith(
        f"Could not connect securely to Twilio at 127.0.0.1:{server.server_address[1]}: "
        "its certificate is"
    )
    assert (answer.status, json.loads(answer.body)) == (200, {"ok": True})
    assert len(server.received) == 1


def test_answers_are_capped(transport_app):
    """At most MAX_RESPONSE_BYTES of an answer are read."""
    with LocalServer() as server:
        answer = http_request("Vonage", HttpCall("GET", f"{server.url}/big"))
    assert answer.status == 200
    assert len(answer.body) == MAX_RESPONSE_BYTES


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///nohost", "http://127.0.0.1:x/"])
def test_invalid_addresses_are_named(transport_app, url):
    """A base URL that is not a usable http(s) URL is reported as such, not raised."""
    with pytest.raises(ProviderFailure) as failure:
        http_request("Mailgun", HttpCall("GET", url))
    assert failure.value.message == "The address configured for Mailgun is not a valid http(s) URL."


def test_user_agent_and_accept_are_sent(transport_app):
    """Every call says who is calling and asks for JSON."""
    with LocalServer() as server:
        http_request("MessageBird", HttpCall("GET", f"{server.url}/ok"))
    [received] = server.received
    assert received["headers"]["user-agent"] == "channels-provider-check/1.0"
    assert received["headers"]["accept"] == "application/json"
