"""Batches (DESIGN §10): ``POST /api/channels/bulk`` and ``POST /api/phone_numbers/bulk``.

A request carries the items (each one the body of a single create, judged by the same rules)
and ``atomic``. The answers:

- atomic, created: 201 ``{"data": [...]}`` (every object, in the request's order);
- atomic, refused: 422 in the usual error envelope, ``fields`` keyed by item and field
  (``channels.3.name``: the name of the fourth item; ``channels.3``: the item itself);
- ``dry_run=true``, atomic: 200 ``{"data": [...]}`` of what would be created (no ids);
- not atomic: 200 ``{"results": [{"index", "status": 201|200, "channel"}
  | {"index", "status": 422, "error"}]}``, one per item, in order (200: a dry run's item).
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Len
from pydantic import Field, RootModel, WithJsonSchema

from core.rules.batches import BATCH_MAX, clean_batch
from core.rules.values import CAPABILITIES
from core.schemas import Schema, declared, rule
from core.schemas.channels import Channel, ChannelCreate, ChannelPreview
from core.schemas.errors import ErrorDetail
from core.schemas.phone_numbers import PhoneNumber, PhoneNumberCreate
from core.schemas.values import E164_SCHEMA, ID_SCHEMA, BoolInput, enum


def _batch_of(item: type) -> object:
    """A batch field: 1 to BATCH_MAX items, each documented as ``item`` (and judged by the rules
    of a single create, item by item, by the service)."""
    return Annotated[
        rule(clean_batch, Annotated[list[item], Len(1, BATCH_MAX)]),
        Field(description=f"1 to {BATCH_MAX} items, each judged by the rules of a single create."),
    ]


ATOMIC = Annotated[
    BoolInput,
    Field(
        description="`true` (default): every item is created or none is (422 listing every "
        "refused item). `false`: the valid items are created, each item has its own result."
    ),
]
INDEX = Annotated[int, Field(ge=0, description="The item's position in the request (from 0).")]
RESULT_STATUS = Annotated[
    Literal[200, 201, 422],
    Field(description="201 created; 200 would be created (`dry_run`); 422 refused."),
]
ITEM_ERROR = Annotated[
    ErrorDetail, Field(description="Why the item was refused (`validation_error`).")
]


# --- channels ---------------------------------------------------------------------------------


@declared(mode="validation")
class ChannelBatchCreate(Schema):
    """Channels to create in one request."""

    channels: _batch_of(ChannelCreate)
    atomic: ATOMIC = True


@declared
class ChannelBatch(Schema):
    """Every channel of an atomic batch, created, in the request's order."""

    data: list[Channel]


@declared
class ChannelBatchPreview(Schema):
    """A dry run of an atomic batch: the channels it would create (no ids)."""

    data: list[ChannelPreview]


@declared
class ChannelBatchResult(Schema):
    """One item of a non-atomic batch: its channel, or its error."""

    index: INDEX
    status: RESULT_STATUS
    channel: Annotated[Channel | ChannelPreview, Field(description="Unless refused.")] = None
    error: ITEM_ERROR = None


@declared
class ChannelBatchResults(Schema):
    """A non-atomic batch: one result per item, in the request's order."""

    results: list[ChannelBatchResult]


@declared
class ChannelBatchOutcome(RootModel[ChannelBatchPreview | ChannelBatchResults]):
    """200: an atomic dry run's channels, or a non-atomic batch's results."""


# --- phone numbers ----------------------------------------------------------------------------


@declared(mode="validation")
class PhoneNumberBatchCreate(Schema):
    """Phone numbers to add in one request (each with its SMS channel unless
    ``create_channel`` is false)."""

    phone_numbers: _batch_of(PhoneNumberCreate)
    atomic: ATOMIC = True


@declared
class PhoneNumberPreview(Schema):
    """A number a dry run would add, and the SMS channel it would get (null: none)."""

    phone_number: Annotated[str, WithJsonSchema(E164_SCHEMA)]
    integration_id: Annotated[str, WithJsonSchema(ID_SCHEMA)]
    capabilities: Annotated[
        list[str], WithJsonSchema({"type": "array", "items": enum(CAPABILITIES)})
    ]
    status: Literal["active"]
    channel: ChannelPreview | None


@declared
class PhoneNumberBatch(Schema):
    """Every number of an atomic batch, added, in the request's order."""

    data: list[PhoneNumber]


@declared
class PhoneNumberBatchPreview(Schema):
    """A dry run of an atomic batch: the numbers it would add."""

    data: list[PhoneNumberPreview]


@declared
class PhoneNumberBatchResult(Schema):
    """One item of a non-atomic batch: its number, or its error."""

    index: INDEX
    status: RESULT_STATUS
    phone_number: Annotated[
        PhoneNumber | PhoneNumberPreview, Field(description="Unless refused.")
    ] = None
    error: ITEM_ERROR = None


@declared
class PhoneNumberBatchResults(Schema):
    """A non-atomic batch: one result per item, in the request's order."""

    results: list[PhoneNumberBatchResult]


@declared
class PhoneNumberBatchOutcome(RootModel[PhoneNumberBatchPreview | PhoneNumberBatchResults]):
    """200: an atomic dry run's numbers, or a non-atomic batch's results."""
