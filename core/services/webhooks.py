"""Webhook endpoints: create, change, rotate the secret, send a test event, retry a delivery.

Every change is audited (resource ``webhook_endpoint``) in the same transaction. Secrets are
Standard Webhooks secrets (``whsec_`` + base64 of 24 random bytes), encrypted at rest with
CREDENTIALS_KEY and answered once: on creation and on rotation. The URL goes through the SSRF
guard (``core.net_guard``) when saved; the deliverer checks it again before every attempt.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update

from core import events
from core.crypto import encrypt_secret
from core.db_types import utcnow
from core.errors import Conflict, ValidationFailed
from core.events import PENDING_KEY
from core.extensions import db
from core.models import WebhookDelivery, WebhookEndpoint
from core.net_guard import HostNotResolved, UnsafeURL, check_webhook_url
from core.schemas.webhooks import ENDPOINTS_MAX, WebhookEndpointCreate, WebhookEndpointUpdate
from core.serializers import webhook_endpoint_to_api
from core.services import audit
from core.services.audit import Actor
from core.services.channels import lock_tenant
from core.tenancy import get_for_tenant

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
PREVIOUS_SECRET_SIGNS = timedelta(hours=24)
SYSTEM = Actor.system("webhooks")


def new_secret() -> str:
    """A fresh ``whsec_…`` signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _checked_url(url: str, message: str) -> str:
    """The URL when the SSRF guard lets it through; else a 422 on ``url`` saying why."""
    try:
        check_webhook_url(url)
    except HostNotResolved as exc:
        raise ValidationFailed(message, {"url": [exc.reason]}) from None
    except UnsafeURL as exc:
        raise ValidationFailed(message, {"url": [exc.reason]}) from None
    return url


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events or []),
        "status": endpoint.status,
    }


