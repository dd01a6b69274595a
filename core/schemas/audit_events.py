"""Audit events (DESIGN §4): what changed, by whom, when, and from which request."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from core.schemas import Schema, declared, list_of
from core.schemas.values import Id, OptionalText, Timestamp, enum
from core.services.audit import ACTOR_TYPES, RESOURCE_TYPES


@declared
class AuditEventActor(Schema):
    """Who did it: a user, an API key, or the system."""

    type: Annotated[str, WithJsonSchema(enum(ACTOR_TYPES))]
    id: OptionalText
    name: str


@declared
class AuditEvent(Schema):
    """One change."""

    id: Id
    tenant_id: Id
    actor: AuditEventActor
    action: str
    resource_type: Annotated[str, WithJsonSchema(enum(RESOURCE_TYPES))]
    resource_id: OptionalText
    changes: Annotated[dict[str, Any], Field(description="Before/after per field; secrets masked.")]
    request_id: OptionalText
    ip: OptionalText
    created_at: Timestamp


AuditEventList = list_of(AuditEvent, "AuditEventList", "audit events")


def as_audit_event(event) -> AuditEvent:
    """The event's response model."""
    return AuditEvent.model_validate(
        {
            "id": event.id,
            "tenant_id": event.tenant_id,
            "actor": {"type": event.actor_type, "id": event.actor_id, "name": event.actor_name},
            "action": event.action,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "changes": event.changes or {},
            "request_id": event.request_id,
            "ip": event.ip,
            "created_at": event.created_at,
        }
    )
