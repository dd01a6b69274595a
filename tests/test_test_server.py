"""The suite's own live server (the ``server`` fixture) honours PEP 3333 when a client drops.

Werkzeug's development server skips the response iterable's ``close()`` when the client resets
the connection right after the response was written (draining the socket in its ``finally``
raises again). Browser tests leave pages while static files are in flight, so the file behind
``send_file`` was left open and failed a test at random with an unclosed-file warning.
"""

from __future__ import annotations

import socket
import struct
import time

from tests.conftest import serving

ATTEMPTS = 30


class _Body:
    def __init__(self, closed: list[bool]):
        self.closed = closed

    def __iter__(self):
        yield b"x"

    def close(self):
        self.closed.append(True)


def test_a_response_is_closed_even_when_the_client_resets_the_connection():
    closed: list[bool] = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Body(closed)

    with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        for attempt in range(ATTEMPTS):
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                time.sleep(0.005)  # the response is written, the server drains the socket
                # Close with a reset (linger 0), as a browser aborting a request does.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            deadline = time.monotonic() + 5
            while len(closed) <= attempt and time.monotonic() < deadline:
                time.sleep(0.005)
            assert len(closed) == attempt + 1, f"response {attempt + 1} was never closed"
