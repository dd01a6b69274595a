"""Events (DESIGN §8): what happened to a tenant's resources, written to the outbox with the change.

``emit`` is the one way an event is made. It writes, in the caller's transaction (services flush,
the request or command commits, as for audit events):

- one ``events`` row: the payload ``{"type", "timestamp", "sequence", "data"[, "change"]}``,
  ``data`` being the resource as the API renders it (``core.serializers``, secrets masked), and
  ``sequence`` the resource's own counter (1, 2, ...), so receivers can order one resource's
  events whatever order they arrive in;
- one ``webhook_deliveries`` row per enabled endpoint of the tenant subscribed to the type
  (``["*"]`` is every type), due now.

A rolled-back change therefore leaves no event and no delivery, and a committed one cannot be
lost: the dispatcher finds its deliveries in the database even when the broker or every worker
was down at commit time. After the commit, the new deliveries are also handed to the task engine
at once (``core.tasks.enqueue_committed``), so a healthy system delivers within moments.

``change`` says what moved, where the type alone does not: ``*.updated`` lists the changed fields
(``{"fields": {name: {"before", "after"}}}``, secrets masked), ``*.status_changed`` has
``{"from", "to", "cause"}`` (``cause``: ``admin``, ``domain``, ``integration`` or ``number``).
``channel.default_changed`` is about a tenant's default of one channel type rather than one
channel: its ``data`` is ``{"channel_type", "previous_default", "new_default"}`` (channels or
null) and ``cause`` says why (``admin``: set, unset, created as default; ``handover``: the
default was deleted or disabled and the oldest available channel took over, or none could).

The re-checks of DESIGN §9 (``core.services.domain_checks``, ``record_check``): ``email_domain.
at_risk`` has ``{"records", "consecutive_checks"}``, ``verification_failed`` ``{"records"}`` (each
DNS record's status), ``records_changed`` (SPF or DKIM moved on a sending domain: a warning)
``{"records", "changed"}``; ``integration.unhealthy`` and ``recovered`` have
``{"consecutive_failures", "message"}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Integer, String, bindparam, func, insert, literal, select, union_all

from core.database import insert_rows
from core.db_types import new_id, new_ids, utcnow
from core.extensions import db
from core.models import Event, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "channel.created",
    "channel.updated",
    "channel.deleted",
    "channel.status_changed",
    "channel.default_changed",
    "integration.created",
    "integration.updated",
    "integration.deleted",
    "integration.status_changed",
    "integration.unhealthy",
    "integration.recovered",
    "email_domain.created",
    "email_domain.deleted",
    "email_domain.verified",
    "email_domain.at_risk",
    "email_domain.verification_failed",
    "email_domain.records_changed",
    "phone_number.added",
    "phone_number.released",
    "phone_number.deleted",
    "webhook_endpoint.disabled",
    "webhook.test",
)
# What a type is about: the resource whose sequence it counts.
RESOURCE_OF = {
    "channel.default_changed": "channel_default",
    "webhook_endpoint.disabled": "webhook_endpoint",
    "webhook.test": "webhook_endpoint",
}
STATUS_CAUSES = ("admin", "domain", "integration", "number")
DEFAULT_CAUSES = ("admin", "handover")
WILDCARD = "*"

# session.info keys: the deliveries written in this transaction (handed to the engine after the
# commit) and the tenant's endpoints, read once per transaction.
PENDING_KEY = "outbox_new_deliveries"
ENDPOINTS_KEY = "outbox_endpoints"


def resource_type_of(event_type: str) -> str:
    """``channel`` for ``channel.created``; see RESOURCE_OF for the others."""
    return RESOURCE_OF.get(event_type, event_type.split(".", 1)[0])


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: ``2026-12-02T11:00:00.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def subscribed(endpoint_events: list[str], event_type: str) -> bool:
    """Does an endpoint listening to ``endpoint_events`` get ``event_type``?"""
    return WILDCARD in endpoint_events or event_type in endpoint_events


def emit(
    tenant_id: str,
    event_type: str,
    resource_id: str,
    data: dict | None,
    change: dict | None = None,
    *,
    only_endpoint: WebhookEndpoint | None = None,
) -> Event:
    """Write an event and its deliveries into the current transaction (see the module doc).

    ``only_endpoint`` sends it to that endpoint alone, subscribed or not (``webhook.test``).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = utcnow()
    resource_type = resource_type_of(event_type)
    session = db.session
    session.flush()  # the change goes first, as for audit events
    stored = {"type": event_type, "timestamp": timestamp(now), "data": data}
    if change is not None:
        stored["change"] = change
    event_id = new_id()
    # One statement: the sequence is computed in the INSERT (the tenant lock, or SQLite's single
    # writer, orders concurrent changes of one resource; the unique index is the last word).
    sequence = (
        session.connection()
        .execute(
            _insert_event_statement(),
            {
                "event_id": event_id,
                "event_tenant_id": tenant_id,
                "event_type": event_type,
                "event_resource_type": resource_type,
                "event_resource_id": resource_id,
                "event_payload": stored,
                "event_created_at": now,
            },
        )
        .scalar_one()
    )
    if only_endpoint is not None:
        targets = [only_endpoint.id]
    else:
        targets = [
            endpoint_id
            for endpoint_id, events in _endpoints(tenant_id)
            if subscribed(events, event_type)
        ]
    if targets:
        rows = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in targets
        ]
        session.connection().execute(_INSERT_DELIVERY, rows)
        session.info.setdefault(PENDING_KEY, []).extend(row["id"] for row in rows)
    return Event(
        id=event_id,
        tenant_id=tenant_id,
        type=event_type,
        resource_type=resource_type,
        resource_id=resource_id,
        sequence=sequence,
        payload=stored,
        created_at=now,
    )


