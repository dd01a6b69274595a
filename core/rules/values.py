"""Value cleaners of DESIGN §3: one value at a time, the same for the API and the console.

Each cleaner takes a JSON value as received, adds its message to ``errors`` when the value is
wrong, and returns the cleaned value (or None). ``core.schemas.values`` makes each one a field
type (its validator, with the JSON Schema stating the same limits), so the request models and
the console's forms read values through these very functions.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from functools import lru_cache

import idna
import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from core.errors import REQUIRED, FieldErrors
from core.providers import SECRET_MASK, Provider

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
COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
_COUNTRY = re.compile(COUNTRY_PATTERN)
CAPABILITIES = ("sms", "voice")
DOMAIN_MAX = 253


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


def clean_choice(
    value: object, errors: FieldErrors, field_name: str, choices: tuple[str, ...], required=True
) -> str | None:
    """One of ``choices`` (REQUIRED when missing and ``required``)."""
    if required and is_missing(value):
        errors.add(field_name, REQUIRED)
        return None
    if not isinstance(value, str) or value not in choices:
        errors.add(field_name, "Must be one of: " + ", ".join(choices) + ".")
        return None
    return value


def clean_country(value: object, errors: FieldErrors, field_name: str = "country") -> str | None:
    """A two-letter country code (any case), or None (not given)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        errors.add(field_name, "Must be a two-letter country code, e.g. US.")
        return None
    return value


def clean_capabilities(
    value: object, errors: FieldErrors, field_name: str = "capabilities"
) -> list[str] | None:
    """A non-empty list of CAPABILITIES, in their order."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c in CAPABILITIES for c in value)
    ):
        errors.add(field_name, "Must be a non-empty list of: sms, voice.")
        return None
    return [c for c in CAPABILITIES if c in value]


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
    number = _possible_e164(value.strip())
    if number is None:
        errors.add(field_name, INVALID_NUMBER)
    return number


@lru_cache(maxsize=4096)
def _possible_e164(text: str) -> str | None:
    """``text`` (E.164-shaped) as a possible number in E.164, or None: the parse of
    ``parse_e164``, remembered for the last 4,096 texts. It depends on the text alone and was
    the costliest step of a channel's rules; the channels of a batch or an import often send
    from the same few numbers (bench/FINDINGS.md §14)."""
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not _possible_number(number):
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
    if len(raw) > DOMAIN_MAX or _CONTROL.search(raw):
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
        or len(ascii_domain) > DOMAIN_MAX
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
    if not raw or len(raw) > DOMAIN_MAX or _CONTROL.search(raw):
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
    if len(ascii_host) > DOMAIN_MAX or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 300.1.2.3 and friends: not an address, not a name
        return None
    return ascii_host


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
