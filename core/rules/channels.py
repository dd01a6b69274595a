"""The channel rules of DESIGN §3: ``check_channel`` decides whether a channel (new, or an
existing one with changes) is valid for a tenant and returns the cleaned values, raising
``ValidationFailed`` with every failing field at once; ``derive_status`` decides its status.

The body's values are read by the models of ``core.schemas.channels`` (each field's validator is
a cleaner of ``core.rules.values``); the type, the other type's fields and every rule that reads
rows (ownership, names taken, defaults, status) are judged here."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import FieldErrors
from core.models import (
    CHANNEL_STATUS_CHOICES,
    CHANNEL_TYPE_FIELDS,
    CHANNEL_TYPES,
    EMAIL_DOMAIN_SENDING_STATUSES,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
)
from core.rules.values import clean_choice
from core.schemas import parse_fields
from core.services.channel_queries import load_channel_refs

ALL_TYPE_FIELDS = tuple(f for fields in CHANNEL_TYPE_FIELDS.values() for f in fields)


def derive_status(
    *,
    enabled: bool,
    integration: Integration,
    email_domain: EmailDomain | None = None,
    phone_number: PhoneNumber | None = None,
) -> str:
    """``disabled`` when switched off, its integration disabled or its number released;
    ``pending_verification`` while its email domain is not verified (an ``at_risk`` domain is
    still verified: it keeps sending through its grace checks); else ``available``."""
    if not enabled or integration.status != "active":
        return "disabled"
    if phone_number is not None and phone_number.status != "active":
        return "disabled"
    if email_domain is not None and email_domain.status not in EMAIL_DOMAIN_SENDING_STATUSES:
        return "pending_verification"
    return "available"


@dataclass
class ChannelDraft:
    """A channel that passed every rule: what the service writes."""

    name: str
    channel_type: str
    integration: Integration
    email_domain: EmailDomain | None = None
    send_from_email: str | None = None
    phone_number: PhoneNumber | None = None
    send_from_phone_number: str | None = None
    is_default: bool | None = None  # None: not given
    metadata: dict = field(default_factory=dict)
    enabled: bool = True
    changed: tuple[str, ...] = ()
    # Creating, or making the channel the default: the id of the tenant's current default of
    # the type, None when it has none (read with the other references; the service decides the
    # default from it and clears the previous one by id).
    current_default_id: str | None = None
    # Whether the tenant has an enabled webhook endpoint, as the same query read it (True when
    # not known): the service's events need no endpoints read when it has none.
    has_endpoints: bool = True

    @property
    def status(self) -> str:
        return derive_status(
            enabled=self.enabled,
            integration=self.integration,
            email_domain=self.email_domain,
            phone_number=self.phone_number,
        )


# Which of the tenant's rows a channel may use: one predicate each, asked by check_channel of
# the row its id names and by services.channel_queries.channel_choices of every row it offers.
# The row is already the tenant's (loaded through the tenant): None means unknown or foreign.


def integration_refusal(integration: Integration | None, channel_type: str | None) -> str | None:
    """Why a channel of ``channel_type`` cannot send through ``integration`` (None: it can)."""
    if integration is None:
        return "Integration not found."
    if channel_type and integration.channel_type != channel_type:
        return f"This integration sends {integration.channel_type}, not {channel_type}."
    if integration.status != "active":
        return "This integration is disabled."
    return None


def email_domain_refusal(domain: EmailDomain | None) -> str | None:
    """Why an email channel cannot send from ``domain`` (None: it can, verified or not yet)."""
    return "Email domain not found." if domain is None else None


def phone_number_refusal(phone: PhoneNumber | None) -> str | None:
    """Why an SMS channel cannot send from ``phone`` (None: active and SMS-capable)."""
    if phone is None:
        return "Phone number not found."
    if phone.status != "active":
        return "This phone number was released."
    if "sms" not in (phone.capabilities or []):
        return "This phone number cannot send SMS."
    return None


def name_taken(tenant_id: str, name: str, exclude_id: str | None = None) -> bool:
    """Is ``name`` (case-insensitively) another channel's of the tenant? The check of
    ``load_channel_refs``, asked alone."""
    return load_channel_refs(tenant_id, name=name, exclude_id=exclude_id).name_taken


def check_channel(
    tenant_id: str, data: dict, existing: Channel | None = None, *, load_refs=None
) -> ChannelDraft:
    """Every rule of DESIGN §3 for a new channel (``existing`` None) or a change to one.

    ``data`` holds JSON values as the API received them (the console's form builds the same
    dict). Raises ValidationFailed with every failing field; returns the cleaned channel.
    ``load_refs`` reads the rows the rules need (``load_channel_refs`` by default); a batch
    (``core.services.bulk``) passes one that answers from rows it read for every item at once.
    """
    # Imported here: core.schemas builds its field types from core.rules.values.
    from core.schemas import channels as shapes

    errors = FieldErrors()
    creating = existing is None
    action = "created" if creating else "updated"

    # Which type are we checking against?
    channel_type = existing.channel_type if existing else None
    if creating:
        channel_type = clean_choice(data.get("channel_type"), errors, "channel_type", CHANNEL_TYPES)
    elif "channel_type" in data and data["channel_type"] != existing.channel_type:
        errors.add("channel_type", "The channel type cannot change after creation.")

    # The other type's fields are refused by name; without a type they cannot be judged.
    foreign = tuple(
        key
        for other_type, fields in CHANNEL_TYPE_FIELDS.items()
        if other_type != channel_type
        for key in fields
    )
    if channel_type:
        for key in foreign:
            if key in data:
                errors.add(key, f"Not allowed for {channel_type} channels.")
    if not creating:
        values = parse_fields(shapes.ChannelUpdate, data, errors, ("channel_type", *foreign))
    elif channel_type:
        values = parse_fields(shapes.CREATE_MODELS[channel_type], data, errors, foreign)
    else:
        values = parse_fields(shapes.ChannelCreateCommon, data, errors, ("channel_type", *foreign))

    draft = ChannelDraft(
        name=existing.name if existing else "",
        channel_type=channel_type or "",
        integration=existing.integration if existing else None,  # type: ignore[arg-type]
        email_domain=existing.email_domain if existing else None,
        send_from_email=existing.send_from_email if existing else None,
        phone_number=existing.phone_number if existing else None,
        send_from_phone_number=existing.send_from_phone_number if existing else None,
        metadata=dict(existing.metadata_) if existing else {},
        enabled=existing.enabled if existing else True,
    )
    changed: list[str] = []

    # The values that name rows, read first, so that one query reads every row the rules need.
    name = values.get("name")
    integration_id = values.get("integration_id")
    domain_given = channel_type == "email" and (creating or "email_domain_id" in data)
    domain_id = values.get("email_domain_id") if domain_given else None
    phone_given = channel_type == "sms" and (creating or "phone_number_id" in data)
    phone_id = values.get("phone_number_id") if phone_given else None
    refs = (load_refs or load_channel_refs)(
        tenant_id,
        name=name,
        exclude_id=existing.id if existing else None,
        integration_id=integration_id,
        email_domain_id=domain_id,
        phone_number_id=phone_id,
        default_type=channel_type if creating or data.get("is_default") is True else None,
    )
    if creating or data.get("is_default") is True:
        draft.current_default_id = refs.default_id
    draft.has_endpoints = refs.has_endpoints

    if name is not None:
        if refs.name_taken:
            errors.add("name", "A channel with this name already exists.")
        elif existing is None or name != existing.name:
            draft.name = name
            changed.append("name")

    if integration_id is not None:
        integration = refs.integration
        refusal = integration_refusal(integration, channel_type)
        if refusal is not None:
            errors.add("integration_id", refusal)
        else:
            if existing is None or integration.id != existing.integration_id:
                changed.append("integration_id")
            draft.integration = integration

    if channel_type == "email":
        _check_email_fields(data, values, draft, errors, creating, changed, domain_given, refs)
    elif channel_type == "sms":
        _check_sms_fields(data, values, draft, errors, creating, changed, phone_given, refs)

    if "metadata" in data:
        metadata = values.get("metadata")
        if metadata is not None and (existing is None or metadata != existing.metadata_):
            draft.metadata = metadata
            changed.append("metadata")

    if "status" in data and not creating:
        status = values.get("status")
        if status in CHANNEL_STATUS_CHOICES:
            enabled = status == "available"
            if enabled and draft.integration is not None and draft.integration.status != "active":
                errors.add("status", "Cannot enable: its integration is disabled.")
            elif (
                enabled and draft.phone_number is not None and draft.phone_number.status != "active"
            ):
                errors.add("status", "Cannot enable: its phone number was released.")
            elif enabled != existing.enabled:
                draft.enabled = enabled
                changed.append("status")

    if "is_default" in data:
        is_default = values.get("is_default")
        if is_default is not None:
            draft.is_default = is_default
            # The derived status, not only the switch: a channel disabled by its integration
            # or its released number cannot be the default either.
            if (
                is_default
                and draft.integration is not None
                and draft.status == "disabled"
                and ("status" not in errors and "integration_id" not in errors)
            ):
                errors.add("is_default", "A disabled channel cannot be the default.")
            if existing is None or is_default != existing.is_default:
                changed.append("is_default")

    errors.raise_if_any(f"The channel could not be {action}.")
    draft.changed = tuple(changed)
    return draft


def _check_email_fields(
    data, values, draft: ChannelDraft, errors, creating, changed, domain_given, refs
):
    """send_from_email is a valid address on the domain of email_domain_id, the tenant's."""
    touched = creating or "send_from_email" in data or "email_domain_id" in data
    if not touched:
        return
    address_domain = None
    if creating or "send_from_email" in data:
        parsed = values.get("send_from_email")
        if parsed:
            if parsed[0] != draft.send_from_email:
                changed.append("send_from_email")
            draft.send_from_email, address_domain = parsed
    elif draft.send_from_email:
        address_domain = draft.send_from_email.rsplit("@", 1)[1]

    domain_ok = True
    if domain_given:
        domain_ok = False
        if "email_domain_id" not in errors:  # given and well-formed: was it found?
            domain = refs.email_domain
            refusal = email_domain_refusal(domain)
            if refusal is not None:
                errors.add("email_domain_id", refusal)
            else:
                if domain.id != (draft.email_domain.id if draft.email_domain else None):
                    changed.append("email_domain_id")
                draft.email_domain = domain
                domain_ok = True
    if (
        domain_ok
        and address_domain
        and draft.email_domain
        and address_domain != draft.email_domain.domain
    ):
        errors.add(
            "send_from_email",
            f"The address must be on the domain {draft.email_domain.domain}.",
        )


