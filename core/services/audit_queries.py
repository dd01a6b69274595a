"""Reading the audit log: the filters shared by ``GET /api/audit_events`` and the console page.

Both parse their query string through ``parse_audit_filters``: a bad value is a 400 in the API
and an inline message in the console, never a silently ignored filter.

- ``resource_type``: one of ``core.services.audit.RESOURCE_TYPES``.
- ``resource_id``, ``actor_id``: a UUID (an unknown one simply matches nothing).
- ``actor_type``: ``user``, ``api_key`` or ``system``.
- ``action``: ``<resource>.<verb>``, e.g. ``channel.update``.
- ``since`` / ``until``: RFC 3339 date-times with an offset (``2024-10-03T12:00:00Z``);
  ``since`` is inclusive, ``until`` exclusive (a half-open range), ``since`` <= ``until``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import Select, select

from core.errors import FieldErrors, ServiceError
from core.extensions import db
from core.models import ApiKey, AuditEvent, User
from core.services.audit import ACTOR_TYPES, RESOURCE_TYPES

ACTION = re.compile(r"^[a-z][a-z_]{0,31}\.[a-z][a-z_]{0,31}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")

EXAMPLE = "2024-10-03T12:00:00Z"


class BadAuditFilter(ServiceError):
    """A filter value that cannot be applied: 400 with the failing parameters in ``fields``."""

    status = 400
    code = "bad_request"


@dataclass(frozen=True)
class AuditFilters:
    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    actor_type: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def parse_rfc3339(value: str) -> datetime | None:
    """An aware UTC datetime from an RFC 3339 date-time, or None when it is not one."""
    if not RFC3339.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13
        return None
    return parsed.astimezone(UTC)


def _uuid(value: str) -> str | None:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError):
        return None
    return str(parsed) if len(value) == 36 else None


def parse_audit_filters(args: Mapping[str, str]) -> AuditFilters:
    """The filters in ``args`` (a query string); BadAuditFilter lists every bad one at once.

    Empty values mean "no filter", so that a plain GET form with blank fields works.
    """
    errors = FieldErrors()
    values: dict = {}

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value or None

    if (value := text("resource_type")) is not None:
        if value in RESOURCE_TYPES:
            values["resource_type"] = value
        else:
            errors.add("resource_type", f"Must be one of: {', '.join(RESOURCE_TYPES)}.")
    if (value := text("actor_type")) is not None:
        if value in ACTOR_TYPES:
            values["actor_type"] = value
        else:
            errors.add("actor_type", f"Must be one of: {', '.join(ACTOR_TYPES)}.")
    for name in ("resource_id", "actor_id"):
        if (value := text(name)) is not None:
            if (clean := _uuid(value.lower())) is None:
                errors.add(name, "Must be an id (a UUID).")
            else:
                values[name] = clean
    if (value := text("action")) is not None:
        if ACTION.match(value):
            values["action"] = value
        else:
            errors.add("action", "Must look like resource.verb, e.g. channel.update.")
    for name in ("since", "until"):
        if (value := text(name)) is not None:
            if (when := parse_rfc3339(value)) is None:
                errors.add(name, f"Must be an RFC 3339 date-time with an offset, e.g. {EXAMPLE}.")
            else:
                values[name] = when
    if values.get("since") and values.get("until") and values["since"] > values["until"]:
        errors.add("until", "Must not be earlier than since.")
    if errors:
        raise BadAuditFilter("A filter of the audit log is not valid.", errors.as_dict())
    return AuditFilters(**values)


def audit_event_query(tenant_id: str, filters: AuditFilters) -> Select:
    """The tenant's audit events matching ``filters`` (order and paging are the caller's)."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    for name in ("resource_type", "resource_id", "action", "actor_type", "actor_id"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(AuditEvent, name) == value)
    if filters.since is not None:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.created_at < filters.until)
    return query


# How many of the latest events the console's actor choices are read from (a bounded read).
AUDIT_ACTORS_RECENT = 5000


def audit_actors(tenant_id: str, recent: int | None = None) -> list[tuple[str, str | None, str]]:
    """The actors (type, id, name) the console offers as filter choices, by name.

    The tenant's admins and API keys (revoked ones too), whether or not they acted yet, and
    whoever acted in the tenant's latest ``recent`` events (``AUDIT_ACTORS_RECENT`` by default):
    support staff, removed admins, the system. A bounded read however long the log grows (a
    DISTINCT over the whole log would not be); an actor seen only in older events is not
    offered, but filtering by it still works.
    A current user or key is listed under its current name.
    """
    latest = (
        select(AuditEvent.actor_type, AuditEvent.actor_id, AuditEvent.actor_name)
        .where(AuditEvent.tenant_id == tenant_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(AUDIT_ACTORS_RECENT if recent is None else recent)
        .subquery()
    )
    actors: dict[tuple, tuple[str, str | None, str]] = {}
    for kind, actor_id, name in db.session.execute(select(latest).distinct()):
        actors[(kind, actor_id or name)] = (kind, actor_id, name)
    current = [
        ("user", select(User.id, User.email).where(User.tenant_id == tenant_id)),
        ("api_key", select(ApiKey.id, ApiKey.name).where(ApiKey.tenant_id == tenant_id)),
    ]
    for kind, query in current:
        for actor_id, name in db.session.execute(query):
            actors[(kind, actor_id)] = (kind, actor_id, name)
    return sorted(actors.values(), key=lambda a: (a[2].lower(), a[0], a[1] or ""))
