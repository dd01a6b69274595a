"""GET /api/openapi.json: the OpenAPI 3.1 description of the API, assembled once per app from
the routes' declarations."""

from flask import current_app

from blueprints.api import bp
from core.openapi import SERVER_ERRORS, build_openapi, documented


@bp.get("/openapi.json")
@documented(
    operation_id="getOpenApi",
    summary="This OpenAPI document",
    tag="Meta",
    ok={
        200: {
            "description": "The OpenAPI 3.1 document.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    errors=SERVER_ERRORS,
    public=True,
)
def openapi():
    """The OpenAPI document (no key needed)."""
    document = current_app.extensions.get("channels.openapi")
    if document is None:
        document = current_app.extensions["channels.openapi"] = build_openapi(current_app)
    return document
