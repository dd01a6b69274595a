"""The rules of DESIGN §3, written once; the API and the console forms both come through here.

- ``values``: one value at a time (names, ids, addresses, numbers, domains, metadata, a
  provider's credentials);
- ``channels``: ``check_channel`` and ``derive_status``;
- ``integrations``: ``check_integration`` (which provider serves which type; what may change);
- ``numbers`` and ``domains``: adding a phone number, adding an email domain.

A request body is read by its declared model (``core.schemas``: each field's validator is a
cleaner of ``values``); the rules judge what needs rows or other fields, and report both kinds
of error at once. The rows the channel rules read come in one query,
``services.channel_queries.load_channel_refs``.
"""

from core.errors import READ_ONLY, REQUIRED, UNKNOWN
from core.rules.channels import (
    ALL_TYPE_FIELDS,
    CHANNEL_STATUS_CHOICES,
    CHANNEL_TYPE_FIELDS,
    ChannelDraft,
    check_channel,
    derive_status,
    email_domain_refusal,
    integration_refusal,
    name_taken,
    phone_number_refusal,
)
from core.rules.domains import check_email_domain
from core.rules.integrations import IntegrationDraft, check_integration
from core.rules.numbers import NUMBER_IN_USE, PhoneNumberDraft, check_phone_number
from core.rules.values import (
    CAPABILITIES,
    CONTROL_CHARACTERS,
    E164_PATTERN,
    INVALID_NUMBER,
    METADATA_KEY_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    NAME_MAX,
    NOT_A_BOOLEAN,
    NOT_A_STRING,
    clean_bool,
    clean_choice,
    clean_credentials,
    clean_id,
    clean_metadata,
    clean_name,
    is_missing,
    name_key,
    normalize_domain,
    normalize_phone_number,
    parse_e164,
    parse_email_address,
)
from core.services.channel_queries import ChannelRefs, load_channel_refs

__all__ = [
    "ALL_TYPE_FIELDS",
    "CAPABILITIES",
    "CHANNEL_STATUS_CHOICES",
    "CHANNEL_TYPE_FIELDS",
    "CONTROL_CHARACTERS",
    "E164_PATTERN",
    "INVALID_NUMBER",
    "METADATA_KEY_MAX",
    "METADATA_MAX_KEYS",
    "METADATA_VALUE_MAX",
    "NAME_MAX",
    "NOT_A_BOOLEAN",
    "NOT_A_STRING",
    "NUMBER_IN_USE",
    "READ_ONLY",
    "REQUIRED",
    "UNKNOWN",
    "ChannelDraft",
    "ChannelRefs",
    "IntegrationDraft",
    "PhoneNumberDraft",
    "check_channel",
    "check_email_domain",
    "check_integration",
    "check_phone_number",
    "clean_bool",
    "clean_choice",
    "clean_credentials",
    "clean_id",
    "clean_metadata",
    "clean_name",
    "derive_status",
    "email_domain_refusal",
    "integration_refusal",
    "phone_number_refusal",
    "is_missing",
    "load_channel_refs",
    "name_key",
    "name_taken",
    "normalize_domain",
    "normalize_phone_number",
    "parse_e164",
    "parse_email_address",
]