def body_of(event: Event) -> dict:
    """The payload receivers get: ``{"type", "timestamp", "sequence", "data"[, "change"]}``."""
    stored = dict(event.payload)
    body = {"type": stored.pop("type"), "timestamp": stored.pop("timestamp")}
    body["sequence"] = event.sequence
    body.update(stored)
    return body


def _endpoints(tenant_id: str) -> list[tuple[str, list[str]]]:
    """The tenant's enabled endpoints (id, events), read once per transaction."""
    cache = db.session.info.setdefault(ENDPOINTS_KEY, {})
    if tenant_id not in cache:
        cache[tenant_id] = [
            (row.id, list(row.events or []))
            for row in db.session.connection().execute(
                _endpoints_statement(), {"tenant_id": tenant_id}
            )
        ]
    return cache[tenant_id]


@cache
def _insert_event_statement():
    """The event's INSERT ... SELECT, built once with bind parameters (its compiled form is
    cached; building it per event cost as much as running it)."""
    table = Event.__table__
    tenant_id, resource_type, resource_id = (
        bindparam(f"event_{name}", type_=String)
        for name in ("tenant_id", "resource_type", "resource_id")
    )
    return (
        insert(table)
        .from_select(
            [
                "id",
                "tenant_id",
                "type",
                "resource_type",
                "resource_id",
                "sequence",
                "payload",
                "created_at",
            ],
            select(
                bindparam("event_id", type_=String),
                tenant_id,
                bindparam("event_type", type_=String),
                resource_type,
                resource_id,
                func.coalesce(func.max(table.c.sequence), 0) + 1,
                bindparam("event_payload", type_=table.c.payload.type),
                bindparam("event_created_at", type_=table.c.created_at.type),
            ).where(
                table.c.tenant_id == tenant_id,
                table.c.resource_type == resource_type,
                table.c.resource_id == resource_id,
            ),
        )
        .returning(table.c.sequence)
    )


@cache
def _endpoints_statement():
    table = WebhookEndpoint.__table__
    return select(table.c.id, table.c.events).where(
        table.c.tenant_id == bindparam("tenant_id"), table.c.status == "enabled"
    )


