"""Request ids: honoured or generated, returned on every response, in every log line and event."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import gunicorn
import pytest
from werkzeug.serving import make_server

from app import create_app
from core.extensions import db
from core.models import AuditEvent
from tests.conftest import base_config

GENERATED = re.compile(r"^[0-9a-f]{32}$")
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app_config(database_url, request):
    """The test configuration, plus what a test passes with indirect parametrization."""
    config = base_config(database_url)
    config.update(getattr(request, "param", {}))
    return config


@pytest.mark.parametrize(
    "path",
    ["/api/channels", "/api/no-such-thing", "/no-such-page", "/api/openapi.json", "/"],
)
def test_well_formed_id_is_returned_on_every_kind_of_response(client, path):
    """A well-formed X-Request-ID comes back unchanged on 200s, 401s and 404s, API or console."""
    response = client.get(path, headers={"X-Request-ID": "req-42.a:b_C"})
    assert response.headers["X-Request-ID"] == "req-42.a:b_C"


@pytest.mark.parametrize(
    "incoming",
    ["", "x" * 65, "has space", "semi;colon", "new\u00e9line", "<script>"],
)
def test_malformed_id_is_replaced_by_a_generated_one(client, incoming):
    """Empty, over-long or oddly-charactered ids are not echoed; a fresh id is generated."""
    response = client.get("/api/channels", headers={"X-Request-ID": incoming})
    assert GENERATED.match(response.headers["X-Request-ID"])


def test_generated_ids_differ_per_request(client):
    """Without a header every response gets its own id."""
    first = client.get("/api/channels").headers["X-Request-ID"]
    second = client.get("/api/channels").headers["X-Request-ID"]
    assert GENERATED.match(first) and GENERATED.match(second) and first != second


def test_error_responses_carry_the_id_and_it_is_logged(app, client):
    """A 500 (unexpected exception) still returns the id, and the logged error line names it."""

    def explode():
        """Fails on purpose."""
        raise RuntimeError("boom")

    app.add_url_rule("/api/_explode", "explode_for_test", explode)
    stream = io.StringIO()
    app.logger.handlers[0].setStream(stream)
    response = client.get("/api/_explode", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "trace-500"
    assert response.get_json()["error"]["code"] == "internal_error"
    lines = [line for line in stream.getvalue().splitlines() if "unhandled error" in line]
    assert lines and "[trace-500]" in lines[0]


def test_405_and_413_carry_the_id(api):
    """Errors raised by routing and by Werkzeug's size limit carry the id too."""
    not_allowed = api.client.put("/api/channels", headers={"X-Request-ID": "r405"})
    assert not_allowed.status_code == 405 and not_allowed.headers["X-Request-ID"] == "r405"
    too_big = api.post(
        "/api/channels",
        data=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json", "X-Request-ID": "r413"},
    )
    assert too_big.status_code == 413 and too_big.headers["X-Request-ID"] == "r413"


def test_audit_events_carry_the_request_id_and_client_ip(api, setup):
    """The audit event of an API write stores the request's id and the client's address."""
    response = api.post(
        "/api/channels",
        json=setup.email_payload(),
        headers={"X-Request-ID": "audit-trace-1"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 201
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.resource_id == response.get_json()["id"])
    )
    assert event.action == "channel.create"
    assert event.request_id == "audit-trace-1" and event.ip == "203.0.113.9"


def test_outside_requests_logs_say_dash(app):
    """Log lines written outside any request (a fresh thread, as at start-up) carry ``-``."""
    stream = io.StringIO()
    app.logger.handlers[0].setStream(stream)
    thread = threading.Thread(target=app.logger.warning, args=("outside",))
    thread.start()
    thread.join(5)
    assert "[-] app: outside" in stream.getvalue()


def test_werkzeug_request_lines_carry_the_id(app):
    """The development server's access line for a request names the request's id."""
    stream = io.StringIO()
    handler = logging.getLogger("werkzeug").handlers[0]
    previous = handler.setStream(stream)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.server_port}/api/channels",
            headers={"X-Request-ID": "dev-server-7"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        caught.value.close()
        assert caught.value.code == 401
        assert caught.value.headers["X-Request-ID"] == "dev-server-7"
    finally:
        server.shutdown()
        thread.join(5)
        handler.setStream(previous)
    lines = [line for line in stream.getvalue().splitlines() if "GET /api/channels" in line]
    assert lines and "[dev-server-7]" in lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_access_and_error_logs_carry_the_id(tmp_path):
    """Under gunicorn, the access line of a request and the app's own log lines name its id."""
    port = _free_port()
    env = {
        **os.environ,
        "CHANNELS_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.db'}",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "1",
        "-b",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "app:create_app()",
    ]
    if gunicorn.version_info >= (27,):  # keep clear of other gunicorns' control socket
        command.insert(-1, "--no-control-socket")
    with open(tmp_path / "out.log", "w+") as log:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/api/no-such-thing",
                        headers={"X-Request-ID": "gunicorn-rid-1"},
                    )
                    urllib.request.urlopen(request, timeout=2)
                except urllib.error.HTTPError as exc:
                    exc.close()
                    assert exc.code == 404 and exc.headers["X-Request-ID"] == "gunicorn-rid-1"
                    break
                except OSError:
                    assert time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.2)
        finally:
            process.terminate()
            process.wait(10)
        log.seek(0)
        output = log.read()
    access = [line for line in output.splitlines() if "GET /api/no-such-thing" in line]
    assert access and access[0].startswith("[gunicorn-rid-1] ")
    # The worker's own lines, outside any request, are marked with "-".
    assert any("[-] Worker exiting" in line for line in output.splitlines())


def test_csrf_failures_and_console_404s_carry_the_id(client):
    """A console POST without a CSRF token (400) and an unknown page (404) return the id."""
    refused = client.post("/login", data={"email": "x"}, headers={"X-Request-ID": "csrf-1"})
    assert refused.status_code == 400 and refused.headers["X-Request-ID"] == "csrf-1"
    missing = client.get("/definitely/not/here", headers={"X-Request-ID": "html-404"})
    assert missing.status_code == 404 and missing.headers["X-Request-ID"] == "html-404"


def test_forwarded_client_address_is_ignored_without_trusted_proxies(api, setup):
    """By default X-Forwarded-For is not trusted: the event keeps the socket's address."""
    api.post(
        "/api/channels",
        json=setup.email_payload(),
        headers={"X-Forwarded-For": "198.51.100.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "channel.create"))
    assert event.ip == "10.0.0.2"


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1}], indirect=True)
def test_behind_one_trusted_proxy_the_forwarded_address_is_audited(api, setup):
    """TRUSTED_PROXIES=1: the address the proxy forwards is the one in the audit event."""
    api.post(
        "/api/channels",
        json=setup.email_payload(),
        headers={"X-Forwarded-For": "198.51.100.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "channel.create"))
    assert event.ip == "198.51.100.7"


def test_a_malformed_trusted_proxies_setting_refuses_to_start(database_url):
    """TRUSTED_PROXIES must be a whole number."""
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        create_app({**base_config(database_url), "TRUSTED_PROXIES": "yes"})
