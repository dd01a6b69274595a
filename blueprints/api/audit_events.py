"""/api/audit_events: the tenant's audit log, newest first, with filters (400 on bad values)."""

from __future__ import annotations

from flask import g, request

from blueprints.api import bp, query_limit
from core.extensions import db
from core.models import AuditEvent
from core.pagination import keyset_page
from core.serializers import audit_event_to_api
from core.services.audit_queries import audit_event_query, parse_audit_filters


@bp.get("/audit_events")
def list_audit_events():
    """List audit events; filters resource_type, resource_id, action, actor_type, actor_id,
    since (inclusive) and until (exclusive) as RFC 3339."""
    filters = parse_audit_filters(request.args)
    query = audit_event_query(g.tenant_id, filters)
    rows, next_cursor = keyset_page(
        db.session, query, AuditEvent, query_limit(), request.args.get("cursor")
    )
    return {"data": [audit_event_to_api(e) for e in rows], "next_cursor": next_cursor}
