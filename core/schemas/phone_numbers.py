"""Phone numbers (DESIGN §4): a number to add (with its SMS channel, by default), and a number
as rendered, with the id of its SMS channel."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

from core.models import PHONE_NUMBER_STATUSES
from core.rules.values import CAPABILITIES
from core.schemas import Schema, declared, described, list_of
from core.schemas.values import (
    E164_SCHEMA,
    ID_SCHEMA,
    BoolInput,
    CapabilitiesInput,
    CountryInput,
    Id,
    IdInput,
    OptionalTimestamp,
    Timestamp,
    enum,
    nullable,
)

PHONE_NUMBER_READ_ONLY = ("id", "tenant_id", "status", "created_at", "channel_id", "released_at")


@declared
class PhoneNumber(Schema):
    """One of the tenant's numbers."""

    id: Id
    tenant_id: Id
    phone_number: Annotated[str, WithJsonSchema(E164_SCHEMA)]
    integration_id: Id
    capabilities: Annotated[
        list[str], WithJsonSchema({"type": "array", "items": enum(CAPABILITIES)})
    ]
    status: Annotated[str, WithJsonSchema(enum(PHONE_NUMBER_STATUSES))]
    created_at: Timestamp
    released_at: OptionalTimestamp
    channel_id: Annotated[
        str | None,
        WithJsonSchema(nullable({**ID_SCHEMA, "description": "Its SMS channel, if any."})),
    ]


PhoneNumberList = list_of(PhoneNumber, "PhoneNumberList", "numbers")


@declared(mode="validation")
class PhoneNumberCreate(Schema):
    """A number to add. Without ``country`` it is E.164; with it, as typed nationally. Whether
    it is free, and the integration's, are the rules' (``core.rules.numbers``)."""

    read_only = PHONE_NUMBER_READ_ONLY

    # Read by the rules: E.164 or national depends on ``country``.
    phone_number: described(
        {
            "type": "string",
            "description": "E.164 (`+14155550123`), or a national number with `country`.",
        }
    )
    country: CountryInput = None
    integration_id: Annotated[IdInput, Field(description="An active SMS integration.")]
    capabilities: CapabilitiesInput = ["sms"]
    create_channel: BoolInput = True


def as_phone_number(number, channel_id: str | None) -> PhoneNumber:
    """The number's response model, with the id of its SMS channel (or null)."""
    return PhoneNumber.model_validate(
        {
            "id": number.id,
            "tenant_id": number.tenant_id,
            "phone_number": number.phone_number,
            "integration_id": number.integration_id,
            "capabilities": list(number.capabilities or []),
            "status": number.status,
            "created_at": number.created_at,
            "released_at": number.released_at,
            "channel_id": channel_id,
        }
    )
