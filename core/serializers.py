"""The one place where models become API objects (DESIGN §4 shapes)."""

from __future__ import annotations

from core.crypto import decrypt_credentials
from core.db_types import rfc3339
from core.models import (
    ApiKey,
    AuditEvent,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
    WebhookDelivery,
    WebhookEndpoint,
)
from core.providers import mask_credentials
from core.rules import CHANNEL_TYPE_FIELDS


def channel_to_api(channel: Channel) -> dict:
    """id, tenant_id, name, channel_type, integration_id, the type's two fields, status,
    is_default, metadata, created_at, updated_at. A dry-run channel has no id nor timestamps."""
    data = {}
    if channel.id:
        data["id"] = channel.id
    data.update(
        tenant_id=channel.tenant_id,
        name=channel.name,
        channel_type=channel.channel_type,
        integration_id=channel.integration_id,
    )
    for field in CHANNEL_TYPE_FIELDS[channel.channel_type]:
        data[field] = getattr(channel, field)
    data.update(
        status=channel.status,
        is_default=bool(channel.is_default),
        metadata=dict(channel.metadata_ or {}),
    )
    if channel.created_at:
        data["created_at"] = rfc3339(channel.created_at)
        data["updated_at"] = rfc3339(channel.updated_at or channel.created_at)
    return data


def integration_to_api(integration: Integration) -> dict:
    """Secrets are write-only: every secret credential is masked."""
    credentials = decrypt_credentials(integration.credentials_encrypted)
    return {
        "id": integration.id,
        "tenant_id": integration.tenant_id,
        "name": integration.name,
        "channel_type": integration.channel_type,
        "provider": integration.provider,
        "credentials": mask_credentials(integration.provider, credentials),
        "status": integration.status,
        "last_check": None
        if integration.last_checked_at is None
        else {
            "ok": bool(integration.last_check_ok),
            "message": integration.last_check_message,
            "checked_at": rfc3339(integration.last_checked_at),
        },
        "created_at": rfc3339(integration.created_at),
        "updated_at": rfc3339(integration.updated_at or integration.created_at),
    }


def email_domain_to_api(domain: EmailDomain) -> dict:
    from core.services.email_domains import dns_records

    return {
        "id": domain.id,
        "tenant_id": domain.tenant_id,
        "domain": domain.domain,
        "status": domain.status,
        "dns_records": dns_records(domain),
        "verified_at": rfc3339(domain.verified_at),
        "last_checked_at": rfc3339(domain.last_checked_at),
        "created_at": rfc3339(domain.created_at),
    }


def phone_number_to_api(number: PhoneNumber, channel_id: str | None = None) -> dict:
    data = {
        "id": number.id,
        "tenant_id": number.tenant_id,
        "phone_number": number.phone_number,
        "integration_id": number.integration_id,
        "capabilities": list(number.capabilities or []),
        "status": number.status,
        "created_at": rfc3339(number.created_at),
        "released_at": rfc3339(number.released_at),
    }
    data["channel_id"] = channel_id
    return data


def api_key_to_api(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "created_at": rfc3339(key.created_at),
        "last_used_at": rfc3339(key.last_used_at),
        "revoked_at": rfc3339(key.revoked_at),
    }


def audit_event_to_api(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "tenant_id": event.tenant_id,
        "actor": {"type": event.actor_type, "id": event.actor_id, "name": event.actor_name},
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "changes": event.changes or {},
        "request_id": event.request_id,
        "ip": event.ip,
        "created_at": rfc3339(event.created_at),
    }


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
