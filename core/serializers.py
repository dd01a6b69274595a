"""The one place where rows become API objects (DESIGN §4 shapes): each through its resource's
declared response model in ``core.schemas``, which is also the document's component."""

from __future__ import annotations

from core.db_types import rfc3339
from core.models import (
    AuditEvent,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
    WebhookDelivery,
    WebhookEndpoint,
)
from core.schemas import render
from core.schemas.audit_events import as_audit_event
from core.schemas.channels import as_channel
from core.schemas.email_domains import as_email_domain
from core.schemas.integrations import as_integration
from core.schemas.phone_numbers import as_phone_number


def channel_to_api(channel: Channel) -> dict:
    """id, tenant_id, name, channel_type, integration_id, the type's two fields, status,
    is_default, metadata, created_at, updated_at. A dry-run channel has no id nor timestamps."""
    return render(as_channel(channel))


def integration_to_api(integration: Integration) -> dict:
    """Secrets are write-only: every secret credential is masked."""
    return render(as_integration(integration))


def email_domain_to_api(domain: EmailDomain) -> dict:
    """The domain with the DNS records to publish."""
    return render(as_email_domain(domain))


def phone_number_to_api(number: PhoneNumber, channel_id: str | None = None) -> dict:
    """The number with the id of its SMS channel (or null)."""
    return render(as_phone_number(number, channel_id))


def audit_event_to_api(event: AuditEvent) -> dict:
    """Who did what, when, from which request."""
    return render(as_audit_event(event))


def webhook_endpoint_to_api(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    """The endpoint; ``secret`` only right after creation or rotation (shown once)."""
    data = {
        "id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events or []),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": rfc3339(endpoint.failing_since),
        "previous_secret_expires_at": rfc3339(endpoint.previous_secret_expires_at),
        "created_at": rfc3339(endpoint.created_at),
        "updated_at": rfc3339(endpoint.updated_at or endpoint.created_at),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def webhook_delivery_to_api(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_response": delivery.last_response,
        "last_attempt_at": rfc3339(delivery.last_attempt_at),
        "next_attempt_at": rfc3339(delivery.next_attempt_at)
        if delivery.status == "pending"
        else None,
        "delivered_at": rfc3339(delivery.delivered_at),
        "created_at": rfc3339(delivery.created_at),
    }
