"""A real HTTP receiver of webhooks on 127.0.0.1, served by a thread (tests only).

It records every request (headers, body) and answers ``status`` (200 by default), after
``delay`` seconds when set; ``wait_for(n)`` blocks until n requests arrived.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from standardwebhooks.webhooks import Webhook

from tests.services.fake_providers import LocalHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        server: Receiver = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with server.lock:
            server.started += 1
            server.arrived.notify_all()
        if server.delay:
            time.sleep(server.delay)
        with server.lock:
            server.received.append({"headers": dict(self.headers.items()), "body": body})
            server.arrived.notify_all()
        status = server.status
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", server.url + "/elsewhere")
        answer = server.answer
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        try:
            self.wfile.write(answer)
        except BrokenPipeError:  # the sender gave up waiting (the timeout tests)
            pass

    def log_message(self, *args):
        pass


class Receiver(LocalHTTPServer):
    """The receiver; ``received`` holds {"headers", "body"} dicts in arrival order."""

    def __init__(self, status: int = 200):
        super().__init__(_Handler)
        self.status = status
        self.delay = 0.0
        self.answer = b"ok"
        self.started = 0  # requests that arrived, answered or not yet
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        """Block until ``count`` requests arrived (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received)} of {count} webhooks arrived in {timeout:g} s"
                    )
                self.arrived.wait(left)
            return list(self.received)

    def wait_started(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` requests arrived, before they are answered."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.started < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.started} of {count} requests in {timeout:g} s")
                self.arrived.wait(left)

    def payloads(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received]


def verify(secret: str, request: dict) -> dict:
    """The payload, verified with the standardwebhooks library (raises when the signature is
    wrong)."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    return Webhook(secret).verify(request["body"], headers)