def enabled_endpoints_exist(tenant_id):
    """EXISTS: has the tenant (a column or bind parameter) an enabled endpoint? Asked inside a
    query the write runs anyway (the channel rules' one query, ``load_channel_refs``), so that
    a tenant without endpoints costs no endpoints read (``no_endpoints``)."""
    table = WebhookEndpoint.__table__
    return (
        select(table.c.id)
        .where(table.c.tenant_id == tenant_id, table.c.status == "enabled")
        .exists()
    )


def no_endpoints(tenant_id: str) -> None:
    """The tenant has no enabled endpoint, as a statement of this transaction read it
    (``enabled_endpoints_exist``): its events need no delivery and no endpoints read."""
    db.session.info.setdefault(ENDPOINTS_KEY, {})[tenant_id] = []


def forget_endpoints() -> None:
    """Drop the per-transaction endpoint cache (an endpoint was just created or changed)."""
    db.session.info.pop(ENDPOINTS_KEY, None)


_INSERT_DELIVERY = insert(WebhookDelivery.__table__)


# --- the events of each resource, as the services emit them ----------------------------------


def channel_changed(tenant_id: str, channel, before: dict, after: dict, cause: str) -> None:
    """``channel.updated`` for changed fields other than status/default, and
    ``channel.status_changed`` when the status moved (defaults: ``default_changed``)."""
    from core.serializers import channel_to_api
    from core.services.audit import diff

    fields = {
        k: v for k, v in diff(before, after).items() if k not in ("status", "is_default", "enabled")
    }
    data = None
    if fields:
        data = channel_to_api(channel)
        emit(tenant_id, "channel.updated", channel.id, data, {"fields": fields})
    if before.get("status") != after.get("status"):
        emit(
            tenant_id,
            "channel.status_changed",
            channel.id,
            data or channel_to_api(channel),
            {"from": before.get("status"), "to": after.get("status"), "cause": cause},
        )


def default_change(channel_type: str, previous, new, cause: str, *, new_data=None):
    """The ``(data, change)`` of ``channel.default_changed`` (the type's default moved from
    ``previous`` to ``new``), or None when it did not move. ``new_data``: ``new`` already
    rendered (a create renders its channel once, for its response and its events)."""
    from core.serializers import channel_to_api

    if previous is None and new is None:
        return None
    if previous is not None and new is not None and previous.id == new.id:
        return None
    if new is not None and new_data is None:
        new_data = channel_to_api(new)
    data = {
        "channel_type": channel_type,
        "previous_default": channel_to_api(previous) if previous is not None else None,
        "new_default": new_data,
    }
    return data, {"cause": cause}


def default_changed(tenant_id: str, channel_type: str, previous, new, cause: str) -> None:
    """``channel.default_changed``: the type's default moved from ``previous`` to ``new``."""
    moved = default_change(channel_type, previous, new, cause)
    if moved is not None:
        emit(tenant_id, "channel.default_changed", channel_type, *moved)


