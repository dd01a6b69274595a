"""Phone numbers: adding one creates its SMS channel; releasing one disables its channels."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import events, rules
from core.db_types import new_id, utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.models import Channel, PhoneNumber
from core.serializers import phone_number_to_api
from core.services import audit
from core.services.audit import Actor
from core.services.channels import (
    ChannelOutcome,
    channels_using,
    create_channel,
    lock_tenant,
    resync_statuses,
)
from core.tenancy import get_for_tenant


def channel_ids(numbers: list[PhoneNumber]) -> dict[str, str]:
    """The oldest SMS channel of each number (its ``channel_id`` in the API), in one query."""
    if not numbers:
        return {}
    rows = db.session.execute(
        select(Channel.phone_number_id, Channel.id)
        .where(Channel.phone_number_id.in_([n.id for n in numbers]))
        .order_by(Channel.created_at.desc(), Channel.id.desc())
    )
    return {number_id: channel_id for number_id, channel_id in rows}


def _render(number: PhoneNumber) -> dict:
    """The number as the API renders it, with its channel's id."""
    return phone_number_to_api(number, channel_ids([number]).get(number.id))


@dataclass
class PhoneNumberOutcome:
    phone_number: PhoneNumber
    channel: Channel | None = None


def _free_channel_name(tenant_id: str, base: str) -> str:
    """``SMS +14155550123``, or with a counter when a channel already has that name."""
    name, counter = base, 2
    while rules.name_taken(tenant_id, name):
        name = f"{base} ({counter})"
        counter += 1
    return name


def add_phone_number(
    tenant_id: str, data: dict, actor: Actor, phone_number_id: str | None = None
) -> PhoneNumberOutcome:
    """Add a number; an SMS-capable one gets its SMS channel unless ``create_channel`` is false.

    ``phone_number_id`` fixes the new id (demo data with documented ids); normally generated.
    """
    lock_tenant(tenant_id)
    draft = rules.check_phone_number(tenant_id, data)
    number = PhoneNumber(
        id=phone_number_id or new_id(),
        tenant_id=tenant_id,
        phone_number=draft.phone_number,
        integration_id=draft.integration.id,
        integration=draft.integration,
        capabilities=draft.capabilities,
        status="active",
        created_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(number)
            db.session.flush()
    except IntegrityError as exc:
        # Numbers are unique platform-wide: another tenant's request took it a moment ago and
        # the unique index decided (the tenant lock cannot serialise two tenants).
        raise ValidationFailed(
            "The phone number could not be added.", {"phone_number": [rules.NUMBER_IN_USE]}
        ) from exc
    audit.record(
        tenant_id,
        actor,
        "phone_number.create",
        "phone_number",
        number.id,
        audit.diff({}, {"phone_number": number.phone_number, "capabilities": number.capabilities}),
    )
    outcome = PhoneNumberOutcome(number)
    if draft.create_channel and "sms" in draft.capabilities:
        outcome.channel = create_channel(
            tenant_id,
            {
                "name": _free_channel_name(tenant_id, f"SMS {number.phone_number}"),
                "channel_type": "sms",
                "integration_id": number.integration_id,
                "send_from_phone_number": number.phone_number,
                "phone_number_id": number.id,
            },
            actor,
        ).channel
    channel_id = outcome.channel.id if outcome.channel is not None else None
    events.emit(tenant_id, "phone_number.added", number.id, phone_number_to_api(number, channel_id))
    return outcome


def release_phone_number(
    tenant_id: str, phone_number_id: str, actor: Actor
) -> tuple[PhoneNumber, list[ChannelOutcome]]:
    """Release a number: it stays on record as ``released`` and its channels are disabled."""
    lock_tenant(tenant_id)
    number = get_for_tenant(PhoneNumber, tenant_id, phone_number_id)
    if number.status == "released":
        return number, []
    number.status = "released"
    number.released_at = utcnow()
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "phone_number.release",
        "phone_number",
        number.id,
        {"status": {"before": "active", "after": "released"}},
    )
    events.emit(tenant_id, "phone_number.released", number.id, _render(number))
    outcomes = resync_statuses(
        tenant_id,
        channels_using(tenant_id, phone_number_id=number.id),
        actor,
        "number released",
        "number",
    )
    return number, outcomes


def delete_phone_number(tenant_id: str, phone_number_id: str, actor: Actor) -> None:
    """Delete a number no channel uses; else Conflict naming the channels."""
    lock_tenant(tenant_id)
    number = get_for_tenant(PhoneNumber, tenant_id, phone_number_id)
    channels = channels_using(tenant_id, phone_number_id=number.id)
    if channels:
        names = ", ".join(c.name for c in channels)
        raise Conflict(
            f"This number is used by channels: {names}. Delete them, or release the number instead."
        )
    rendered = _render(number)
    db.session.delete(number)
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "phone_number.delete",
        "phone_number",
        number.id,
        audit.diff({"phone_number": number.phone_number}, {}),
    )
    events.emit(tenant_id, "phone_number.deleted", number.id, rendered)
