"""The one place where rows become API objects (DESIGN §4 shapes): each through its resource's
declared response model in ``core.schemas``, which is also the document's component."""

from __future__ import annotations

from core.models import AuditEvent, Channel, EmailDomain, Integration, PhoneNumber
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
