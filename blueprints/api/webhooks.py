"""/api/webhook_endpoints and /api/webhook_deliveries: where a tenant's events are delivered."""

from __future__ import annotations

from flask import g, request, url_for
from sqlalchemy import select

from blueprints.api import bp, json_body, query_choice, query_limit, write_endpoint
from core.conditional import conditional, etag_header
from core.extensions import db
from core.models import WEBHOOK_DELIVERY_STATUSES, WebhookDelivery, WebhookEndpoint
from core.openapi import (
    BODY_ERRORS,
    ID_BODY_ERRORS,
    Operation,
    ResourceDocs,
    body,
    documented,
    path_id,
    query,
)
from core.pagination import keyset_page
from core.schemas import parse_body
from core.schemas.webhooks import ENDPOINTS_MAX, WebhookEndpointCreate, WebhookEndpointUpdate
from core.serializers import webhook_delivery_to_api, webhook_endpoint_to_api
from core.services import webhooks as service
from core.tenancy import get_for_tenant

ENDPOINTS = ResourceDocs(
    "Webhooks", "WebhookEndpoint", "webhook endpoint", "webhook endpoints", "endpoint_id"
)
DELIVERIES = ResourceDocs(
    "Webhooks", "WebhookDelivery", "webhook delivery", "deliveries", "delivery_id"
)


@bp.post("/webhook_endpoints")
@documented(
    Operation(
        "createWebhookEndpoint",
        "Create a webhook endpoint",
        "Webhooks",
        ok={
            201: body(
                "WebhookEndpointWithSecret",
                "The endpoint, with its signing secret: the only time it is shown.",
                ("Location",),
            )
        },
        errors=BODY_ERRORS,
        request_schema="WebhookEndpointCreate",
        description=f"At most {ENDPOINTS_MAX} endpoints per tenant (409 beyond). Outside "
        "development the URL must be `https` and resolve only to public addresses (422 on `url` "
        "naming why). Events are signed following Standard Webhooks with the returned `secret`.",
    )
)
@write_endpoint
@conditional(WebhookEndpoint)
def create_webhook_endpoint():
    """Create an endpoint (201) and answer its secret, once."""
    data = parse_body(
        WebhookEndpointCreate, json_body(), "The webhook endpoint could not be created."
    )
    endpoint, secret = service.create_endpoint(g.tenant_id, data, g.actor)
    location = url_for("api.get_webhook_endpoint", endpoint_id=endpoint.id)
    headers = {"Location": location, **etag_header(endpoint)}
    return webhook_endpoint_to_api(endpoint, secret), 201, headers


