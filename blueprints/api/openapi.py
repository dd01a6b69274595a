"""GET /api/openapi.json: the OpenAPI 3.1 description of the API."""

from blueprints.api import bp
from core.openapi import build_openapi


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document (no key needed)."""
    return build_openapi()
