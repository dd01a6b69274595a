"""Value cleaners of DESIGN §3: one value at a time, the same for the API and the console.

Each cleaner takes a JSON value as received, adds its message to ``errors`` when the value is
wrong, and returns the cleaned value (or None).
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata

import idna
import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from core.errors import FieldErrors

REQUIRED = "This field is required."
READ_ONLY = "This field is read-only."
UNKNOWN = "Unknown field."
NOT_A_STRING = "Must be a string."
NOT_A_BOOLEAN = "Must be true or false."
INVALID_NUMBER = "This is not a valid phone number."

NAME_MAX = 100
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500

# C0 and C1 control characters (and DEL): never part of a name, key or credential.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL = CONTROL_CHARACTERS
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
_E164 = re.compile(E164_PATTERN)
_LETTER = re.compile(r"[^\W\d_]")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_missing(value: object) -> bool:
    """Absent, null, or a blank string (what an empty form field submits)."""
    return value is None or (isinstance(value, str) and not value.strip())


def given_string(value: object, errors: FieldErrors, field_name: str) -> bool:
    """Whether ``value`` is a given string; else REQUIRED (missing, null, blank) or NOT_A_STRING
    is added to ``field_name``."""
    if is_missing(value):
        errors.add(field_name, REQUIRED)
        return False
    if not isinstance(value, str):
        errors.add(field_name, NOT_A_STRING)
        return False
    return True


def clean_name(value: object, errors: FieldErrors, field_name: str = "name") -> str | None:
    """Trimmed, 1–100 characters, printable (no control characters)."""
    if not given_string(value, errors, field_name):
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
    if not given_string(value, errors, field_name):
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
    if not given_string(value, errors, field_name):
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
    if not given_string(value, errors, field_name):
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
    if not given_string(value, errors, field_name):
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


INVALID_HOST = "Enter a host name such as smtp.example.com, or an IP address."


def clean_host(value: str) -> str | None:
    """A server's host name (IDNA, returned in its ASCII form) or IP address literal; None if
    it is neither. One label is allowed (``localhost``, a container's name)."""
    raw = value.strip().rstrip(".")
    if not raw or len(raw) > 253 or _CONTROL.search(raw):
        return None
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    try:
        ascii_host = idna.encode(raw.lower(), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 300.1.2.3 and friends: not an address, not a name
        return None
    return ascii_host


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
