"""/api/audit_events: the tenant's audit log, newest first, with filters (400 on bad values)."""

from __future__ import annotations

from flask import g, request

from blueprints.api import bp, query_limit
from core.extensions import db
from core.models import AuditEvent
from core.openapi import CURSOR, LIMIT, READ_ERRORS, blank_or, body, documented, query
from core.pagination import keyset_page
from core.schemas import render_page
from core.schemas.audit_events import AuditEventList
from core.schemas.values import enum
from core.serializers import audit_event_to_api
from core.services.audit import ACTOR_TYPES, RESOURCE_TYPES
from core.services.audit_queries import ACTION, audit_event_query, parse_audit_filters


@bp.get("/audit_events")
@documented(
    operation_id="listAuditEvents",
    summary="List audit events",
    tag="Audit log",
    ok={200: body(AuditEventList, "One page of audit events, newest first.")},
    errors=READ_ERRORS,
    parameters=[
        query(
            "resource_type",
            blank_or(enum(RESOURCE_TYPES)),
            "Only events about this resource type.",
        ),
        query(
            "resource_id",
            blank_or({"type": "string", "format": "uuid"}),
            "Only events about this resource.",
        ),
        query(
            "action",
            blank_or({"type": "string", "pattern": ACTION.pattern}),
            "Only this action, e.g. `channel.create`.",
        ),
        query(
            "actor_type",
            blank_or(enum(ACTOR_TYPES)),
            "Only events by this kind of actor.",
        ),
        query(
            "actor_id",
            blank_or({"type": "string", "format": "uuid"}),
            "Only events by this user or API key.",
        ),
        query(
            "since",
            blank_or({"type": "string", "format": "date-time"}),
            "Only events at or after this RFC 3339 time, with an offset "
            "(e.g. `2024-10-03T12:00:00Z`).",
        ),
        query(
            "until",
            blank_or({"type": "string", "format": "date-time"}),
            "Only events before this RFC 3339 time (exclusive; not earlier than `since`).",
        ),
        LIMIT,
        CURSOR,
    ],
    description="A malformed filter value is a 400 whose `fields` name the parameter.",
)
def list_audit_events():
    """List audit events; filters resource_type, resource_id, action, actor_type, actor_id,
    since (inclusive) and until (exclusive) as RFC 3339."""
    filters = parse_audit_filters(request.args)
    query = audit_event_query(g.tenant_id, filters)
    rows, next_cursor = keyset_page(
        db.session, query, AuditEvent, query_limit(), request.args.get("cursor")
    )
    return render_page(AuditEventList, [audit_event_to_api(e) for e in rows], next_cursor)