def _check_sms_fields(
    data, values, draft: ChannelDraft, errors, creating, changed, phone_given, refs
):
    """send_from_phone_number is the number of phone_number_id (the tenant's, active, SMS)."""
    touched = creating or "send_from_phone_number" in data or "phone_number_id" in data
    if not touched:
        return
    if creating or "send_from_phone_number" in data:
        number = values.get("send_from_phone_number")
        if number is not None:
            if number != draft.send_from_phone_number:
                changed.append("send_from_phone_number")
            draft.send_from_phone_number = number
        number_ok = number is not None
    else:
        number_ok = True

    phone_ok = True
    if phone_given:
        phone_ok = False
        if "phone_number_id" not in errors:  # given and well-formed: was it found?
            phone = refs.phone_number
            refusal = phone_number_refusal(phone)
            if refusal is not None:
                errors.add("phone_number_id", refusal)
            else:
                if phone.id != (draft.phone_number.id if draft.phone_number else None):
                    changed.append("phone_number_id")
                draft.phone_number = phone
                phone_ok = True
    if (
        number_ok
        and phone_ok
        and draft.phone_number is not None
        and draft.send_from_phone_number != draft.phone_number.phone_number
    ):
        errors.add(
            "send_from_phone_number",
            f"Must be the number of the chosen phone number ({draft.phone_number.phone_number}).",
        )
