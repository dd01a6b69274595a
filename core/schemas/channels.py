"""Channels (DESIGN §3, §4): email and SMS channels as a union discriminated on
``channel_type``, as created, as changed, as rendered, and as a dry run renders them.

Each shape is built by one function for both types, from the type's address fields
(``core.models.CHANNEL_TYPE_FIELDS``), so the types stay alike but for those; the field order is
the seed's (DESIGN §4), which ``render`` keeps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, RootModel, WithJsonSchema, create_model

from core.models import (
    CHANNEL_STATUS_CHOICES,
    CHANNEL_STATUSES,
    CHANNEL_TYPE_FIELDS,
    CHANNEL_TYPES,
)
from core.schemas import Schema, declared, described, list_of, required_in_document
from core.schemas.values import (
    E164_SCHEMA,
    EMAIL_SCHEMA,
    ID_SCHEMA,
    BoolInput,
    E164Input,
    EmailInput,
    Id,
    IdInput,
    Metadata,
    MetadataInput,
    Name,
    NameInput,
    Timestamp,
    UuidInput,
    choice,
    enum,
)

CHANNEL_READ_ONLY = ("id", "tenant_id", "status", "created_at", "updated_at")
LABELS = {"email": "Email", "sms": "Sms"}  # in component names
NOUNS = {"email": "An email", "sms": "An SMS"}  # in descriptions
ADDRESS_DESCRIPTIONS = {
    "send_from_email": "An address on the email domain.",
    "email_domain_id": "One of the tenant's email domains.",
    "send_from_phone_number": "The E.164 number of `phone_number_id`.",
    "phone_number_id": "One of the tenant's active, SMS-capable numbers.",
}
# The address fields: (request type, response schema).
ADDRESS_TYPES = {
    "send_from_email": (EmailInput, EMAIL_SCHEMA),
    "email_domain_id": (UuidInput, ID_SCHEMA),
    "send_from_phone_number": (E164Input, E164_SCHEMA),
    "phone_number_id": (UuidInput, ID_SCHEMA),
}


def _address(name: str, request: bool, note: str = "") -> Any:
    request_type, schema = ADDRESS_TYPES[name]
    field = Field(description=ADDRESS_DESCRIPTIONS[name] + note)
    if request:
        return Annotated[request_type, field]
    return Annotated[str, WithJsonSchema(schema), field]


def _build(name: str, base: type[Schema], fields: dict, doc: str, **namespace) -> type[Schema]:
    model = create_model(name, __base__=base, __doc__=doc, **fields)
    for key, value in namespace.items():
        setattr(model, key, value)
    return model


# --- responses ----------------------------------------------------------------------------------


def _channel_model(channel_type: str, persisted: bool) -> type[Schema]:
    """A channel as the API renders it: only its own type's address fields, in the seed's order."""
    fields: dict[str, Any] = {}
    if persisted:
        fields["id"] = (Id, ...)
    fields.update(
        tenant_id=(Id, ...),
        name=(Name, ...),
        channel_type=(Literal[channel_type], ...),
        integration_id=(Id, ...),
    )
    for address in CHANNEL_TYPE_FIELDS[channel_type]:
        fields[address] = (_address(address, request=False), ...)
    fields.update(
        status=(Annotated[str, WithJsonSchema(enum(CHANNEL_STATUSES))], ...),
        is_default=(bool, ...),
        metadata=(Metadata, ...),
    )
    if persisted:
        fields.update(created_at=(Timestamp, ...), updated_at=(Timestamp, None))
    suffix = "Channel" if persisted else "ChannelPreview"
    what = "channel" if persisted else "channel a dry run would create (no id, no timestamps)"
    return declared(
        _build(LABELS[channel_type] + suffix, Schema, fields, f"{NOUNS[channel_type]} {what}.")
    )


EmailChannel = _channel_model("email", persisted=True)
SmsChannel = _channel_model("sms", persisted=True)
EmailChannelPreview = _channel_model("email", persisted=False)
SmsChannelPreview = _channel_model("sms", persisted=False)
CHANNEL_MODELS = {"email": EmailChannel, "sms": SmsChannel}
PREVIEW_MODELS = {"email": EmailChannelPreview, "sms": SmsChannelPreview}


@declared
class Channel(RootModel[Annotated[EmailChannel | SmsChannel, Field(discriminator="channel_type")]]):
    """A channel, by type."""


@declared
class ChannelPreview(
    RootModel[
        Annotated[
            EmailChannelPreview | SmsChannelPreview,
            Field(discriminator="channel_type"),
        ]
    ]
):
    """A dry run's channel: what would be created, without id or timestamps."""


ChannelList = list_of(Channel, "ChannelList", "channels")


def channel_values(channel: Any) -> tuple[type[Schema], dict[str, Any]]:
    """The channel's response model (a dry run's channel, without id: its preview model) and
    its values, from a ``Channel`` or a row of ``channel_queries.API_COLUMNS`` (same names)."""
    model = (CHANNEL_MODELS if channel.id else PREVIEW_MODELS)[channel.channel_type]
    values = {name: getattr(channel, name) for name in _ROW_FIELDS[model]}
    values["is_default"] = bool(channel.is_default)
    values["metadata"] = dict(channel.metadata_ or {})
    if channel.id:
        values["updated_at"] = channel.updated_at or channel.created_at
    return model, values


