"""The phone number rules: a possible number (E.164, or typed nationally with a country), free
platform-wide, on one of the tenant's active SMS integrations."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core.errors import FieldErrors
from core.extensions import db
from core.models import Integration, PhoneNumber
from core.rules.values import normalize_phone_number, parse_e164
from core.schemas import parse_fields
from core.tenancy import find_for_tenant

NUMBER_IN_USE = "This number is already in use."


@dataclass
class PhoneNumberDraft:
    phone_number: str
    integration: Integration
    capabilities: list[str]
    create_channel: bool


def number_in_use(number: str) -> bool:
    """Is ``number`` active anywhere on the platform?"""
    return bool(
        db.session.scalar(
            select(func.count())
            .select_from(PhoneNumber)
            .where(PhoneNumber.phone_number == number, PhoneNumber.status == "active")
        )
    )


def check_phone_number(
    tenant_id: str, data: dict, *, in_use=number_in_use, find_integration=None
) -> PhoneNumberDraft:
    """A number in E.164 (or as typed nationally with ``country``), free platform-wide, on one of
    the tenant's active SMS integrations, with capabilities a non-empty subset of sms/voice.

    ``in_use(number)`` and ``find_integration(id)`` read the rows (one query each by default);
    a batch (``core.services.bulk``) passes lookups answering from rows read for every item."""
    # Imported here: core.schemas builds its field types from core.rules.values.
    from core.schemas.phone_numbers import PhoneNumberCreate

    errors = FieldErrors()
    values = parse_fields(PhoneNumberCreate, data, errors)

    number = None
    if "phone_number" in values:
        if data.get("country") is None:
            # Without a country the field is E.164, as strict as send_from_phone_number.
            number = parse_e164(values["phone_number"], errors, "phone_number")
        else:  # a wrong country is reported on its own; the number is then read without one
            number = normalize_phone_number(
                values["phone_number"], errors, "phone_number", values.get("country")
            )
    if number is not None and in_use(number):
        errors.add("phone_number", NUMBER_IN_USE)

    integration = None
    integration_id = values.get("integration_id")
    if integration_id is not None:
        if find_integration is None:
            integration = find_for_tenant(Integration, tenant_id, integration_id)
        else:
            integration = find_integration(integration_id)
        if integration is None:
            errors.add("integration_id", "Integration not found.")
        elif integration.channel_type != "sms":
            errors.add("integration_id", "Phone numbers need an SMS integration.")
        elif integration.status != "active":
            errors.add("integration_id", "This integration is disabled.")

    errors.raise_if_any("The phone number could not be added.")
    return PhoneNumberDraft(
        number, integration, values["capabilities"], bool(values["create_channel"])
    )