def create_endpoint(
    tenant_id: str, data: WebhookEndpointCreate, actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its secret (the only time the secret is returned)."""
    message = "The webhook endpoint could not be created."
    lock_tenant(tenant_id)
    count = db.session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
    )
    if count >= ENDPOINTS_MAX:
        raise Conflict(
            f"A tenant can have at most {ENDPOINTS_MAX} webhook endpoints; delete one first."
        )
    _checked_url(data.url, message)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=data.url,
        description=data.description,
        events=list(data.events),
        status="enabled",
        secret_encrypted=encrypt_secret(secret),
        created_at=utcnow(),
    )
    db.session.add(endpoint)
    db.session.flush()
    events.forget_endpoints()
    changes = audit.diff({}, {**_snapshot(endpoint), "secret": secret}, ("secret",))
    audit.record(
        tenant_id, actor, "webhook_endpoint.create", "webhook_endpoint", endpoint.id, changes
    )
    return endpoint, secret


def update_endpoint(
    tenant_id: str, endpoint_id: str, data: WebhookEndpointUpdate, actor: Actor
) -> WebhookEndpoint:
    """Change url, events, description or status; enabling retries what is pending at once."""
    lock_tenant(tenant_id)
    endpoint = get_for_tenant(WebhookEndpoint, tenant_id, endpoint_id)
    before = _snapshot(endpoint)
    if data.url is not None and data.url != endpoint.url:
        endpoint.url = _checked_url(data.url, "The webhook endpoint could not be updated.")
    if data.events is not None:
        endpoint.events = list(data.events)
    if data.description is not None:
        endpoint.description = data.description
    enabling = data.status == "enabled" and endpoint.status != "enabled"
    if data.status is not None and data.status != endpoint.status:
        endpoint.status = data.status
        endpoint.disabled_reason = "manual" if data.status == "disabled" else None
        endpoint.failing_since = None
    changes = audit.diff(before, _snapshot(endpoint))
    if not changes:
        return endpoint
    endpoint.updated_at = utcnow()
    db.session.flush()
    events.forget_endpoints()
    action = "webhook_endpoint.update"
    if set(changes) == {"status"}:
        action = "webhook_endpoint.enable" if enabling else "webhook_endpoint.disable"
    audit.record(tenant_id, actor, action, "webhook_endpoint", endpoint.id, changes)
    if enabling:
        _resume_pending(endpoint)
    return endpoint


def _resume_pending(endpoint: WebhookEndpoint) -> None:
    """The endpoint's pending deliveries are due now, handed to the engine after the commit."""
    now = utcnow()
    ids = list(
        db.session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending"
            )
        )
    )
    if not ids:
        return
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(next_attempt_at=now, enqueued_at=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.info.setdefault(PENDING_KEY, []).extend(ids)


def delete_endpoint(tenant_id: str, endpoint_id: str, actor: Actor) -> None:
    """Delete an endpoint and its delivery log (pending deliveries are dropped)."""
    lock_tenant(tenant_id)
    endpoint = get_for_tenant(WebhookEndpoint, tenant_id, endpoint_id)
    before = _snapshot(endpoint)
    db.session.execute(
        WebhookDelivery.__table__.delete().where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    db.session.delete(endpoint)
    db.session.flush()
    events.forget_endpoints()
    audit.record(
        tenant_id,
        actor,
        "webhook_endpoint.delete",
        "webhook_endpoint",
        endpoint.id,
        audit.diff(before, {}),
    )


def rotate_secret(tenant_id: str, endpoint_id: str, actor: Actor) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it for 24 hours (both signatures)."""
    lock_tenant(tenant_id)
    endpoint = get_for_tenant(WebhookEndpoint, tenant_id, endpoint_id)
    secret = new_secret()
    now = utcnow()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_SIGNS
    endpoint.secret_encrypted = encrypt_secret(secret)
    endpoint.updated_at = now
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint",
        endpoint.id,
        {"secret": {"before": audit.SECRET_MASK, "after": audit.SECRET_MASK}},
    )
    return endpoint, secret


def send_test(tenant_id: str, endpoint_id: str, actor: Actor) -> WebhookDelivery:
    """A ``webhook.test`` event for this endpoint alone (subscribed or not)."""
    lock_tenant(tenant_id)
    endpoint = get_for_tenant(WebhookEndpoint, tenant_id, endpoint_id)
    if endpoint.status != "enabled":
        raise Conflict("This endpoint is disabled: enable it first.")
    event = events.emit(
        tenant_id,
        "webhook.test",
        endpoint.id,
        webhook_endpoint_to_api(endpoint),
        only_endpoint=endpoint,
    )
    audit.record(
        tenant_id,
        actor,
        "webhook_endpoint.test",
        "webhook_endpoint",
        endpoint.id,
        {"event_id": {"before": None, "after": event.id}},
    )
    return db.session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.event_id == event.id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )


def retry_delivery(tenant_id: str, delivery_id: str, actor: Actor) -> WebhookDelivery:
    """Send a delivery again now (delivered or failed ones too), with the same webhook-id."""
    lock_tenant(tenant_id)
    delivery = get_for_tenant(WebhookDelivery, tenant_id, delivery_id)
    if delivery.endpoint.status != "enabled":
        raise Conflict("This delivery's endpoint is disabled: enable it first.")
    now = utcnow()
    if delivery.locked_until is not None and delivery.locked_until > now:
        raise Conflict("This delivery is being attempted right now.")
    before = delivery.status
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.enqueued_at = None
    db.session.flush()
    db.session.info.setdefault(PENDING_KEY, []).append(delivery.id)
    audit.record(
        tenant_id,
        actor,
        "webhook_endpoint.delivery_retried",
        "webhook_endpoint",
        delivery.endpoint_id,
        {"delivery_id": delivery.id, "status": {"before": before, "after": "pending"}},
    )
    return delivery


def disable_failing_endpoint(endpoint: WebhookEndpoint) -> None:
    """No success for three days: the endpoint is disabled (audited, announced to the others);
    its pending deliveries wait, and re-enabling it retries them."""
    before = _snapshot(endpoint)
    endpoint.status = "disabled"
    endpoint.disabled_reason = "failing"
    endpoint.updated_at = utcnow()
    db.session.flush()
    events.forget_endpoints()
    audit.record(
        endpoint.tenant_id,
        SYSTEM,
        "webhook_endpoint.disable",
        "webhook_endpoint",
        endpoint.id,
        {**audit.diff(before, _snapshot(endpoint)), "reason": "no successful delivery for 3 days"},
    )
    events.emit(
        endpoint.tenant_id,
        "webhook_endpoint.disabled",
        endpoint.id,
        webhook_endpoint_to_api(endpoint),
        {"from": "enabled", "to": "disabled", "cause": "failing"},
    )