def emit_first(
    tenant_id: str,
    event_type: str,
    resource_id: str,
    data: dict,
    *,
    then: tuple[str, str, dict, dict | None] | None = None,
) -> None:
    """``emit`` for a resource created in this transaction (a fresh id: its first event,
    ``sequence`` 1, no MAX to compute) and, with ``then`` (``(event_type, resource_id, data,
    change)``), one more event of any resource, its sequence computed in the statement as
    ``emit`` does: both events in one INSERT (a channel's create and its
    ``channel.default_changed``), their deliveries in one more when endpoints subscribe."""
    for kind in (event_type, *((then[0],) if then else ())):
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r}")
    session = db.session
    session.flush()  # the change goes first, as for audit events
    now = utcnow()
    first = {
        "first_id": new_id(),
        "first_tenant_id": tenant_id,
        "first_type": event_type,
        "first_resource_type": resource_type_of(event_type),
        "first_resource_id": resource_id,
        "first_payload": {"type": event_type, "timestamp": timestamp(now), "data": data},
        "first_created_at": now,
    }
    written = [(first["first_id"], event_type, now)]
    if then is None:
        session.connection().execute(_insert_first_statement(), first)
    else:
        then_type, then_resource_id, then_data, then_change = then
        then_now = utcnow()
        stored = {"type": then_type, "timestamp": timestamp(then_now), "data": then_data}
        if then_change is not None:
            stored["change"] = then_change
        written.append((new_id(), then_type, then_now))
        session.connection().execute(
            _insert_first_and_next_statement(),
            {
                **first,
                "event_id": written[1][0],
                "event_tenant_id": tenant_id,
                "event_type": then_type,
                "event_resource_type": resource_type_of(then_type),
                "event_resource_id": then_resource_id,
                "event_payload": stored,
                "event_created_at": then_now,
            },
        )
    endpoints = _endpoints(tenant_id)
    if not endpoints:
        return
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
            "created_at": moment,
        }
        for event_id, kind, moment in written
        for endpoint_id, subscriptions in endpoints
        if subscribed(subscriptions, kind)
    ]
    if rows:
        session.connection().execute(_INSERT_DELIVERY, rows)
        session.info.setdefault(PENDING_KEY, []).extend(row["id"] for row in rows)


_EVENT_COLUMNS = (
    "id",
    "tenant_id",
    "type",
    "resource_type",
    "resource_id",
    "sequence",
    "payload",
    "created_at",
)


def _first_select():
    """The SELECT of ``emit_first``'s first event: its bound values, ``sequence`` 1."""
    table = Event.__table__
    return select(
        bindparam("first_id", type_=String),
        bindparam("first_tenant_id", type_=String),
        bindparam("first_type", type_=String),
        bindparam("first_resource_type", type_=String),
        bindparam("first_resource_id", type_=String),
        literal(1, Integer),
        bindparam("first_payload", type_=table.c.payload.type),
        bindparam("first_created_at", type_=table.c.created_at.type),
    )


@cache
def _insert_first_statement():
    return insert(Event.__table__).from_select(_EVENT_COLUMNS, _first_select())


@cache
def _insert_first_and_next_statement():
    """Two events in one INSERT ... SELECT ... UNION ALL SELECT: the first with sequence 1, the
    second with its resource's next sequence (``emit``'s SELECT), built once."""
    return insert(Event.__table__).from_select(
        _EVENT_COLUMNS,
        union_all(_first_select(), _insert_event_statement().select),
    )


def emit_created(tenant_id: str, event_type: str, created: list[tuple[str, dict]]) -> None:
    """``emit`` for many resources created in this transaction, in two statements (the events,
    then their deliveries) instead of two per resource: a batch (``core.services.bulk``).

    ``created`` is ``[(resource_id, data), ...]`` of resources that did not exist before this
    transaction (fresh UUIDs), so each event is its resource's first: ``sequence`` 1.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not created:
        return
    now = utcnow()
    resource_type = resource_type_of(event_type)
    session = db.session
    session.flush()
    stamp = timestamp(now)
    rows = [
        {
            "id": event_id,
            "tenant_id": tenant_id,
            "type": event_type,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "sequence": 1,
            "payload": {"type": event_type, "timestamp": stamp, "data": data},
            "created_at": now,
        }
        for (resource_id, data), event_id in zip(created, new_ids(len(created)), strict=True)
    ]
    connection = session.connection()
    insert_rows(connection, Event.__table__, rows, arrays=False)
    targets = [
        endpoint_id
        for endpoint_id, events in _endpoints(tenant_id)
        if subscribed(events, event_type)
    ]
    delivery_ids = iter(new_ids(len(rows) * len(targets)))
    deliveries = [
        {
            "id": next(delivery_ids),
            "tenant_id": tenant_id,
            "endpoint_id": endpoint_id,
            "event_id": row["id"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for row in rows
        for endpoint_id in targets
    ]
    if deliveries:
        insert_rows(connection, WebhookDelivery.__table__, deliveries, arrays=False)
        session.info.setdefault(PENDING_KEY, []).extend(d["id"] for d in deliveries)
