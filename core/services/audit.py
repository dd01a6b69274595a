"""Audit events: who did what to which resource, written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context, request
from sqlalchemy import insert

from core.database import insert_rows
from core.db_types import new_ids
from core.extensions import db
from core.models import AuditEvent
from core.providers import SECRET_MASK

ACTOR_TYPES = ("user", "api_key", "system")
# What an event can be about; the audit log's filters accept exactly these.
RESOURCE_TYPES = (
    "api_key",
    "channel",
    "email_domain",
    "import",
    "integration",
    "phone_number",
    "tenant",
    "user",
    "webhook_endpoint",
)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a console user, an API key, or the system (CLI, automatic)."""

    type: str  # user | api_key | system
    id: str | None
    name: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", None, name)


def diff(before: dict, after: dict, secret_keys: tuple[str, ...] = ()) -> dict:
    """{field: {"before": x, "after": y}} for the fields that changed; secrets masked."""
    if not before and not secret_keys:  # a creation (a batch makes 1,000): what has a value
        return {
            key: {"before": None, "after": after[key]}
            for key in sorted(after)
            if after[key] is not None
        }
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            if key in secret_keys:
                old = SECRET_MASK if old is not None else None
                new = SECRET_MASK if new is not None else None
            changes[key] = {"before": old, "after": new}
    return changes


def event(
    tenant_id: str,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    changes: dict | None = None,
) -> dict:
    """One audit event's row, to ``write`` (with others of the same change) or ``record``."""
    if resource_type not in RESOURCE_TYPES or actor.type not in ACTOR_TYPES:
        raise ValueError(f"unknown audit resource or actor type: {resource_type!r}, {actor.type!r}")
    in_request = has_request_context()
    return {
        "tenant_id": tenant_id,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_name": actor.name,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "changes": changes or {},
        "request_id": g.get("request_id") if in_request else None,
        "ip": request.remote_addr if in_request else None,
    }


def write(*events: dict, connection=None) -> None:
    """Write audit events into the current transaction (they commit or roll back with the
    change they describe), in the order given, as one statement.

    The session is flushed first, so the events are written after the change they describe and
    after any row they refer to. The events are one Core INSERT: nothing reads audit events
    back through the session that writes them, so the ORM's unit of work would only add cost on
    every write path.
    """
    if not events:
        return
    if connection is None:
        db.session.flush()
        connection = db.session.connection()
    if len(events) == 1:
        connection.execute(_INSERT, events[0])
        return
    ids = new_ids(len(events))  # at once (the column's default draws one a row)
    rows = [{"id": event_id, **event} for event_id, event in zip(ids, events, strict=True)]
    insert_rows(connection, AuditEvent.__table__, rows, arrays=False)


def record(
    tenant_id: str,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    changes: dict | None = None,
    connection=None,
) -> None:
    """Write one audit event into the current transaction (see ``write``), or into
    ``connection``'s when given (a write apart from the request's, e.g. a failed sign-in)."""
    write(
        event(tenant_id, actor, action, resource_type, resource_id, changes), connection=connection
    )


# The id and created_at come from the columns' Python defaults, as for an ORM insert.
_INSERT = insert(AuditEvent.__table__)
