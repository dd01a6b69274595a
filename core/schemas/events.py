"""The events a tenant's webhook receiver gets (DESIGN §8), declared once: one model per event
type (``ChannelCreatedEvent``, ``EmailDomainVerificationFailedEvent``, ...), each a component
of the document, referred to by the OpenAPI 3.1 ``webhooks`` section (``core.openapi``).

``data`` is the resource as the API renders it (its own declared model); ``change`` says what
moved, by kind of event (see ``core.events``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, create_model

from core.events import DEFAULT_CAUSES, EVENT_TYPES, STATUS_CAUSES, resource_type_of
from core.models import CHANNEL_TYPES, DNS_RECORD_STATUSES
from core.schemas import Schema, declared
from core.schemas.channels import Channel
from core.schemas.email_domains import EmailDomain
from core.schemas.integrations import Integration
from core.schemas.phone_numbers import PhoneNumber
from core.schemas.webhooks import WebhookEndpoint

DATA_MODELS = {
    "channel": Channel,
    "integration": Integration,
    "email_domain": EmailDomain,
    "phone_number": PhoneNumber,
    "webhook_endpoint": WebhookEndpoint,
}


@declared
class FieldChange(Schema):
    """One changed field (secrets masked)."""

    before: Any
    after: Any


@declared
class FieldChanges(Schema):
    """The ``change`` of ``*.updated``: each changed field."""

    fields: dict[str, FieldChange] = Field(
        description='Each changed field: `{"before", "after"}` (secrets masked).'
    )


@declared
class StatusChange(Schema):
    """The ``change`` of ``*.status_changed``: from, to, and what caused it."""

    from_: str = Field(alias="from")
    to: str
    cause: Literal[STATUS_CAUSES]  # type: ignore[valid-type]


@declared
class EndpointDisabledChange(Schema):
    """The ``change`` of ``webhook_endpoint.disabled``: no success for three days."""

    from_: str = Field(alias="from")
    to: str
    cause: Literal["failing"]


@declared
class DefaultChange(Schema):
    """The ``change`` of ``channel.default_changed``: set by an admin, or handed over."""

    cause: Literal[DEFAULT_CAUSES]  # type: ignore[valid-type]


@declared
class DefaultChangedData(Schema):
    """The ``data`` of ``channel.default_changed``: one channel type's default, before and
    after (null: none)."""

    channel_type: Literal[CHANNEL_TYPES]  # type: ignore[valid-type]
    previous_default: Channel | None
    new_default: Channel | None


@declared
class RecordsChange(Schema):
    """The ``change`` of ``email_domain.verification_failed``: each DNS record's status."""

    records: dict[str, Literal[DNS_RECORD_STATUSES]]  # type: ignore[valid-type]


@declared
class AtRiskChange(Schema):
    """The ``change`` of ``email_domain.at_risk``: each DNS record's status, and how many checks
    in a row found the ownership record missing or changed."""

    records: dict[str, Literal[DNS_RECORD_STATUSES]]  # type: ignore[valid-type]
    consecutive_checks: int = Field(ge=1)


@declared
class RecordStatusChange(Schema):
    """One DNS record's status before and after a check."""

    before: Literal[DNS_RECORD_STATUSES] | None  # type: ignore[valid-type]
    after: Literal[DNS_RECORD_STATUSES]  # type: ignore[valid-type]


@declared
class RecordsChangedChange(Schema):
    """The ``change`` of ``email_domain.records_changed``: the SPF or DKIM record of a sending
    domain moved (a warning: they never block sending)."""

    records: dict[str, Literal[DNS_RECORD_STATUSES]]  # type: ignore[valid-type]
    changed: dict[str, RecordStatusChange]


@declared
class HealthChange(Schema):
    """The ``change`` of ``integration.unhealthy`` and ``integration.recovered``: failed checks
    in a row (0 once recovered) and the last check's message."""

    consecutive_failures: int = Field(ge=0)
    message: str | None


def _change_model(event_type: str) -> type[Schema] | None:
    action = event_type.split(".", 1)[1]
    if action == "at_risk":
        return AtRiskChange
    if action == "records_changed":
        return RecordsChangedChange
    if action in ("unhealthy", "recovered"):
        return HealthChange
    if event_type == "channel.default_changed":
        return DefaultChange
    if action == "updated":
        return FieldChanges
    if action == "status_changed":
        return StatusChange
    if action == "disabled":
        return EndpointDisabledChange
    if action == "verification_failed":
        return RecordsChange
    return None


def model_name(event_type: str) -> str:
    """``channel.default_changed`` -> ``ChannelDefaultChangedEvent``."""
    return "".join(part.capitalize() for part in re.split(r"[._]", event_type)) + "Event"


def _event_model(event_type: str) -> type[Schema]:
    data = (
        DefaultChangedData
        if event_type == "channel.default_changed"
        else DATA_MODELS[resource_type_of(event_type)]
    )
    fields: dict[str, Any] = {
        "type": (Literal[event_type], ...),
        "timestamp": (
            str,
            Field(
                description="When the change was committed (UTC, microseconds).",
                json_schema_extra={"format": "date-time"},
            ),
        ),
        "sequence": (
            int,
            Field(
                ge=1,
                description="The resource's own event counter: order one resource's events by it.",
            ),
        ),
        "data": (data, ...),
    }
    change = _change_model(event_type)
    if change is not None:
        fields["change"] = (change, ...)
    model = create_model(model_name(event_type), __base__=Schema, **fields)
    model.__doc__ = f"The `{event_type}` event."
    return declared(model)


EVENT_MODELS: dict[str, type[Schema]] = {t: _event_model(t) for t in EVENT_TYPES}