# The fields read from the row as they are (the others are computed above), per model.
_COMPUTED = {"is_default", "metadata", "updated_at"}
_ROW_FIELDS = {
    model: tuple(name for name in model.model_fields if name not in _COMPUTED)
    for model in (*CHANNEL_MODELS.values(), *PREVIEW_MODELS.values())
}


# --- requests -----------------------------------------------------------------------------------


def _create_model(channel_type: str | None) -> type[Schema]:
    """What POST /api/channels takes for one type (None: the fields every type has, which the
    rules read when the type itself is missing or wrong)."""
    fields: dict[str, Any] = {"name": (NameInput, ...)}
    if channel_type:
        fields["channel_type"] = (Literal[channel_type], ...)
    fields["integration_id"] = (
        Annotated[IdInput, Field(description=f"An active {channel_type} integration.")],
        ...,
    )
    for address in CHANNEL_TYPE_FIELDS.get(channel_type, ()):
        fields[address] = (_address(address, request=True), ...)
    fields.update(is_default=(BoolInput, None), metadata=(MetadataInput, None))
    name = f"{LABELS[channel_type]}ChannelCreate" if channel_type else "ChannelCreateCommon"
    doc = f"{NOUNS[channel_type]} channel to create." if channel_type else None
    return _build(name, Schema, fields, doc, read_only=CHANNEL_READ_ONLY)


EmailChannelCreate = declared(_create_model("email"), mode="validation")
SmsChannelCreate = declared(_create_model("sms"), mode="validation")
ChannelCreateCommon = _create_model(None)
CREATE_MODELS = {"email": EmailChannelCreate, "sms": SmsChannelCreate}


@declared(mode="validation")
class ChannelCreate(
    RootModel[Annotated[EmailChannelCreate | SmsChannelCreate, Field(discriminator="channel_type")]]
):
    """A new channel, by type."""


@declared(mode="validation")
class ChannelUpdate(Schema):
    """A partial update: only the fields sent change."""

    read_only = tuple(f for f in CHANNEL_READ_ONLY if f != "status")

    name: NameInput = None
    channel_type: Annotated[
        described(enum(CHANNEL_TYPES)),
        Field(description="Accepted only when equal to the channel's type; it cannot change."),
    ] = None
    integration_id: IdInput = None
    send_from_email: _address("send_from_email", True, " Only for channels of its type.") = None
    email_domain_id: _address("email_domain_id", True, " Only for channels of its type.") = None
    send_from_phone_number: _address(
        "send_from_phone_number", True, " Only for channels of its type."
    ) = None
    phone_number_id: _address("phone_number_id", True, " Only for channels of its type.") = None
    is_default: BoolInput = None
    metadata: MetadataInput = None
    status: choice(CHANNEL_STATUS_CHOICES, required=False) = None


@declared(mode="validation")
class TestMessageRequest(Schema):
    """Where to send a test message. ``to`` is read by the service once the channel is found
    (an address or a number, by the channel's type)."""

    model_config = required_in_document("to")

    to: Annotated[
        described({"type": "string"}),
        Field(description="An email address (email channels) or an E.164 number (SMS channels)."),
    ] = None


@declared
class TestMessageResult(Schema):
    """What the provider answered."""

    ok: bool
    message: str


# The two sample calls of the seed page ("Create Channel", shared/SEED.md), verbatim: they
# work against `flask seed-demo` data (tests/api/test_seed_contract.py sends them).
SEED_CREATE_EXAMPLES = {
    "email": {
        "summary": "Create Email Channel (the seed page's sample)",
        "value": {
            "name": "Support Email",
            "channel_type": "email",
            "integration_id": "123e4567-e89b-12d3-a456-426614174002",
            "send_from_email": "support@example.com",
            "email_domain_id": "123e4567-e89b-12d3-a456-426614174003",
            "is_default": True,
        },
    },
    "sms": {
        "summary": "Create SMS Channel (the seed page's sample)",
        "value": {
            "name": "Sales SMS",
            "channel_type": "sms",
            "integration_id": "323e4567-e89b-12d3-a456-426614174011",
            "send_from_phone_number": "+15551234567",
            "phone_number_id": "423e4567-e89b-12d3-a456-426614174012",
            "is_default": False,
        },
    },
}
SEED_CHANNEL_EXAMPLES = {
    "email": {
        "summary": "Email Channel (the seed page's sample response)",
        "value": {
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
            "name": "Support Email",
            "channel_type": "email",
            "integration_id": "123e4567-e89b-12d3-a456-426614174002",
            "send_from_email": "support@example.com",
            "email_domain_id": "123e4567-e89b-12d3-a456-426614174003",
            "status": "available",
            "is_default": True,
            "metadata": {},
            "created_at": "2024-10-03T12:00:00Z",
        },
    },
    "sms": {
        "summary": "SMS Channel (the seed page's sample response)",
        "value": {
            "id": "223e4567-e89b-12d3-a456-426614174010",
            "tenant_id": "123e4567-e89b-12d3-a456-426614174001",
            "name": "Sales SMS",
            "channel_type": "sms",
            "integration_id": "323e4567-e89b-12d3-a456-426614174011",
            "send_from_phone_number": "+15551234567",
            "phone_number_id": "423e4567-e89b-12d3-a456-426614174012",
            "status": "available",
            "is_default": False,
            "metadata": {},
            "created_at": "2024-10-03T13:00:00Z",
        },
    },
}
