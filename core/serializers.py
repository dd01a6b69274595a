"""The one place where rows become API objects (DESIGN §4 shapes): each through its resource's
declared response model in ``core.schemas``, which is also the document's component."""

from __future__ import annotations

from functools import cache
from operator import itemgetter

from sqlalchemy import Row

from core import schemas
from core.models import (
    AuditEvent,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
    WebhookDelivery,
    WebhookEndpoint,
)
from core.schemas import render, render_values
from core.schemas.audit_events import as_audit_event
from core.schemas.channels import CHANNEL_MODELS, channel_values
from core.schemas.email_domains import as_email_domain
from core.schemas.integrations import as_integration
from core.schemas.phone_numbers import as_phone_number
from core.schemas.webhooks import delivery_values, endpoint_values


def channel_to_api(channel: Channel | Row) -> dict:
    """id, tenant_id, name, channel_type, integration_id, the type's two fields, status,
    is_default, metadata, created_at, updated_at. A dry-run channel has no id nor timestamps.
    ``channel`` may also be a row of ``channel_queries.API_COLUMNS`` (the API's reads)."""
    return render_values(*channel_values(channel))


def channel_row_to_api(row: Row) -> dict:
    """``channel_to_api`` of a stored channel's row of ``channel_queries.API_COLUMNS`` (GET and
    list), by a plan made once per type from the same declared model: each field's value read by
    its position in the row and passed through the field's serializer, with no intermediate dict
    (a list page renders 50 of them). The test suite's ``CHECK_RENDERED`` proves each result
    equal, in value and order, to ``channel_to_api``'s."""
    rendered = {name: convert(row) for name, convert in _channel_row_plan(row.channel_type)}
    if schemas.CHECK_RENDERED:
        expected = channel_to_api(row)
        assert rendered == expected and list(rendered) == list(expected), (rendered, expected)
    return rendered


@cache
def _channel_row_plan(channel_type: str) -> tuple:
    """(field name, row -> rendered value) per field of the type's stored-channel model."""
    from core.services.channel_queries import API_COLUMNS

    position = {column.key: index for index, column in enumerate(API_COLUMNS)}
    computed = {
        "is_default": lambda row: bool(row[position["is_default"]]),
        "metadata": lambda row: dict(row[position["metadata_"]] or {}),
        "updated_at": lambda row: row[position["updated_at"]] or row[position["created_at"]],
    }
    plan = []
    for name, serializer in schemas._render_plan(CHANNEL_MODELS[channel_type]):
        read = computed.get(name) or itemgetter(position[name])
        if serializer is None:
            plan.append((name, read))
        else:
            plan.append((name, lambda row, read=read, serializer=serializer: serializer(read(row))))
    return tuple(plan)


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
    return render_values(*endpoint_values(endpoint, secret))


def webhook_delivery_to_api(delivery: WebhookDelivery) -> dict:
    """One event for one endpoint: its attempts so far."""
    return render_values(*delivery_values(delivery))
