"""/api/integrations: provider integrations; secrets are write-only."""

from __future__ import annotations

from flask import g, request, url_for
from sqlalchemy import select

from blueprints.api import (
    bp,
    handover_headers,
    json_body,
    query_choice,
    query_limit,
    write_endpoint,
)
from core.extensions import db
from core.models import CHANNEL_TYPES, Integration
from core.openapi import (
    BODY_ERRORS,
    CHANNEL_TYPE,
    CURSOR,
    ID_BODY_ERRORS,
    ID_DELETE_ERRORS,
    ID_READ_ERRORS,
    LIMIT,
    READ_ERRORS,
    body,
    documented,
    no_content,
    path_id,
    query,
)
from core.pagination import keyset_page
from core.providers import SECRET_MASK
from core.serializers import integration_to_api
from core.services import integrations as service
from core.services import provider_checks


@bp.post("/integrations")
@documented(
    operation_id="createIntegration",
    summary="Create an integration",
    tag="Integrations",
    ok={201: body("Integration", "The integration was created.", ("Location",))},
    errors=BODY_ERRORS,
    request_schema="IntegrationCreate",
    description="Secret credentials are encrypted at rest and never shown again: responses "
    f"show them as `{SECRET_MASK}`.",
)
@write_endpoint
def create_integration():
    """Create an integration (201); its secrets are encrypted and never shown again."""
    integration = service.create_integration(g.tenant_id, json_body(), g.actor)
    location = url_for("api.get_integration", integration_id=integration.id)
    return integration_to_api(integration), 201, {"Location": location}


@bp.get("/integrations")
@documented(
    operation_id="listIntegrations",
    summary="List integrations",
    tag="Integrations",
    ok={200: body("IntegrationList", "One page of integrations, newest first.")},
    errors=READ_ERRORS,
    parameters=[
        query("channel_type", CHANNEL_TYPE, "Only integrations of this type."),
        LIMIT,
        CURSOR,
    ],
)
def list_integrations():
    """List the tenant's integrations, newest first."""
    query = select(Integration).where(Integration.tenant_id == g.tenant_id)
    channel_type = query_choice("channel_type", CHANNEL_TYPES)
    if channel_type:
        query = query.where(Integration.channel_type == channel_type)
    rows, next_cursor = keyset_page(
        db.session, query, Integration, query_limit(), request.args.get("cursor")
    )
    return {"data": [integration_to_api(i) for i in rows], "next_cursor": next_cursor}


@bp.get("/integrations/<integration_id>")
@documented(
    operation_id="getIntegration",
    summary="Get an integration",
    tag="Integrations",
    ok={200: body("Integration")},
    errors=ID_READ_ERRORS,
    parameters=[path_id("integration_id", "integration")],
)
def get_integration(integration_id):
    """One integration, secrets masked."""
    return integration_to_api(service.get_integration(g.tenant_id, integration_id))


@bp.patch("/integrations/<integration_id>")
@documented(
    operation_id="updateIntegration",
    summary="Update an integration",
    tag="Integrations",
    ok={200: body("Integration", "The updated integration.", ("Default-Handover",))},
    errors=ID_BODY_ERRORS,
    parameters=[path_id("integration_id", "integration")],
    request_schema="IntegrationUpdate",
    description="Rename, replace credentials (omitted credentials and secrets sent back as "
    f"`{SECRET_MASK}` keep their value), or set `status`. Disabling an integration disables "
    "its channels.",
)
@write_endpoint
def update_integration(integration_id):
    """Rename, replace credentials (omitted or masked secrets are kept), enable/disable."""
    integration, outcomes = service.update_integration(
        g.tenant_id, integration_id, json_body(), g.actor
    )
    return integration_to_api(integration), 200, handover_headers(outcomes)


@bp.post("/integrations/<integration_id>/check")
@documented(
    operation_id="checkIntegration",
    summary="Check an integration's credentials",
    tag="Integrations",
    ok={200: body("Integration", "The integration with the outcome in `last_check`.")},
    errors=ID_BODY_ERRORS,
    parameters=[path_id("integration_id", "integration")],
    body_optional=True,
    description="Calls the provider now; a refusal is not an error of the request: "
    "`last_check.ok` is false and `last_check.message` says why.",
)
@write_endpoint
def check_integration(integration_id):
    """Check the credentials with the provider now; 200 with the integration's last_check."""
    json_body(required=False)
    outcome = provider_checks.check_integration(g.tenant_id, integration_id, g.actor)
    return integration_to_api(outcome.integration), 200


@bp.delete("/integrations/<integration_id>")
@documented(
    operation_id="deleteIntegration",
    summary="Delete an integration",
    tag="Integrations",
    ok={204: no_content("Deleted.")},
    errors=ID_DELETE_ERRORS,
    parameters=[path_id("integration_id", "integration")],
    description="409 while channels or phone numbers use it; the message names them.",
)
@write_endpoint
def delete_integration(integration_id):
    """Delete (204); 409 naming the channels or numbers that still use it."""
    service.delete_integration(g.tenant_id, integration_id, g.actor)
    return None, 204
