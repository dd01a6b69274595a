"""Webhook endpoints and their deliveries (DESIGN §8): the request and response shapes, declared
once (parsed with ``parse_body``, components of ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictStr

from core.events import EVENT_TYPES, WILDCARD
from core.models import WEBHOOK_DELIVERY_STATUSES, WEBHOOK_ENDPOINT_STATUSES
from core.net_guard import MAX_URL_LENGTH
from core.schemas import Schema, declared
from core.schemas.values import OptionalTimestamp, Timestamp

ENDPOINTS_MAX = 20  # per tenant
DESCRIPTION_MAX = 500
EVENT_CHOICES = (WILDCARD, *EVENT_TYPES)

EventName = Literal[EVENT_CHOICES]  # type: ignore[valid-type]
Id = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


def _distinct(events: list[str]) -> list[str]:
    """No event type twice; ``*`` alone when it is there (it already means every type)."""
    if len(set(events)) != len(events):
        raise ValueError("List each event type once.")
    if WILDCARD in events and len(events) > 1:
        raise ValueError('"*" subscribes to every event: send it alone.')
    return events


def _no_control_characters(value: str) -> str:
    if any(ord(ch) < 0x20 and ch not in "\t\n" or ord(ch) == 0x7F for ch in value):
        raise ValueError("Must not contain control characters.")
    return value


Url = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_URL_LENGTH, description="Where events are POSTed."),
]
Events = Annotated[
    list[EventName],
    Field(min_length=1, description='The event types to receive; `["*"]` is every type.'),
    AfterValidator(_distinct),
]
Description = Annotated[
    StrictStr, Field(max_length=DESCRIPTION_MAX), AfterValidator(_no_control_characters)
]


@declared(mode="validation")
class WebhookEndpointCreate(Schema):
    """A new endpoint: ``url`` (https and public outside development), ``events``."""

    url: Url
    events: Events
    description: Description = ""


@declared(mode="validation")
class WebhookEndpointUpdate(Schema):
    """A partial change; ``status: enabled`` retries what is pending at once."""

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    status: Literal[WEBHOOK_ENDPOINT_STATUSES] | None = None  # type: ignore[valid-type]


@declared
class WebhookEndpoint(Schema):
    """An endpoint; its secret is never shown again after creation or rotation."""

    id: Id
    tenant_id: Id
    url: str
    description: str
    events: list[EventName]
    status: Literal[WEBHOOK_ENDPOINT_STATUSES]  # type: ignore[valid-type]
    disabled_reason: Literal["manual", "failing"] | None = Field(
        description="`failing`: disabled after three days without a successful delivery."
    )
    failing_since: OptionalTimestamp = Field(
        description="The first failed attempt since the last success."
    )
    previous_secret_expires_at: OptionalTimestamp = Field(
        description="Until then, the secret before the last rotation signs too."
    )
    created_at: Timestamp
    updated_at: Timestamp


@declared
class WebhookEndpointWithSecret(WebhookEndpoint):
    """An endpoint with its signing secret: answered once, on creation and on rotation."""

    secret: str = Field(
        pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$",
        description="The Standard Webhooks signing secret (`whsec_…`); store it now.",
    )


@declared
class WebhookEndpointList(Schema):
    data: list[WebhookEndpoint]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


@declared
class WebhookDelivery(Schema):
    """One event for one endpoint: its attempts so far."""

    id: Id
    endpoint_id: Id
    event_id: Id = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: EventName
    status: Literal[WEBHOOK_DELIVERY_STATUSES]  # type: ignore[valid-type]
    attempts: int = Field(ge=0)
    last_status_code: int | None
    last_error: str | None
    last_response: str | None = Field(description="The first 1 KiB of the last answer.")
    last_attempt_at: OptionalTimestamp
    next_attempt_at: OptionalTimestamp
    delivered_at: OptionalTimestamp
    created_at: Timestamp


@declared
class WebhookDeliveryList(Schema):
    data: list[WebhookDelivery]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def endpoint_values(endpoint, secret: str | None = None) -> tuple[type[Schema], dict]:
    """The endpoint's response model (with its secret right after creation or rotation) and
    its values."""
    values = {
        "id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events or []),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at or endpoint.created_at,
    }
    if secret is None:
        return WebhookEndpoint, values
    values["secret"] = secret
    return WebhookEndpointWithSecret, values


def delivery_values(delivery) -> tuple[type[Schema], dict]:
    """The delivery's response model and its values (``next_attempt_at`` only while pending)."""
    return WebhookDelivery, {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_response": delivery.last_response,
        "last_attempt_at": delivery.last_attempt_at,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
    }
