"""The value types every resource shares: the rules' cleaners (``core.rules.values``) as field
types, with the JSON Schema that states their constraints, and the plain response types.

A request type's validator is the rules' cleaner, so its messages are the rules' own; its JSON
Schema is declared here, next to it, from the same constants the cleaner uses."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from pydantic import PlainSerializer, RootModel, WithJsonSchema

from core.db_types import rfc3339
from core.rules.values import (
    CAPABILITIES,
    CONTROL_CHARACTERS,
    COUNTRY_PATTERN,
    DOMAIN_MAX,
    E164_PATTERN,
    METADATA_KEY_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    NAME_MAX,
    clean_bool,
    clean_capabilities,
    clean_choice,
    clean_country,
    clean_id,
    clean_metadata,
    clean_name,
    normalize_domain,
    parse_e164,
    parse_email_address,
)
from core.schemas import declared, rule

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
# The rules' own character class, negated: a string without control characters.
NO_CONTROL_CHARACTERS = "^[^" + CONTROL_CHARACTERS.pattern[1:-1] + "]*$"

ID_SCHEMA = {"type": "string", "format": "uuid"}
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
TIMESTAMP_SCHEMA = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
EMAIL_SCHEMA = {"type": "string", "format": "email"}
E164_SCHEMA = {"type": "string", "pattern": E164_PATTERN}


def nullable(schema: dict) -> dict:
    """``schema`` or null (OpenAPI 3.1 / JSON Schema 2020-12 style)."""
    return {"anyOf": [schema, {"type": "null"}]}


def enum(choices: tuple[str, ...]) -> dict:
    return {"type": "string", "enum": list(choices)}


# --- responses: what the API renders ------------------------------------------------------------

Id = Annotated[str, WithJsonSchema(ID_SCHEMA)]
OptionalText = Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})]
Name = Annotated[str, WithJsonSchema(NAME_SCHEMA)]
# RFC 3339 in UTC with second precision, e.g. 2024-10-03T12:00:00Z.
Timestamp = Annotated[
    datetime, PlainSerializer(rfc3339, return_type=str), WithJsonSchema(TIMESTAMP_SCHEMA)
]
OptionalTimestamp = Annotated[
    datetime | None,
    PlainSerializer(rfc3339, return_type=str | None),
    WithJsonSchema(nullable(TIMESTAMP_SCHEMA)),
]

METADATA_SCHEMA = {
    "type": "object",
    "description": f"Free-form labels: at most {METADATA_MAX_KEYS} keys of "
    f"1–{METADATA_KEY_MAX} printable characters; values are strings "
    f"(≤{METADATA_VALUE_MAX}), numbers, booleans or null.",
    "maxProperties": METADATA_MAX_KEYS,
    "propertyNames": {
        "minLength": 1,
        "maxLength": METADATA_KEY_MAX,
        "pattern": NO_CONTROL_CHARACTERS,
    },
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "maxLength": METADATA_VALUE_MAX},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
        ]
    },
}


@declared
class Metadata(RootModel[Annotated[dict[str, Any], WithJsonSchema(METADATA_SCHEMA)]]):
    """A channel's labels (the rules' ``clean_metadata`` decides what a request may send)."""


# --- requests: the rules' cleaners as types -----------------------------------------------------

NameInput = rule(clean_name, NAME_SCHEMA)
BoolInput = rule(clean_bool, {"type": "boolean"})
# An id as sent: whether it names one of the tenant's rows is a cross-row rule.
IdInput = rule(clean_id, {"type": "string"})
UuidInput = rule(clean_id, ID_SCHEMA)
EmailInput = rule(parse_email_address, EMAIL_SCHEMA)
E164Input = rule(parse_e164, E164_SCHEMA)
MetadataInput = rule(clean_metadata, Metadata | None)
DomainInput = rule(
    normalize_domain,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": DOMAIN_MAX,
        "description": "A domain name, e.g. example.com; stored lower-case in IDNA form.",
    },
)
CountryInput = rule(clean_country, nullable({"type": "string", "pattern": COUNTRY_PATTERN}))
CapabilitiesInput = rule(
    clean_capabilities,
    {"type": "array", "minItems": 1, "items": enum(CAPABILITIES)},
)


def choice(choices: tuple[str, ...], required: bool = True, **schema) -> Any:
    """One of ``choices`` ("Must be one of: …"), documented as an enum."""
    return rule(partial(clean_choice, choices=choices, required=required), enum(choices) | schema)
