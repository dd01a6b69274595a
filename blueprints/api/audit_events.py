"""/api/audit_events: the tenant's audit log, newest first."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from blueprints.api import bp, query_limit
from core.extensions import db
from core.models import AuditEvent
from core.pagination import keyset_page
from core.serializers import audit_event_to_api


@bp.get("/audit_events")
def list_audit_events():
    """List audit events, filtered by resource_type, resource_id and action."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == g.tenant_id)
    for name in ("resource_type", "resource_id", "action"):
        value = request.args.get(name)
        if value:
            query = query.where(getattr(AuditEvent, name) == value[:64])
    rows, next_cursor = keyset_page(db.session, query, AuditEvent, query_limit(), request.args.get("cursor"))
    return {"data": [audit_event_to_api(e) for e in rows], "next_cursor": next_cursor}
