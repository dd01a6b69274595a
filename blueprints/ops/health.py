"""``/healthz`` (the process answers) and ``/readyz`` (its dependencies answer) for load
balancers: point liveness probes at the first and traffic decisions at the second."""

from __future__ import annotations

from flask import jsonify

from blueprints.ops import bp
from core.health import readiness


@bp.get("/healthz")
def healthz():
    """200 while the process can answer at all; touches no database nor broker."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 when the database (and the broker, when BROKER_URL is set) answer; else 503
    naming what failed, with Retry-After."""
    ready, checks = readiness()
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if not ready:
        body["failed"] = [name for name, result in checks.items() if result["status"] != "ok"]
    response = jsonify(body)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response
