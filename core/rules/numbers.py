"""The phone number rules: a possible number (E.164, or typed nationally with a country), free
platform-wide, on one of the tenant's active SMS integrations."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from core.errors import FieldErrors
from core.extensions import db
from core.models import Integration, PhoneNumber
from core.rules.values import (
    NOT_A_BOOLEAN,
    clean_id,
    normalize_phone_number,
    parse_e164,
    reject_fields,
)
from core.tenancy import find_for_tenant

NUMBER_IN_USE = "This number is already in use."
CAPABILITIES = ("sms", "voice")

PHONE_NUMBER_FIELDS = (
    "phone_number",
    "country",
    "integration_id",
    "capabilities",
    "create_channel",
)
PHONE_NUMBER_READ_ONLY = ("id", "tenant_id", "status", "created_at", "channel_id", "released_at")


@dataclass
class PhoneNumberDraft:
    phone_number: str
    integration: Integration
    capabilities: list[str]
    create_channel: bool


def check_phone_number(tenant_id: str, data: dict) -> PhoneNumberDraft:
    """A number in E.164 (or as typed nationally with ``country``), free platform-wide, on one of
    the tenant's active SMS integrations, with capabilities a non-empty subset of sms/voice."""
    errors = FieldErrors()
    reject_fields(data, PHONE_NUMBER_FIELDS, PHONE_NUMBER_READ_ONLY, errors)

    country = data.get("country")
    if country is None:
        # Without a country the field is E.164, as strict as send_from_phone_number.
        number = parse_e164(data.get("phone_number"), errors, "phone_number")
    else:
        if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country):
            errors.add("country", "Must be a two-letter country code, e.g. US.")
            country = None
        number = normalize_phone_number(data.get("phone_number"), errors, "phone_number", country)
    if number is not None:
        in_use = db.session.scalar(
            select(func.count())
            .select_from(PhoneNumber)
            .where(PhoneNumber.phone_number == number, PhoneNumber.status == "active")
        )
        if in_use:
            errors.add("phone_number", NUMBER_IN_USE)

    integration = None
    integration_id = clean_id(data.get("integration_id"), errors, "integration_id")
    if integration_id is not None:
        integration = find_for_tenant(Integration, tenant_id, integration_id)
        if integration is None:
            errors.add("integration_id", "Integration not found.")
        elif integration.channel_type != "sms":
            errors.add("integration_id", "Phone numbers need an SMS integration.")
        elif integration.status != "active":
            errors.add("integration_id", "This integration is disabled.")

    capabilities = data.get("capabilities", ["sms"])
    if (
        not isinstance(capabilities, list)
        or not capabilities
        or not all(isinstance(c, str) and c in CAPABILITIES for c in capabilities)
    ):
        errors.add("capabilities", "Must be a non-empty list of: sms, voice.")
        capabilities = []
    else:
        capabilities = [c for c in CAPABILITIES if c in capabilities]

    create_channel = data.get("create_channel", True)
    if not isinstance(create_channel, bool):
        errors.add("create_channel", NOT_A_BOOLEAN)

    errors.raise_if_any("The phone number could not be added.")
    return PhoneNumberDraft(number, integration, capabilities, bool(create_channel))
