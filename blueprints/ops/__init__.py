"""Operations endpoints for load balancers and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

Outside ``/api`` and the console: no API key, no session, no rate limit, no CSRF (GET only).
Every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__)


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


from blueprints.ops import health, metrics  # noqa: E402,F401  (routes register on bp)
