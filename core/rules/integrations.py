"""The integration rules: a name, a provider serving the channel type, and the provider's
credentials (on update, omitted fields and masked secrets keep their value).

The body is read by the models of ``core.schemas.integrations`` (one create model per provider);
which provider serves which type, and what may change after creation, are judged here."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import FieldErrors
from core.models import CHANNEL_TYPES, Integration
from core.providers import PROVIDERS
from core.rules.values import clean_choice, clean_credentials
from core.schemas import parse_fields

PROVIDER_NAMES = tuple(PROVIDERS)


@dataclass
class IntegrationDraft:
    name: str
    channel_type: str
    provider: str
    credentials: dict
    status: str
    changed: tuple[str, ...] = ()


def _provider_for(data: dict, errors: FieldErrors) -> tuple[str | None, str | None]:
    """(channel type, provider) of a new integration; a provider must serve the type."""
    channel_type = clean_choice(data.get("channel_type"), errors, "channel_type", CHANNEL_TYPES)
    provider = clean_choice(data.get("provider"), errors, "provider", PROVIDER_NAMES)
    if provider and channel_type and channel_type not in PROVIDERS[provider].channel_types:
        errors.add("provider", f"{PROVIDERS[provider].label} does not send {channel_type}.")
        provider = None
    return channel_type, provider


def check_integration(data: dict, existing: Integration | None = None, current_credentials=None):
    """An integration: name, a provider serving the channel type, the provider's credentials."""
    # Imported here: core.schemas builds its field types from core.rules.values.
    from core.schemas import integrations as shapes

    errors = FieldErrors()
    creating = existing is None
    changed: list[str] = []

    if creating:
        channel_type, provider_name = _provider_for(data, errors)
        if provider_name:
            values = parse_fields(shapes.CREATE_MODELS[provider_name], data, errors)
        else:  # the credentials cannot be judged without their provider
            values = parse_fields(
                shapes.IntegrationCreateCommon,
                data,
                errors,
                ("channel_type", "provider", "credentials"),
            )
    else:
        channel_type, provider_name = existing.channel_type, existing.provider
        for key, current in (("channel_type", channel_type), ("provider", provider_name)):
            if key in data and data[key] != current:
                errors.add(key, "This cannot change after creation; create a new integration.")
        values = parse_fields(
            shapes.IntegrationUpdate, data, errors, ("channel_type", "provider", "credentials")
        )

    name = existing.name if existing else ""
    if values.get("name") is not None:
        if existing is None or values["name"] != existing.name:
            changed.append("name")
        name = values["name"]

    if creating:
        credentials = values.get("credentials")
    elif "credentials" in data and provider_name in PROVIDERS:
        # Against the stored credentials: omitted fields and masked secrets keep their value.
        credentials = clean_credentials(
            PROVIDERS[provider_name], data.get("credentials"), errors, current_credentials
        )
        if credentials is not None and credentials != (current_credentials or {}):
            changed.append("credentials")
    else:
        credentials = dict(current_credentials or {})

    status = existing.status if existing else "active"
    if "status" in data and values.get("status") is not None and values["status"] != status:
        status = values["status"]
        changed.append("status")

    errors.raise_if_any(f"The integration could not be {'created' if creating else 'updated'}.")
    return IntegrationDraft(
        name, channel_type, provider_name, credentials or {}, status, tuple(changed)
    )
