"""The integration rules: a name, a provider serving the channel type, and the provider's
credentials (on update, omitted fields and masked secrets keep their value)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import FieldErrors
from core.models import CHANNEL_TYPES, INTEGRATION_STATUSES, Integration
from core.providers import PROVIDERS, SECRET_MASK, Provider
from core.rules.values import (
    _CONTROL,
    INVALID_HOST,
    NOT_A_BOOLEAN,
    NOT_A_STRING,
    REQUIRED,
    clean_host,
    clean_name,
    is_missing,
    reject_fields,
)

INTEGRATION_FIELDS = ("name", "channel_type", "provider", "credentials", "status")
INTEGRATION_READ_ONLY = (
    "id",
    "tenant_id",
    "created_at",
    "updated_at",
    "last_checked_at",
    "last_check",
)


@dataclass
class IntegrationDraft:
    name: str
    channel_type: str
    provider: str
    credentials: dict
    status: str
    changed: tuple[str, ...] = ()


def _clean_credential(spec, value, errors: FieldErrors, key: str):
    if spec.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                value = int(value.strip())
            else:
                errors.add(key, "Must be a whole number.")
                return None
        if spec.name == "port" and not 1 <= value <= 65535:
            errors.add(key, "Must be between 1 and 65535.")
            return None
        return value
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            errors.add(key, NOT_A_BOOLEAN)
            return None
        return value
    if not isinstance(value, str):
        errors.add(key, NOT_A_STRING)
        return None
    value = value.strip()
    if len(value) > spec.max_length or _CONTROL.search(value):
        errors.add(key, f"Must be at most {spec.max_length} printable characters.")
        return None
    if spec.kind == "host":
        host = clean_host(value)
        if host is None:
            errors.add(key, INVALID_HOST)
        return host
    if spec.kind == "choice" and value not in spec.choices:
        errors.add(key, "Must be one of: " + ", ".join(spec.choices) + ".")
        return None
    return value


def clean_credentials(
    provider: Provider, value: object, errors: FieldErrors, current: dict | None = None
) -> dict | None:
    """A provider's credentials. On update, omitted fields and masked secrets keep their value."""
    if value is None and current is not None:
        return dict(current)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.add("credentials", "Must be an object.")
        return None
    result = dict(current or {})
    before = len(errors.as_dict())
    for key in value:
        if provider.field(key) is None:
            errors.add(f"credentials.{key}", f"Unknown credential for {provider.label}.")
    for spec in provider.fields:
        key = f"credentials.{spec.name}"
        if spec.name in value:
            raw = value[spec.name]
            if spec.secret and raw == SECRET_MASK and current is not None:
                continue  # the masked value sent back: keep the stored secret
            if is_missing(raw) and not (spec.kind == "boolean" and raw is False):
                if spec.required:
                    errors.add(key, REQUIRED)
                else:
                    result.pop(spec.name, None)
                continue
            cleaned = _clean_credential(spec, raw, errors, key)
            if cleaned is not None:
                result[spec.name] = cleaned
        elif spec.name not in result:
            if spec.default is not None:
                result[spec.name] = spec.default
            elif spec.required:
                errors.add(key, REQUIRED)
    return result if len(errors.as_dict()) == before else None


def check_integration(data: dict, existing: Integration | None = None, current_credentials=None):
    """An integration: name, a provider serving the channel type, the provider's credentials."""
    errors = FieldErrors()
    creating = existing is None
    reject_fields(data, INTEGRATION_FIELDS, INTEGRATION_READ_ONLY, errors)
    changed: list[str] = []

    name = existing.name if existing else ""
    if creating or "name" in data:
        cleaned = clean_name(data.get("name"), errors)
        if cleaned is not None:
            if existing is None or cleaned != existing.name:
                changed.append("name")
            name = cleaned

    channel_type = existing.channel_type if existing else None
    provider_name = existing.provider if existing else None
    if creating:
        raw_type = data.get("channel_type")
        if is_missing(raw_type):
            errors.add("channel_type", REQUIRED)
        elif raw_type not in CHANNEL_TYPES:
            errors.add("channel_type", "Must be one of: email, sms.")
        else:
            channel_type = raw_type
        raw_provider = data.get("provider")
        if is_missing(raw_provider):
            errors.add("provider", REQUIRED)
        elif not isinstance(raw_provider, str) or raw_provider not in PROVIDERS:
            errors.add("provider", "Must be one of: " + ", ".join(PROVIDERS) + ".")
        elif channel_type and channel_type not in PROVIDERS[raw_provider].channel_types:
            errors.add("provider", f"{PROVIDERS[raw_provider].label} does not send {channel_type}.")
        else:
            provider_name = raw_provider
    else:
        for key, current in (
            ("channel_type", existing.channel_type),
            ("provider", existing.provider),
        ):
            if key in data and data[key] != current:
                errors.add(key, "This cannot change after creation; create a new integration.")

    credentials = None
    if provider_name in PROVIDERS and (creating or "credentials" in data):
        credentials = clean_credentials(
            PROVIDERS[provider_name], data.get("credentials"), errors, current_credentials
        )
        if credentials is not None and credentials != (current_credentials or {}) and not creating:
            changed.append("credentials")
    elif not creating:
        credentials = dict(current_credentials or {})

    status = existing.status if existing else "active"
    if "status" in data:
        if data["status"] not in INTEGRATION_STATUSES:
            errors.add("status", "Must be one of: active, disabled.")
        elif data["status"] != status:
            status = data["status"]
            changed.append("status")

    errors.raise_if_any(f"The integration could not be {'created' if creating else 'updated'}.")
    return IntegrationDraft(
        name, channel_type, provider_name, credentials or {}, status, tuple(changed)
    )
