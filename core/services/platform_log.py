"""The platform log (DESIGN §7): what support staff do as themselves, outside any tenant.

Support staff belong to no tenant, so their authentication events (signed in, sign-in failed
and why, locked out, signed out, session expired or revoked, password changed, account created)
and their access to tenants (opened with a reason, access expired) cannot go to a tenant's audit
log. They are written here, in the same transaction as the change they describe, and also as a
line of the ``channels.auth`` app logger (for log shippers). Opening a tenant is recorded in
that tenant's audit log as well (``core.services.accounts.open_tenant_as_support``).

Support staff read the log in the console (``/platform-log``) and operators with
``flask --app app platform-log``. No secret is ever written: passwords appear only as the mask.
"""

from __future__ import annotations

import logging

from flask import g, has_request_context, request
from sqlalchemy import Select, insert, select

from core.extensions import db
from core.models import PlatformEvent
from core.services.audit import ACTOR_TYPES, Actor

auth_log = logging.getLogger("channels.auth")
# What a platform event can be about.
RESOURCE_TYPES = ("user", "tenant")
_INSERT = insert(PlatformEvent.__table__)


def event_values(
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    changes: dict | None = None,
) -> dict:
    """The row of a platform event (id and created_at come from the columns' defaults)."""
    if resource_type not in RESOURCE_TYPES or actor.type not in ACTOR_TYPES:
        raise ValueError(f"unknown platform resource or actor type: {resource_type!r}")
    in_request = has_request_context()
    return {
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


def log_line(values: dict, subject: str | None = None) -> None:
    """The app log's line of a platform event (``subject``: the resource's name, e.g. the
    user's email)."""
    auth_log.info(
        "%s %s=%s (%s) by %s %s",
        values["action"],
        values["resource_type"],
        subject or values["resource_id"],
        values["resource_id"],
        values["actor_name"],
        values["changes"],
    )


def record(
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    changes: dict | None = None,
    connection=None,
    subject: str | None = None,
) -> None:
    """Write a platform event into the current transaction (or ``connection``'s), and log it
    (``subject`` names the resource in the log line)."""
    values = event_values(actor, action, resource_type, resource_id, changes)
    if connection is None:
        db.session.flush()
        connection = db.session.connection()
    connection.execute(_INSERT, values)
    log_line(values, subject)


def events_query() -> Select:
    """Every platform event (order and paging are the caller's)."""
    return select(PlatformEvent)


def latest_events(limit: int) -> list[PlatformEvent]:
    """The ``limit`` latest platform events, newest first."""
    return list(
        db.session.scalars(
            events_query()
            .order_by(PlatformEvent.created_at.desc(), PlatformEvent.id.desc())
            .limit(limit)
        )
    )
