"""Create, change and delete channels; keep statuses and defaults right when resources change.

Every route that writes a channel (API, console, auto-created SMS channels) comes through here,
and every one of them validates through ``core.rules.check_channel``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from core import events, rules
from core.database import insert_rows
from core.db_types import new_id, utcnow
from core.extensions import db
from core.models import CHANNEL_IS_DEFAULT, Channel, Tenant
from core.serializers import channel_to_api
from core.services import audit
from core.services.audit import Actor
from core.services.channel_queries import API_COLUMNS, load_channel_ref_rows
from core.tenancy import get_for_tenant

AUDITED_FIELDS = (
    "name",
    "integration_id",
    "send_from_email",
    "email_domain_id",
    "send_from_phone_number",
    "phone_number_id",
    "status",
    "is_default",
    "metadata",
)


@dataclass
class ChannelOutcome:
    """A written channel and, when the default moved to another channel, that channel."""

    channel: Channel
    new_default: Channel | None = None
    lost_default: bool = False  # the default was deleted/disabled and nothing could take over
    # A create's channel as the API renders it, rendered once for its response and its events.
    rendered: dict | None = None


def lock_tenant(tenant_id: str) -> None:
    """Serialise the tenant's channel writes (PostgreSQL row lock; SQLite writes are serial).

    Name uniqueness and the default handover read then write: the lock makes that atomic.
    SQLite has no row locks (``FOR UPDATE`` is not even rendered there): its write requests
    already hold the database's write lock (``BEGIN IMMEDIATE``), so no statement is sent.
    The lock is its own statement, sent before any read it protects: under READ COMMITTED a
    later statement sees what the previous lock holder committed (core.rules' reads do).
    """
    if db.engine.dialect.name == "sqlite":
        return
    db.session.connection().execute(_LOCK_TENANT, {"tenant_id": tenant_id})


_LOCK_TENANT = (
    select(Tenant.__table__.c.id)
    .where(Tenant.__table__.c.id == bindparam("tenant_id"))
    .with_for_update()
)


def snapshot(channel: Channel) -> dict:
    """The audited fields of a channel, as plain values."""
    values = {f: getattr(channel, f) for f in AUDITED_FIELDS if f != "metadata"}
    values["metadata"] = dict(channel.metadata_ or {})
    return values


def default_channel(tenant_id: str, channel_type: str) -> Channel | None:
    """The tenant's default channel of the type (served by the partial unique index)."""
    return db.session.scalar(
        select(Channel).where(
            Channel.tenant_id == tenant_id,
            Channel.channel_type == channel_type,
            CHANNEL_IS_DEFAULT,
        )
    )


def has_default(tenant_id: str, channel_type: str) -> bool:
    """Has the tenant a default channel of the type? The rules' own check, asked alone."""
    return rules.load_channel_refs(tenant_id, default_type=channel_type).type_has_default


def clear_default(tenant_id: str, actor: Actor, previous_id: str) -> tuple[Row, dict]:
    """The type's current default (as the rules' query read it) stops being it, before a new
    one is written; returns it as a row of ``channel_queries.API_COLUMNS`` (what
    ``channel_to_api`` renders, for the ``channel.default_changed`` payload) and its audit
    event, for the caller to write with its own events (one statement for all of them).
    """
    # One prebuilt Core UPDATE by primary key, sent now (the partial unique index is checked
    # per statement, so it must precede the new default's write); RETURNING hands back the
    # rendered columns, so the event's payload costs no SELECT and no ORM object.
    db.session.flush()
    now = utcnow()
    previous = (
        db.session.connection()
        .execute(_CLEAR_DEFAULT, {"previous_id": previous_id, "updated_at": now})
        .one()
    )
    # A copy of the row already in this session (an edit form's or a batch's) says so too.
    loaded = db.session.identity_map.get(identity_key(Channel, previous_id))
    if loaded is not None:
        set_committed_value(loaded, "is_default", False)
        set_committed_value(loaded, "updated_at", now)
    return previous, audit.event(
        tenant_id,
        actor,
        "channel.default_cleared",
        "channel",
        previous_id,
        {"is_default": {"before": True, "after": False}},
    )


_CLEAR_DEFAULT = (
    update(Channel.__table__)
    .where(Channel.__table__.c.id == bindparam("previous_id"))
    .values(is_default=False, updated_at=bindparam("updated_at"))
    .returning(*API_COLUMNS)
)


def default_successor(tenant_id: str, channel_type: str, exclude_id: str) -> Channel | None:
    """The channel that would take over as default: the oldest other available one of the type."""
    return db.session.scalar(
        select(Channel)
        .where(
            Channel.tenant_id == tenant_id,
            Channel.channel_type == channel_type,
            Channel.status == "available",
            Channel.id != exclude_id,
        )
        .order_by(Channel.created_at.asc(), Channel.id.asc())
        .limit(1)
    )


def _promote_successor(tenant_id: str, channel_type: str, exclude_id: str, actor: Actor):
    """The oldest other available channel of the type becomes the default (or none exists)."""
    db.session.flush()
    successor = default_successor(tenant_id, channel_type, exclude_id)
    if successor is not None:
        successor.is_default = True
        successor.updated_at = utcnow()
        db.session.flush()
        audit.record(
            tenant_id,
            actor,
            "channel.default_handover",
            "channel",
            successor.id,
            {"is_default": {"before": False, "after": True}, "replaces": exclude_id},
        )
    return successor


def validate_channel(
    tenant_id: str, data: dict, channel: Channel | None = None
) -> rules.ChannelDraft:
    """Run every rule on a new channel (``channel`` None) or a change to ``channel``, writing
    nothing: no lock, no flush, no audit row (raises ValidationFailed, as the writes do)."""
    return rules.check_channel(tenant_id, data, existing=channel)


def new_channel(tenant_id: str, draft: rules.ChannelDraft, is_default: bool, make=Channel):
    """The channel a checked draft makes (not written yet: no id, no timestamps). ``make``: the
    class of the object (a batch passes a plain one: ``core.services.bulk.NewChannel``)."""
    return make(
        tenant_id=tenant_id,
        name=draft.name,
        name_key=rules.name_key(draft.name),
        channel_type=draft.channel_type,
        integration_id=draft.integration.id,
        send_from_email=draft.send_from_email,
        email_domain_id=draft.email_domain.id if draft.email_domain else None,
        send_from_phone_number=draft.send_from_phone_number,
        phone_number_id=draft.phone_number.id if draft.phone_number else None,
        enabled=True,
        status=draft.status,
        is_default=is_default,
        metadata_=draft.metadata,
    )


def create_channel(
    tenant_id: str, data: dict, actor: Actor, *, dry_run: bool = False
) -> ChannelOutcome:
    """Create a channel from API-shaped ``data``. With ``dry_run`` nothing is written and the
    returned channel has no id. The first channel of a type becomes default unless told not to.

    Statements after the rules' one query: the previous default's UPDATE (a handover only), the
    channel's INSERT, one INSERT of its audit events (and the handover's), one INSERT of its
    events (``channel.created`` and, when it is the default, ``channel.default_changed``); the
    webhook endpoints are read and deliveries written only when the tenant has enabled
    endpoints (the rules' query said). The channel is rendered once: ``outcome.rendered`` is
    the response body and the events' data.
    """
    if not dry_run:
        lock_tenant(tenant_id)
    # The references as rows, not ORM objects: the create only reads them and writes their ids.
    draft = rules.check_channel(tenant_id, data, load_refs=load_channel_ref_rows)
    is_default = draft.is_default
    if is_default is None:
        is_default = draft.current_default_id is None
    channel = new_channel(tenant_id, draft, is_default)
    if dry_run:
        return ChannelOutcome(channel)
    if not draft.has_endpoints:
        events.no_endpoints(tenant_id)
    audited = []
    previous_default = None
    if is_default and draft.current_default_id is not None:
        previous_default, cleared = clear_default(tenant_id, actor, draft.current_default_id)
        audited.append(cleared)
    channel.id = new_id()
    channel.created_at = utcnow()
    channel.updated_at = None
    _insert(channel)
    audited.append(
        audit.event(
            tenant_id,
            actor,
            "channel.create",
            "channel",
            channel.id,
            audit.diff({}, snapshot(channel)),
        )
    )
    audit.write(*audited)  # the handover's and the create's audit events in one statement
    rendered = channel_to_api(channel)
    moved = None
    if is_default:
        moved = events.default_change(
            channel.channel_type, previous_default, channel, "admin", new_data=rendered
        )
    events.emit_first(
        tenant_id,
        "channel.created",
        channel.id,
        rendered,
        then=("channel.default_changed", channel.channel_type, *moved) if moved else None,
    )
    return ChannelOutcome(channel, rendered=rendered)


_CHANNEL_COLUMNS = tuple(
    (attr.key, attr.columns[0].key) for attr in Channel.__mapper__.column_attrs
)
_INSERT_CHANNEL = insert(Channel.__table__)


def _insert(channel: Channel) -> None:
    """INSERT a new channel whose every column is set, as one Core statement, then hand the
    object to the session as a loaded row (``make_transient_to_detached`` + ``add``).

    The ORM unit of work costs as much as the insert itself on the hot path of the API, and a
    new channel has nothing for it to order: its references exist already.
    """
    db.session.flush()  # anything pending goes first, as an ORM flush would order it
    db.session.connection().execute(
        _INSERT_CHANNEL, {column: getattr(channel, attr) for attr, column in _CHANNEL_COLUMNS}
    )
    make_transient_to_detached(channel)
    db.session.add(channel)


def insert_channels(channels: list[Channel]) -> None:
    """INSERT many new channels (every column set): a batch's write (``core.services.bulk``),
    by ``core.database.insert_rows`` (SQLite: multi-row statements, which the FTS5 index of the
    name search needs; PostgreSQL: one statement of arrays). The objects stay out of the
    session: nothing reads them back."""
    db.session.flush()
    rows = [{column: getattr(c, attr) for attr, column in _CHANNEL_COLUMNS} for c in channels]
    insert_rows(db.session.connection(), Channel.__table__, rows)


def update_channel(tenant_id: str, channel_id: str, data: dict, actor: Actor) -> ChannelOutcome:
    """Apply a partial change (DESIGN §4 PATCH); disabling the default hands it over."""
    lock_tenant(tenant_id)
    channel = get_for_tenant(Channel, tenant_id, channel_id)
    draft = rules.check_channel(tenant_id, data, existing=channel)
    before = snapshot(channel)
    was_default = channel.is_default

    previous_default = None
    if draft.is_default and not channel.is_default and draft.current_default_id is not None:
        # The rules' query read the current default (is_default: true always asks for it).
        previous_default, cleared = clear_default(tenant_id, actor, draft.current_default_id)
        audit.write(cleared)
    channel.name = draft.name
    channel.name_key = rules.name_key(draft.name)
    channel.integration_id = draft.integration.id
    channel.integration = draft.integration
    if channel.channel_type == "email":
        channel.send_from_email = draft.send_from_email
        channel.email_domain = draft.email_domain
    else:
        channel.send_from_phone_number = draft.send_from_phone_number
        channel.phone_number = draft.phone_number
    channel.metadata_ = draft.metadata
    channel.enabled = draft.enabled
    channel.status = draft.status
    if draft.is_default is not None:
        channel.is_default = draft.is_default
    outcome = ChannelOutcome(channel)
    if was_default and channel.status == "disabled":
        channel.is_default = False
        outcome.new_default = _promote_successor(tenant_id, channel.channel_type, channel.id, actor)
        outcome.lost_default = outcome.new_default is None
    if draft.changed or channel.is_default != was_default:
        channel.updated_at = utcnow()
        db.session.flush()
        changes = audit.diff(before, snapshot(channel))
        if changes:
            audit.record(tenant_id, actor, _update_action(changes), "channel", channel.id, changes)
        events.channel_changed(tenant_id, channel, before, snapshot(channel), "admin")
    if channel.is_default and not was_default:
        events.default_changed(tenant_id, channel.channel_type, previous_default, channel, "admin")
    elif was_default and not channel.is_default:
        handover = outcome.new_default is not None or outcome.lost_default
        events.default_changed(
            tenant_id,
            channel.channel_type,
            channel,
            outcome.new_default,
            "handover" if handover else "admin",
        )
    return outcome


def _update_action(changes: dict) -> str:
    """The audit action naming what an update did."""
    if set(changes) == {"is_default"}:
        return (
            "channel.default_set" if changes["is_default"]["after"] else "channel.default_cleared"
        )
    if set(changes) <= {"status", "is_default"} and "status" in changes:
        return "channel.disable" if changes["status"]["after"] == "disabled" else "channel.enable"
    return "channel.update"


def delete_channel(tenant_id: str, channel_id: str, actor: Actor) -> ChannelOutcome:
    """Delete a channel; when it was the default, the oldest other available one takes over."""
    lock_tenant(tenant_id)
    channel = get_for_tenant(Channel, tenant_id, channel_id)
    before = snapshot(channel)
    rendered = channel_to_api(channel)
    outcome = ChannelOutcome(channel)
    db.session.delete(channel)
    db.session.flush()
    audit.record(tenant_id, actor, "channel.delete", "channel", channel.id, audit.diff(before, {}))
    events.emit(tenant_id, "channel.deleted", channel.id, rendered)
    if before["is_default"]:
        outcome.new_default = _promote_successor(tenant_id, channel.channel_type, channel.id, actor)
        outcome.lost_default = outcome.new_default is None
        events.default_changed(
            tenant_id, channel.channel_type, channel, outcome.new_default, "handover"
        )
    return outcome


def resync_statuses(
    tenant_id: str, channels: list[Channel], actor: Actor, reason: str, cause: str
) -> list[ChannelOutcome]:
    """Recompute the status of channels whose integration, domain or number changed.

    All statuses change first; then each default that became disabled hands over to the
    oldest other channel that is still available. ``cause`` (``integration``, ``domain``,
    ``number``) goes into the ``channel.status_changed`` events.
    """
    outcomes = []
    for channel in channels:
        new_status = rules.derive_status(
            enabled=channel.enabled,
            integration=channel.integration,
            email_domain=channel.email_domain,
            phone_number=channel.phone_number,
        )
        if new_status != channel.status:
            outcomes.append((ChannelOutcome(channel), channel.status))
            channel.status = new_status
            channel.updated_at = utcnow()
    db.session.flush()
    for outcome, old_status in outcomes:
        channel = outcome.channel
        changes = {"status": {"before": old_status, "after": channel.status}}
        if channel.is_default and channel.status == "disabled":
            channel.is_default = False
            changes["is_default"] = {"before": True, "after": False}
            outcome.new_default = _promote_successor(
                tenant_id, channel.channel_type, channel.id, actor
            )
            outcome.lost_default = outcome.new_default is None
        elif (
            channel.is_default
            and old_status == "available"
            and channel.status == "pending_verification"
            and default_successor(tenant_id, channel.channel_type, channel.id) is not None
        ):
            # Its domain lost its verification: an available channel takes over; with none,
            # it stays the default (never silently no default), pending like its domain.
            channel.is_default = False
            db.session.flush()  # one default at a time: the partial unique index
            changes["is_default"] = {"before": True, "after": False}
            outcome.new_default = _promote_successor(
                tenant_id, channel.channel_type, channel.id, actor
            )
        changes["reason"] = reason
        audit.record(tenant_id, actor, "channel.status_changed", "channel", channel.id, changes)
        events.channel_changed(
            tenant_id,
            channel,
            {"status": changes["status"]["before"]},
            {"status": channel.status},
            cause,
        )
        if "is_default" in changes:
            events.default_changed(
                tenant_id, channel.channel_type, channel, outcome.new_default, "handover"
            )
    db.session.flush()
    return [outcome for outcome, _ in outcomes]


def channels_using(tenant_id: str, **column_values) -> list[Channel]:
    """The tenant's channels whose columns equal the given values, oldest first."""
    query = select(Channel).where(Channel.tenant_id == tenant_id)
    for column, value in column_values.items():
        query = query.where(getattr(Channel, column) == value)
    return list(db.session.scalars(query.order_by(Channel.created_at, Channel.id)))
