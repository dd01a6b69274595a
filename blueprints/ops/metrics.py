"""``GET /metrics``: the Prometheus exposition (``core.metrics``), for a bearer METRICS_TOKEN."""

from __future__ import annotations

import hmac

from flask import abort, make_response, request

from blueprints.ops import bp
from core.http import error_response
from core.metrics import exposition, metrics_token


@bp.get("/metrics")
def metrics():
    """The metrics of every worker of this machine; 401 without the token, 404 when off."""
    token = metrics_token()
    if not token:
        abort(404)  # off: the same answer as any unknown path
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, token.encode()):
        response = error_response(401, "unauthorized", "A valid metrics token is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(request.headers.get("Accept"))
    response = make_response(body)
    response.headers["Content-Type"] = content_type
    return response
