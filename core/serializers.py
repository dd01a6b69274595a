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
    list), by a plan made once per type from the same declared model (a list page renders 50).

    One ``itemgetter`` reads every field's stored value, in the model's order, into the dict
    (``dict(zip(...))``: no Python call per field); then the three computed fields and the
    serialized ones (the timestamps) are replaced in place, which keeps their position. A
    channel never updated has no ``updated_at``: it renders ``created_at``'s text, formatted
    once (a serializer is not called for None, which it renders as None: checked by the plan).
    The test suite's ``CHECK_RENDERED`` proves each result equal, in value and order, to
    ``channel_to_api``'s."""
    names, read, serialized = _channel_row_plan(row[_TYPE_POSITION])
    rendered = dict(zip(names, read(row), strict=True))
    rendered["is_default"] = bool(rendered["is_default"])
    rendered["metadata"] = dict(rendered["metadata"] or {})
    for name, serializer in serialized:
        value = rendered[name]
        if value is not None:  # None renders as None (checked by the plan)
            rendered[name] = serializer(value)
    if rendered["updated_at"] is None:  # what channel_values renders: updated_at or created_at
        rendered["updated_at"] = rendered["created_at"]
    if schemas.CHECK_RENDERED:
        expected = channel_to_api(row)
        assert rendered == expected and list(rendered) == list(expected), (rendered, expected)
    return rendered


def _api_column_positions() -> dict[str, int]:
    from core.services.channel_queries import API_COLUMNS

    return {column.key: index for index, column in enumerate(API_COLUMNS)}


_TYPE_POSITION = 3  # API_COLUMNS' channel_type (checked by _channel_row_plan)


@cache
def _channel_row_plan(channel_type: str) -> tuple:
    """(field names in the model's order, row -> their stored values, (name, serializer) of the
    serialized fields) of the type's stored-channel model."""
    position = _api_column_positions()
    assert position["channel_type"] == _TYPE_POSITION, position
    stored = {"metadata": "metadata_"}  # a field read from a column of another name
    plan = schemas._render_plan(CHANNEL_MODELS[channel_type])
    names = tuple(name for name, _serializer in plan)
    assert {"is_default", "metadata", "created_at", "updated_at"} <= set(names), names
    read = itemgetter(*(position[stored.get(name, name)] for name in names))
    serialized = tuple((name, serializer) for name, serializer in plan if serializer is not None)
    assert all(serializer(None) is None for _name, serializer in serialized), serialized
    return names, read, serialized


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
