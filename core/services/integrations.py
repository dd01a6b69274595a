"""Integrations: provider credentials (encrypted at rest), enable/disable, delete when unused."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from core import events, rules
from core.crypto import decrypt_credentials, encrypt_credentials
from core.db_types import utcnow
from core.errors import Conflict
from core.extensions import db
from core.models import Integration, PhoneNumber
from core.providers import PROVIDERS
from core.providers.outcome import ProviderResult
from core.serializers import integration_to_api
from core.services import audit
from core.services.audit import Actor
from core.services.channels import ChannelOutcome, channels_using, lock_tenant, resync_statuses
from core.tenancy import get_for_tenant

log = logging.getLogger("channels.provider_checks")


@dataclass
class CheckOutcome:
    """A connection check as stored: the integration (with ``last_check_*``) and the result."""

    integration: Integration
    result: ProviderResult


def credentials_of(integration: Integration) -> dict:
    """The decrypted credentials: for provider calls only, never for display."""
    return decrypt_credentials(integration.credentials_encrypted)


def _secret_keys(provider: str) -> tuple[str, ...]:
    spec = PROVIDERS.get(provider)
    return tuple(f"credentials.{k}" for k in spec.secret_fields) if spec else ()


def _audit_values(integration: Integration, credentials: dict) -> dict:
    values = {"name": integration.name, "status": integration.status}
    values.update({f"credentials.{k}": v for k, v in credentials.items()})
    return values


def create_integration(tenant_id: str, data: dict, actor: Actor) -> Integration:
    """Create an integration; secrets are stored encrypted with CREDENTIALS_KEY."""
    draft = rules.check_integration(data)
    integration = Integration(
        tenant_id=tenant_id,
        name=draft.name,
        channel_type=draft.channel_type,
        provider=draft.provider,
        credentials_encrypted=encrypt_credentials(draft.credentials),
        status=draft.status,
        created_at=utcnow(),
    )
    db.session.add(integration)
    db.session.flush()
    values = _audit_values(integration, draft.credentials)
    values.update(channel_type=draft.channel_type, provider=draft.provider)
    audit.record(
        tenant_id,
        actor,
        "integration.create",
        "integration",
        integration.id,
        audit.diff({}, values, _secret_keys(draft.provider)),
    )
    events.emit(tenant_id, "integration.created", integration.id, integration_to_api(integration))
    return integration


def update_integration(
    tenant_id: str, integration_id: str, data: dict, actor: Actor
) -> tuple[Integration, list[ChannelOutcome]]:
    """Rename, replace credentials, enable/disable; the channels' statuses follow."""
    lock_tenant(tenant_id)
    integration = get_for_tenant(Integration, tenant_id, integration_id)
    current = credentials_of(integration)
    draft = rules.check_integration(data, existing=integration, current_credentials=current)
    before = _audit_values(integration, current)
    integration.name = draft.name
    integration.status = draft.status
    if "credentials" in draft.changed:
        integration.credentials_encrypted = encrypt_credentials(draft.credentials)
    outcomes: list[ChannelOutcome] = []
    if draft.changed:
        integration.updated_at = utcnow()
        db.session.flush()
        changes = audit.diff(
            before,
            _audit_values(integration, draft.credentials),
            _secret_keys(integration.provider),
        )
        action = "integration.update"
        if set(changes) == {"status"}:
            action = "integration.disable" if draft.status == "disabled" else "integration.enable"
        audit.record(tenant_id, actor, action, "integration", integration.id, changes)
        rendered = integration_to_api(integration)
        fields = {k: v for k, v in changes.items() if k != "status"}
        if fields:
            events.emit(
                tenant_id, "integration.updated", integration.id, rendered, {"fields": fields}
            )
        if "status" in changes:
            events.emit(
                tenant_id,
                "integration.status_changed",
                integration.id,
                rendered,
                {"from": before["status"], "to": integration.status, "cause": "admin"},
            )
        if "status" in draft.changed:
            outcomes = resync_statuses(
                tenant_id,
                channels_using(tenant_id, integration_id=integration.id),
                actor,
                f"integration {draft.status}",
                "integration",
            )
    return integration, outcomes


def delete_integration(tenant_id: str, integration_id: str, actor: Actor) -> None:
    """Delete an integration that no channel or phone number uses; else Conflict naming them."""
    lock_tenant(tenant_id)
    integration = get_for_tenant(Integration, tenant_id, integration_id)
    channels = channels_using(tenant_id, integration_id=integration.id)
    if channels:
        names = ", ".join(c.name for c in channels)
        raise Conflict(
            f"This integration is used by channels: {names}. Change or delete them first."
        )
    numbers = list(
        db.session.scalars(
            select(PhoneNumber.phone_number).where(
                PhoneNumber.integration_id == integration.id, PhoneNumber.tenant_id == tenant_id
            )
        )
    )
    if numbers:
        raise Conflict(
            f"This integration is used by phone numbers: {', '.join(numbers)}. Delete them first."
        )
    before = _audit_values(integration, credentials_of(integration))
    rendered = integration_to_api(integration)
    db.session.delete(integration)
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "integration.delete",
        "integration",
        integration.id,
        audit.diff(before, {}, _secret_keys(integration.provider)),
    )
    events.emit(tenant_id, "integration.deleted", integration.id, rendered)


def record_check(
    tenant_id: str, integration: Integration, result: ProviderResult, actor: Actor
) -> CheckOutcome:
    """Store a connection check's outcome on the integration (``last_check_*``) and audit it;
    then its health (DESIGN §9): INTEGRATION_FAILURE_CHECKS failed checks in a row make it
    ``unhealthy`` (``integration.unhealthy``), the next successful one recovers it
    (``integration.recovered``). Health never disables an integration: it only warns."""
    before = {"ok": integration.last_check_ok, "message": integration.last_check_message}
    now = utcnow()
    integration.last_checked_at = now
    integration.last_check_ok = result.ok
    integration.last_check_message = result.message
    integration.next_check_at = now + timedelta(hours=current_app.config["INTEGRATION_CHECK_HOURS"])
    was_unhealthy = integration.unhealthy_since is not None
    if result.ok:
        integration.failed_checks = 0
        integration.unhealthy_since = None
    else:
        integration.failed_checks = (integration.failed_checks or 0) + 1
        if integration.failed_checks >= current_app.config["INTEGRATION_FAILURE_CHECKS"]:
            integration.unhealthy_since = integration.unhealthy_since or now
    db.session.flush()
    log.info(
        "integration %s (%s) checked: %s",
        integration.id,
        integration.provider,
        "ok" if result.ok else "failed",
    )
    audit.record(
        tenant_id,
        actor,
        "integration.check",
        "integration",
        integration.id,
        {
            "last_check_ok": {"before": before["ok"], "after": result.ok},
            "last_check_message": {"before": before["message"], "after": result.message},
        },
    )
    is_unhealthy = integration.unhealthy_since is not None
    if is_unhealthy != was_unhealthy:
        event_type = "integration.unhealthy" if is_unhealthy else "integration.recovered"
        audit.record(
            tenant_id,
            actor,
            event_type,
            "integration",
            integration.id,
            {"unhealthy": {"before": was_unhealthy, "after": is_unhealthy}},
        )
        events.emit(
            tenant_id,
            event_type,
            integration.id,
            integration_to_api(integration),
            {"consecutive_failures": integration.failed_checks, "message": result.message},
        )
    return CheckOutcome(integration, result)
