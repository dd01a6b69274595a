"""Readiness: may a load balancer send this process requests? (``GET /readyz``)

``readiness()`` runs every check and answers ``(ready, results)``; each check is a function that
returns normally when its dependency answers and raises when it does not. Built in:

- ``database``: ``SELECT 1`` on a connection of the app's engine (a fresh one when the pool's
  is dead: the pool pre-pings).
- ``broker``: only when ``BROKER_URL`` is configured (``app.config.get``: the task engine owns
  that setting). ``redis://``/``rediss://``/``unix://`` URLs are pinged with redis-py (one
  client per URL and process, so the probe reuses its connection); any other scheme goes
  through kombu (Celery's transport library) when it is installed.

``register_readiness_check(name, fn)`` adds one (the task engine may replace ``broker`` with its
own). The answer names each check and, for a failed one, only the error's class: ``/readyz``
needs no credentials, so nothing of a URL or a server's message is shown (the log has them).
``/healthz`` runs none of this: it answers as long as the process does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import current_app
from sqlalchemy import text

from core.extensions import db

log = logging.getLogger("channels.health")

CHECK_TIMEOUT_SECONDS = 2.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

_CHECKS: dict[str, Callable[[], None]] = {}
_redis_clients: dict[str, object] = {}
_redis_lock = threading.Lock()


def register_readiness_check(name: str, check: Callable[[], None]) -> None:
    """Add (or replace) a check; it raises when its dependency does not answer."""
    _CHECKS[name] = check


def check_database() -> None:
    """The database answers a trivial query."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis_client(url: str):
    """One redis-py client per URL in this process (its pool survives between probes)."""
    import redis

    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                socket_timeout=CHECK_TIMEOUT_SECONDS,
            )
            _redis_clients[url] = client
        return client


def check_broker() -> None:
    """The task broker named by BROKER_URL accepts a connection (skipped when unset)."""
    url = current_app.config.get("BROKER_URL")
    if not url:
        return
    if url.startswith(REDIS_SCHEMES):
        _redis_client(url).ping()
        return
    try:
        import kombu
    except ImportError:
        raise RuntimeError("no client for this broker URL's scheme") from None
    with kombu.Connection(url, connect_timeout=CHECK_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1)


def _configured_checks() -> dict[str, Callable[[], None]]:
    """The checks that apply to this app: the database always, the broker when configured."""
    checks: dict[str, Callable[[], None]] = {"database": check_database}
    if current_app.config.get("BROKER_URL"):
        checks["broker"] = check_broker
    checks.update(_CHECKS)
    return checks


def readiness() -> tuple[bool, dict[str, dict]]:
    """Run every check: (all passed, {name: {"status": "ok"|"unavailable", ...}})."""
    results: dict[str, dict] = {}
    for name, check in _configured_checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = {"status": "unavailable", "error": type(exc).__name__}
        else:
            results[name] = {"status": "ok"}
        results[name]["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return all(r["status"] == "ok" for r in results.values()), results
