"""Phone numbers: adding one creates its SMS channel; releasing one disables its channels."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from core import rules
from core.db_types import new_id, utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.models import Channel, PhoneNumber
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
    outcomes = resync_statuses(
        tenant_id, channels_using(tenant_id, phone_number_id=number.id), actor, "number released"
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