@bp.get("/webhook_endpoints")
@documented(ENDPOINTS.listing("listWebhookEndpoints", "List webhook endpoints"))
def list_webhook_endpoints():
    """The tenant's endpoints, newest first; secrets never shown."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == g.tenant_id)
    rows, next_cursor = keyset_page(
        db.session, query, WebhookEndpoint, query_limit(), request.args.get("cursor")
    )
    return {"data": [webhook_endpoint_to_api(e) for e in rows], "next_cursor": next_cursor}


@bp.get("/webhook_endpoints/<endpoint_id>")
@documented(ENDPOINTS.reading("getWebhookEndpoint", "Get a webhook endpoint"))
@conditional(WebhookEndpoint, "endpoint_id")
def get_webhook_endpoint(endpoint_id):
    """One endpoint (its secret never shown again), with its ETag (304 on If-None-Match)."""
    endpoint = get_for_tenant(WebhookEndpoint, g.tenant_id, endpoint_id)
    return webhook_endpoint_to_api(endpoint), 200, etag_header(endpoint)


@bp.patch("/webhook_endpoints/<endpoint_id>")
@documented(
    ENDPOINTS.changing(
        "updateWebhookEndpoint",
        "Update a webhook endpoint",
        "The updated endpoint.",
        request_schema="WebhookEndpointUpdate",
        description="Change `url`, `events`, `description`, or `status`. Setting `status` to "
        "`enabled` retries the endpoint's pending deliveries at once.",
    )
)
@write_endpoint
@conditional(WebhookEndpoint, "endpoint_id")
def update_webhook_endpoint(endpoint_id):
    """Change url, events, description or status."""
    data = parse_body(
        WebhookEndpointUpdate, json_body(), "The webhook endpoint could not be updated."
    )
    endpoint = service.update_endpoint(g.tenant_id, endpoint_id, data, g.actor)
    return webhook_endpoint_to_api(endpoint), 200, etag_header(endpoint)


@bp.delete("/webhook_endpoints/<endpoint_id>")
@documented(
    ENDPOINTS.deleting(
        "deleteWebhookEndpoint",
        "Delete a webhook endpoint",
        description="Its delivery log and pending deliveries go with it.",
    )
)
@write_endpoint
@conditional(WebhookEndpoint, "endpoint_id")
def delete_webhook_endpoint(endpoint_id):
    """Delete (204)."""
    service.delete_endpoint(g.tenant_id, endpoint_id, g.actor)
    return None, 204


@bp.post("/webhook_endpoints/<endpoint_id>/rotate_secret")
@documented(
    ENDPOINTS.changing(
        "rotateWebhookEndpointSecret",
        "Rotate a webhook endpoint's secret",
        "The endpoint with its new secret: the only time it is shown.",
        answer_schema="WebhookEndpointWithSecret",
        body_optional=True,
        description="The previous secret keeps signing beside the new one for 24 hours: each "
        "delivery carries both signatures in `webhook-signature` until "
        "`previous_secret_expires_at`.",
    )
)
@write_endpoint
def rotate_webhook_endpoint_secret(endpoint_id):
    """A new secret (200, shown once); the old one signs too for 24 h."""
    json_body(required=False)
    endpoint, secret = service.rotate_secret(g.tenant_id, endpoint_id, g.actor)
    return webhook_endpoint_to_api(endpoint, secret), 200


_ACCEPTED = "The delivery, queued: follow it in the endpoint's deliveries."


@bp.post("/webhook_endpoints/<endpoint_id>/test")
@documented(
    Operation(
        "testWebhookEndpoint",
        "Send a test event",
        "Webhooks",
        ok={202: body("WebhookDelivery", _ACCEPTED)},
        errors=ID_BODY_ERRORS,
        parameters=[path_id("endpoint_id", "webhook endpoint")],
        body_optional=True,
        description="Queues a `webhook.test` event for this endpoint alone, whatever it "
        "subscribes to (409 while it is disabled).",
    )
)
@write_endpoint
def test_webhook_endpoint(endpoint_id):
    """Queue a webhook.test event for this endpoint (202 with its delivery)."""
    json_body(required=False)
    delivery = service.send_test(g.tenant_id, endpoint_id, g.actor)
    return webhook_delivery_to_api(delivery), 202


@bp.get("/webhook_endpoints/<endpoint_id>/deliveries")
@documented(
    Operation(
        "listWebhookDeliveries",
        "List an endpoint's deliveries",
        "Webhooks",
        ok={200: body("WebhookDeliveryList", "One page of deliveries, newest first.")},
        errors=(400, 401, 404, 429, 500, 503),
        parameters=[
            path_id("endpoint_id", "webhook endpoint"),
            query(
                "status",
                {"type": "string", "enum": list(WEBHOOK_DELIVERY_STATUSES)},
                "Only deliveries in this status.",
            ),
            *DELIVERIES.listing("", "").parameters,
        ],
    )
)
def list_webhook_deliveries(endpoint_id):
    """The endpoint's delivery log, newest first."""
    endpoint = get_for_tenant(WebhookEndpoint, g.tenant_id, endpoint_id)
    query = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == g.tenant_id, WebhookDelivery.endpoint_id == endpoint.id
    )
    status = query_choice("status", WEBHOOK_DELIVERY_STATUSES)
    if status:
        query = query.where(WebhookDelivery.status == status)
    rows, next_cursor = keyset_page(
        db.session, query, WebhookDelivery, query_limit(), request.args.get("cursor")
    )
    return {"data": [webhook_delivery_to_api(d) for d in rows], "next_cursor": next_cursor}


@bp.post("/webhook_deliveries/<delivery_id>/retry")
@documented(
    Operation(
        "retryWebhookDelivery",
        "Retry a delivery",
        "Webhooks",
        ok={202: body("WebhookDelivery", _ACCEPTED)},
        errors=ID_BODY_ERRORS,
        parameters=[path_id("delivery_id", "webhook delivery")],
        body_optional=True,
        description="Sends the event again now, with the same `webhook-id` (also a delivered "
        "or failed one); 409 while its endpoint is disabled or an attempt is under way.",
    )
)
@write_endpoint
def retry_webhook_delivery(delivery_id):
    """Attempt the delivery again now (202)."""
    json_body(required=False)
    delivery = service.retry_delivery(g.tenant_id, delivery_id, g.actor)
    return webhook_delivery_to_api(delivery), 202
