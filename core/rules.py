"""The rules of DESIGN §3, written once. The API and the console forms both come through here.

``check_channel`` decides whether a channel (new, or an existing one with changes) is valid for
a tenant and returns the cleaned values; it raises ``ValidationFailed`` listing every failing
field at once. ``derive_status`` decides a channel's status from its switch and its resources.
The sibling checks for integrations, email domains and phone numbers live here too.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

import idna
import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from sqlalchemy import and_, bindparam, func, select

from core.errors import FieldErrors
from core.extensions import db
from core.models import (
    CHANNEL_IS_DEFAULT,
    CHANNEL_TYPES,
    Channel,
    EmailDomain,
    Integration,
    PhoneNumber,
    Tenant,
)
from core.providers import PROVIDERS, SECRET_MASK, Provider

REQUIRED = "This field is required."
READ_ONLY = "This field is read-only."
UNKNOWN = "Unknown field."
NOT_A_STRING = "Must be a string."
NOT_A_BOOLEAN = "Must be true or false."
NUMBER_IN_USE = "This number is already in use."
INVALID_NUMBER = "This is not a valid phone number."

NAME_MAX = 100
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
CAPABILITIES = ("sms", "voice")

CHANNEL_COMMON_FIELDS = ("name", "channel_type", "integration_id", "is_default", "metadata")
CHANNEL_TYPE_FIELDS = {
    "email": ("send_from_email", "email_domain_id"),
    "sms": ("send_from_phone_number", "phone_number_id"),
}
CHANNEL_READ_ONLY = ("id", "tenant_id", "status", "created_at", "updated_at")
ALL_TYPE_FIELDS = tuple(f for fields in CHANNEL_TYPE_FIELDS.values() for f in fields)
# A PATCH may also set ``status`` (to "disabled", or back to "available").
CHANNEL_STATUS_CHOICES = ("available", "disabled")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_LETTER = re.compile(r"[^\W\d_]")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --- single values --------------------------------------------------------------------------


def is_missing(value: object) -> bool:
    """Absent, null, or a blank string (what an empty form field submits)."""
    return value is None or (isinstance(value, str) and not value.strip())


def clean_name(value: object, errors: FieldErrors, field_name: str = "name") -> str | None:
    """Trimmed, 1–100 characters, printable (no control characters)."""
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    name = unicodedata.normalize("NFC", value.strip())
    if len(name) > NAME_MAX:
        errors.add(field_name, f"Must be at most {NAME_MAX} characters.")
        return None
    if _CONTROL.search(name):
        errors.add(field_name, "Must not contain control characters.")
        return None
    return name


def name_key(name: str) -> str:
    """The case-insensitive identity of a name."""
    return name.casefold()


def clean_bool(value: object, errors: FieldErrors, field_name: str) -> bool | None:
    if not isinstance(value, bool):
        errors.add(field_name, NOT_A_BOOLEAN)
        return None
    return value


def clean_id(
    value: object, errors: FieldErrors, field_name: str, missing_ok: bool = False
) -> str | None:
    """An id as the caller sent it; whether it exists is the caller's lookup."""
    if is_missing(value):
        if not missing_ok:
            errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    return value.strip()


def parse_email_address(
    value: object, errors: FieldErrors, field_name: str
) -> tuple[str, str] | None:
    """Syntax only (no DNS): returns (address as stored, its IDNA lower-case domain)."""
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    try:
        parsed = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        errors.add(field_name, f"Enter a valid email address: {exc}")
        return None
    domain = parsed.ascii_domain.lower()
    return f"{parsed.local_part}@{domain}", domain


def _possible_number(number: phonenumbers.PhoneNumber | None) -> bool:
    """A known country calling code and a length possible for it (DESIGN §3).

    Deliberately not ``is_valid_number``: whether a range is assigned today is the carrier's
    business, ranges change over time, and providers' documentation and test numbers (the
    seed's ``+15551234567``, Twilio's ``+15005550006``) use unassigned ones.
    """
    if number is None:
        return False
    if (
        phonenumbers.region_code_for_country_code(number.country_code)
        == phonenumbers.UNKNOWN_REGION
    ):
        return False
    # IS_POSSIBLE_LOCAL_ONLY (``is_possible_number`` accepts it) is a number dialled without
    # its area code, never a whole international number: +49 12 is not a German number.
    reason = phonenumbers.is_possible_number_with_reason(number)
    return reason == phonenumbers.ValidationResult.IS_POSSIBLE


