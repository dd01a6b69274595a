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
from core.conditional import conditional, etag_header
from core.extensions import db
from core.models import CHANNEL_TYPES, Integration
from core.openapi import ResourceDocs, documented, query
from core.pagination import keyset_page
from core.providers import SECRET_MASK
from core.schemas import integrations as shapes
from core.schemas import render_page
from core.schemas.values import enum
from core.serializers import integration_to_api
from core.services import integrations as service
from core.services import provider_checks
from core.tenancy import get_for_tenant

INTEGRATIONS = ResourceDocs(
    "Integrations",
    shapes.Integration,
    "integration",
    "integrations",
    "integration_id",
    list_schema=shapes.IntegrationList,
)


@bp.post("/integrations")
@documented(
    INTEGRATIONS.creating(
        "createIntegration",
        "Create an integration",
        "The integration was created.",
        request_schema=shapes.IntegrationCreate,
        description="Secret credentials are encrypted at rest and never shown again: responses "
        f"show them as `{SECRET_MASK}`.",
    )
)
@write_endpoint
@conditional(Integration)
def create_integration():
    """Create an integration (201); its secrets are encrypted and never shown again."""
    integration = service.create_integration(g.tenant_id, json_body(), g.actor)
    location = url_for("api.get_integration", integration_id=integration.id)
    return integration_to_api(integration), 201, {"Location": location, **etag_header(integration)}


@bp.get("/integrations")
@documented(
    INTEGRATIONS.listing(
        "listIntegrations",
        "List integrations",
        query("channel_type", enum(CHANNEL_TYPES), "Only integrations of this type."),
    )
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
    return render_page(shapes.IntegrationList, [integration_to_api(i) for i in rows], next_cursor)


@bp.get("/integrations/<integration_id>")
@documented(INTEGRATIONS.reading("getIntegration", "Get an integration"))
@conditional(Integration, "integration_id")
def get_integration(integration_id):
    """One integration, secrets masked, with its ETag (304 when If-None-Match names it)."""
    integration = get_for_tenant(Integration, g.tenant_id, integration_id)
    return integration_to_api(integration), 200, etag_header(integration)


@bp.patch("/integrations/<integration_id>")
@documented(
    INTEGRATIONS.changing(
        "updateIntegration",
        "Update an integration",
        "The updated integration.",
        ("Default-Handover",),
        request_schema=shapes.IntegrationUpdate,
        description="Rename, replace credentials (omitted credentials and secrets sent back as "
        f"`{SECRET_MASK}` keep their value), or set `status`. Disabling an integration disables "
        "its channels.",
    )
)
@write_endpoint
@conditional(Integration, "integration_id")
def update_integration(integration_id):
    """Rename, replace credentials (omitted or masked secrets are kept), enable/disable."""
    integration, outcomes = service.update_integration(
        g.tenant_id, integration_id, json_body(), g.actor
    )
    headers = {**handover_headers(outcomes), **etag_header(integration)}
    return integration_to_api(integration), 200, headers


@bp.post("/integrations/<integration_id>/check")
@documented(
    INTEGRATIONS.changing(
        "checkIntegration",
        "Check an integration's credentials",
        "The integration with the outcome in `last_check`.",
        body_optional=True,
        description="Calls the provider now; a refusal is not an error of the request: "
        "`last_check.ok` is false and `last_check.message` says why.",
    )
)
@write_endpoint
def check_integration(integration_id):
    """Check the credentials with the provider now; 200 with the integration's last_check."""
    json_body(required=False)
    outcome = provider_checks.check_integration(g.tenant_id, integration_id, g.actor)
    return integration_to_api(outcome.integration), 200


@bp.delete("/integrations/<integration_id>")
@documented(
    INTEGRATIONS.deleting(
        "deleteIntegration",
        "Delete an integration",
        description="409 while channels or phone numbers use it; the message names them.",
    )
)
@write_endpoint
@conditional(Integration, "integration_id")
def delete_integration(integration_id):
    """Delete (204); 409 naming the channels or numbers that still use it."""
    service.delete_integration(g.tenant_id, integration_id, g.actor)
    return None, 204