def parse_e164(value: object, errors: FieldErrors, field_name: str) -> str | None:
    """A possible number written in E.164 (``+`` then up to 15 digits, no spaces)."""
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    if not _E164.match(value.strip()):
        errors.add(field_name, "Enter the number in E.164 format, e.g. +14155550123.")
        return None
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        number = None
    if not _possible_number(number):
        errors.add(field_name, INVALID_NUMBER)
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone_number(
    value: object, errors: FieldErrors, field_name: str = "phone_number", country: str | None = None
) -> str | None:
    """What people type ("(415) 555-0123" with country "US") as E.164, by the same rule.

    Letters are refused rather than read as a vanity number or an extension, which E.164
    cannot hold.
    """
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    if len(value) > 40 or _CONTROL.search(value) or _LETTER.search(value):
        errors.add(field_name, INVALID_NUMBER)
        return None
    try:
        number = phonenumbers.parse(value, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        errors.add(
            field_name,
            f"{INVALID_NUMBER} Start with + and the country code, or choose a country.",
        )
        return None
    if not _possible_number(number):
        errors.add(field_name, INVALID_NUMBER)
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_domain(value: object, errors: FieldErrors, field_name: str = "domain") -> str | None:
    """A domain name, lower-case, in its IDNA (ASCII) form, without a trailing dot."""
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return None
    raw = value.strip().rstrip(".")
    invalid = "Enter a domain name such as example.com."
    if len(raw) > 253 or _CONTROL.search(raw):
        errors.add(field_name, invalid)
        return None
    try:
        ascii_domain = idna.encode(raw.lower(), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        errors.add(field_name, invalid)
        return None
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        errors.add(field_name, invalid)
        return None
    if any(
        ascii_domain == name or ascii_domain.endswith("." + name)
        for name in SPECIAL_USE_DOMAIN_NAMES
    ):
        # No address on it would pass parse_email_address: such a domain could never send.
        errors.add(
            field_name, "This is a reserved name (such as .test or .local) that cannot send email."
        )
        return None
    return ascii_domain


def clean_metadata(value: object, errors: FieldErrors, field_name: str = "metadata") -> dict | None:
    """At most 50 keys of 1–40 characters; values string (≤500), number, boolean or null."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(field_name, "Must be an object.")
        return None
    ok = True
    if len(value) > METADATA_MAX_KEYS:
        errors.add(field_name, f"At most {METADATA_MAX_KEYS} keys.")
        ok = False
    for key, item in value.items():
        if not 1 <= len(key) <= METADATA_KEY_MAX or _CONTROL.search(key):
            errors.add(field_name, f"Keys must be 1–{METADATA_KEY_MAX} printable characters.")
            ok = False
        if item is not None and not isinstance(item, str | int | float | bool):
            errors.add(field_name, "Values must be strings, numbers, booleans or null.")
            ok = False
        elif isinstance(item, str) and len(item) > METADATA_VALUE_MAX:
            errors.add(
                field_name, f"String values must be at most {METADATA_VALUE_MAX} characters."
            )
            ok = False
        elif isinstance(item, float) and not math.isfinite(item):  # 1e400, NaN: not JSON
            errors.add(field_name, "Values must be finite numbers.")
            ok = False
    return dict(value) if ok else None


def reject_fields(
    data: dict, allowed: tuple[str, ...], read_only: tuple[str, ...], errors: FieldErrors
):
    """Read-only and unknown fields are rejected, field by field."""
    for key in data:
        if key in read_only:
            errors.add(key, READ_ONLY)
        elif key not in allowed:
            errors.add(key, UNKNOWN)


# --- channels -------------------------------------------------------------------------------


def derive_status(
    *,
    enabled: bool,
    integration: Integration,
    email_domain: EmailDomain | None = None,
    phone_number: PhoneNumber | None = None,
) -> str:
    """``disabled`` when switched off, its integration disabled or its number released;
    ``pending_verification`` while its email domain is not verified; else ``available``."""
    if not enabled or integration.status != "active":
        return "disabled"
    if phone_number is not None and phone_number.status != "active":
        return "disabled"
    if email_domain is not None and email_domain.status != "verified":
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
    # Creating without ``is_default``: whether the tenant already has a default of the type
    # (read with the other references; the service decides the default from it).
    type_has_default: bool | None = None

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


def _tenant_get(model, tenant_id: str, object_id: str | None):
    """A tenant's object by id; another tenant's id is the same as an unknown one."""
    if not object_id or len(object_id) > 36:
        return None
    return db.session.scalar(
        select(model).where(model.id == object_id, model.tenant_id == tenant_id)
    )


def name_taken(tenant_id: str, name: str, exclude_id: str | None = None) -> bool:
    """Is ``name`` (case-insensitively) another channel's of the tenant? The check of
    ``load_channel_refs``, asked alone."""
    return load_channel_refs(tenant_id, name=name, exclude_id=exclude_id).name_taken


@dataclass(frozen=True)
class ChannelRefs:
    """Every row the channel rules read, fetched by ``load_channel_refs`` in one statement."""

    name_taken: bool = False
    type_has_default: bool = False
    integration: Integration | None = None
    email_domain: EmailDomain | None = None
    phone_number: PhoneNumber | None = None


def _lookup_id(object_id: str | None) -> str | None:
    """An id worth looking up: a malformed one (empty, too long) matches nothing."""
    return object_id if object_id and len(object_id) <= 36 else None


def _of_tenant(model, id_param: str):
    """Join condition: the tenant's row of ``model`` with the id in parameter ``id_param``."""
    return and_(model.tenant_id == Tenant.id, model.id == bindparam(id_param))


@cache
def _channel_refs_statement():
    """One SELECT anchored on the tenant's row: the name and default checks as EXISTS columns,
    the integration, email domain and phone number outer-joined (NULL, so None, when the id is
    unknown or another tenant's). Built once: its compiled form is cached, only values change.
    A NULL parameter matches nothing, so an unneeded part costs an index probe and no row.

    It does not take the tenant lock itself: on PostgreSQL a ``FOR UPDATE`` that waits re-reads
    only the locked row, while the EXISTS checks keep the snapshot taken before the wait, so a
    name or default committed meanwhile would go unseen. The lock is its own statement, first
    (``services.channels.lock_tenant``); this one then starts with a fresh snapshot.
    """
    tenant_id = bindparam("tenant_id")
    name_taken = (
        select(Channel.id)
        .where(
            Channel.tenant_id == tenant_id,
            Channel.name_key == bindparam("name_key"),
            Channel.id != bindparam("exclude_id"),
        )
        .exists()
    )
    type_has_default = (
        select(Channel.id)
        .where(
            Channel.tenant_id == tenant_id,
            Channel.channel_type == bindparam("default_type"),
            CHANNEL_IS_DEFAULT,
        )
        .exists()
    )
    return (
        select(
            name_taken.label("name_taken"),
            type_has_default.label("type_has_default"),
            Integration,
            EmailDomain,
            PhoneNumber,
        )
        .select_from(Tenant)
        .outerjoin(Integration, _of_tenant(Integration, "integration_id"))
        .outerjoin(EmailDomain, _of_tenant(EmailDomain, "email_domain_id"))
        .outerjoin(PhoneNumber, _of_tenant(PhoneNumber, "phone_number_id"))
        .where(Tenant.id == tenant_id)
    )


def load_channel_refs(
    tenant_id: str,
    *,
    name: str | None = None,
    exclude_id: str | None = None,
    integration_id: str | None = None,
    email_domain_id: str | None = None,
    phone_number_id: str | None = None,
    default_type: str | None = None,
) -> ChannelRefs:
    """The tenant's rows a channel refers to, and the name and default checks, in one query.

    ``name``: is it taken by another channel (``exclude_id``: the channel being changed)?
    ``default_type``: has the tenant a default channel of that type? Ids are the caller's:
    another tenant's id is the same as an unknown one. Nothing asked: no query at all.
    """
    params = {
        "tenant_id": tenant_id,
        "name_key": name_key(name) if name is not None else None,
        "exclude_id": exclude_id or "",
        "default_type": default_type,
        "integration_id": _lookup_id(integration_id),
        "email_domain_id": _lookup_id(email_domain_id),
        "phone_number_id": _lookup_id(phone_number_id),
    }
    asked = any(params[k] is not None for k in params if k not in ("tenant_id", "exclude_id"))
    if not asked:
        return ChannelRefs()
    row = db.session.execute(_channel_refs_statement(), params).first()
    if row is None:  # no such tenant: nothing of it exists
        return ChannelRefs()
    return ChannelRefs(
        name_taken=bool(row.name_taken),
        type_has_default=bool(row.type_has_default),
        integration=row.Integration,
        email_domain=row.EmailDomain,
        phone_number=row.PhoneNumber,
    )


def check_channel(tenant_id: str, data: dict, existing: Channel | None = None) -> ChannelDraft:
    """Every rule of DESIGN §3 for a new channel (``existing`` None) or a change to one.

    ``data`` holds JSON values as the API received them (the console's form builds the same
    dict). Raises ValidationFailed with every failing field; returns the cleaned channel.
    """
    errors = FieldErrors()
    creating = existing is None
    action = "created" if creating else "updated"

    # Which type are we checking against?
    channel_type = existing.channel_type if existing else None
    if "channel_type" in data or creating:
        raw_type = data.get("channel_type")
        if creating:
            if is_missing(raw_type):
                errors.add("channel_type", REQUIRED)
            elif raw_type not in CHANNEL_TYPES:
                errors.add("channel_type", "Must be one of: email, sms.")
            else:
                channel_type = raw_type
        elif raw_type != existing.channel_type:
            errors.add("channel_type", "The channel type cannot change after creation.")

    allowed = CHANNEL_COMMON_FIELDS + ALL_TYPE_FIELDS + (() if creating else ("status",))
    read_only = (
        CHANNEL_READ_ONLY if creating else tuple(f for f in CHANNEL_READ_ONLY if f != "status")
    )
    reject_fields(data, allowed, read_only, errors)
    if channel_type:
        for other_type, fields in CHANNEL_TYPE_FIELDS.items():
            for key in fields:
                if other_type != channel_type and key in data:
                    errors.add(key, f"Not allowed for {channel_type} channels.")

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

    # The values that name rows, cleaned first, so that one query reads every row the rules need.
    name = clean_name(data.get("name"), errors) if creating or "name" in data else None
    integration_id = (
        clean_id(data.get("integration_id"), errors, "integration_id")
        if creating or "integration_id" in data
        else None
    )
    domain_given = channel_type == "email" and (creating or "email_domain_id" in data)
    domain_id = (
        clean_id(data.get("email_domain_id"), errors, "email_domain_id") if domain_given else None
    )
    phone_given = channel_type == "sms" and (creating or "phone_number_id" in data)
    phone_id = (
        clean_id(data.get("phone_number_id"), errors, "phone_number_id") if phone_given else None
    )
    refs = load_channel_refs(
        tenant_id,
        name=name,
        exclude_id=existing.id if existing else None,
        integration_id=integration_id,
        email_domain_id=domain_id,
        phone_number_id=phone_id,
        default_type=channel_type if creating and "is_default" not in data else None,
    )
    if creating and "is_default" not in data:
        draft.type_has_default = refs.type_has_default

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
        _check_email_fields(data, draft, errors, creating, changed, domain_given, refs)
    elif channel_type == "sms":
        _check_sms_fields(data, draft, errors, creating, changed, phone_given, refs)

    if "metadata" in data:
        metadata = clean_metadata(data.get("metadata"), errors)
        if metadata is not None and (existing is None or metadata != existing.metadata_):
            draft.metadata = metadata
            changed.append("metadata")

    if "status" in data and not creating:
        status = data.get("status")
        if status not in CHANNEL_STATUS_CHOICES:
            errors.add("status", "Must be one of: available, disabled.")
        else:
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
        is_default = clean_bool(data.get("is_default"), errors, "is_default")
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


def _check_email_fields(data, draft: ChannelDraft, errors, creating, changed, domain_given, refs):
    """send_from_email is a valid address on the domain of email_domain_id, the tenant's."""
    touched = creating or "send_from_email" in data or "email_domain_id" in data
    if not touched:
        return
    address_domain = None
    if creating or "send_from_email" in data:
        parsed = parse_email_address(data.get("send_from_email"), errors, "send_from_email")
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


def _check_sms_fields(data, draft: ChannelDraft, errors, creating, changed, phone_given, refs):
    """send_from_phone_number is the number of phone_number_id (the tenant's, active, SMS)."""
    touched = creating or "send_from_phone_number" in data or "phone_number_id" in data
    if not touched:
        return
    if creating or "send_from_phone_number" in data:
        number = parse_e164(data.get("send_from_phone_number"), errors, "send_from_phone_number")
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


# --- integrations ---------------------------------------------------------------------------

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
        if data["status"] not in ("active", "disabled"):
            errors.add("status", "Must be one of: active, disabled.")
        elif data["status"] != status:
            status = data["status"]
            changed.append("status")

    errors.raise_if_any(f"The integration could not be {'created' if creating else 'updated'}.")
    return IntegrationDraft(
        name, channel_type, provider_name, credentials or {}, status, tuple(changed)
    )


# --- phone numbers --------------------------------------------------------------------------

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
        integration = _tenant_get(Integration, tenant_id, integration_id)
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


# --- email domains --------------------------------------------------------------------------

EMAIL_DOMAIN_FIELDS = ("domain",)
EMAIL_DOMAIN_READ_ONLY = (
    "id",
    "tenant_id",
    "status",
    "verification_token",
    "verified_at",
    "last_checked_at",
    "created_at",
    "dns_records",
)


def check_email_domain(tenant_id: str, data: dict) -> str:
    """A domain name not yet added by this tenant; returns its normalized form."""
    errors = FieldErrors()
    reject_fields(data, EMAIL_DOMAIN_FIELDS, EMAIL_DOMAIN_READ_ONLY, errors)
    domain = normalize_domain(data.get("domain"), errors)
    if domain is not None:
        exists = db.session.scalar(
            select(func.count())
            .select_from(EmailDomain)
            .where(EmailDomain.tenant_id == tenant_id, EmailDomain.domain == domain)
        )
        if exists:
            errors.add("domain", "This domain was already added.")
    errors.raise_if_any("The email domain could not be added.")
    return domain
