"""Console page for the audit log (/audit) and the per-resource history on resource pages.

Filters (resource type, actor, action, resource id, date range) go through the same parser as
``GET /api/audit_events`` (``core.services.audit_queries``): a bad value shows an inline
message next to its field (400), never a silently ignored filter. Keyset pagination both ways,
like the channels table; htmx swaps only the results.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Optional

from blueprints.console import bp
from blueprints.console.context import current_tenant
from blueprints.console.responses import render_page
from core.db_types import rfc3339
from core.extensions import db
from core.models import AuditEvent
from core.pagination import Window, keyset_window
from core.services.audit import RESOURCE_TYPES
from core.services.audit_queries import (
    AuditFilters,
    BadAuditFilter,
    audit_actors,
    audit_event_query,
    parse_audit_filters,
)

RESOURCE_LABELS = {
    "api_key": "API key",
    "channel": "Channel",
    "email_domain": "Email domain",
    "import": "CSV import",
    "integration": "Integration",
    "phone_number": "Phone number",
    "webhook_endpoint": "Webhook endpoint",
    "tenant": "Tenant",
    "user": "User",
}
ACTOR_LABELS = {"user": "User", "api_key": "API key", "system": "System"}
SYSTEM_LABEL = "System (command line, automatic changes)"
HISTORY_SIZE = 20
# Which filter field of the form shows the parser's message for each query parameter.
FORM_FIELD_OF = {
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "action": "action",
    "actor_type": "actor",
    "actor_id": "actor",
    "since": "since",
    "until": "until",
}


class AuditFilterForm(FlaskForm):
    """The log's filters: a plain GET form (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    resource_type = SelectField(
        "Resource",
        choices=[SelectChoice("", "All resources")]
        + [SelectChoice(value, RESOURCE_LABELS[value]) for value in RESOURCE_TYPES],
        validate_choice=False,
    )
    actor = SelectField("Actor", choices=[SelectChoice("", "Anyone")], validate_choice=False)
    action = StringField("Action")
    resource_id = StringField("Resource id")
    since = DateField("From (UTC)", validators=[Optional()])
    until = DateField("To (UTC, inclusive)", validators=[Optional()])


def _actor_value(actor_type: str, actor_id: str | None) -> str:
    return f"{actor_type}:{actor_id or ''}"


def _actor_choices(tenant_id: str, selected: str = "") -> list[SelectChoice]:
    """Anyone, each user and API key (core.services.audit_queries.audit_actors says which), and
    "System" (the CLI and automatic changes such as a default handing over; they have no id,
    so they are one choice). An actor filtered by (from a link) but not among them, e.g. an admin
    removed long ago, is added by its id, so that the form shows what the page is filtered by."""
    choices = [SelectChoice("", "Anyone")]
    has_system = False
    for kind, actor_id, name in audit_actors(tenant_id):
        if kind == "system":
            has_system = True
        else:
            label = f"{name} ({ACTOR_LABELS.get(kind, kind)})"
            choices.append(SelectChoice(_actor_value(kind, actor_id), label))
    if has_system:
        choices.append(SelectChoice(_actor_value("system", None), SYSTEM_LABEL))
    kind, _, actor_id = selected.partition(":")
    if kind in ACTOR_LABELS and actor_id and selected not in {c.value for c in choices}:
        choices.append(SelectChoice(selected, f"{ACTOR_LABELS[kind]} {actor_id}"))
    return choices


def _filters(form: AuditFilterForm) -> AuditFilters | None:
    """The filters the form asks for; None (with messages on the fields) when one is bad."""
    form.validate()  # runs the date fields' parsing (their errors) — nothing else to check
    args = {
        "resource_type": form.resource_type.data or "",
        "action": (form.action.data or "").strip(),
        "resource_id": (form.resource_id.data or "").strip(),
    }
    actor = form.actor.data or ""
    if actor:
        actor_type, _, actor_id = actor.partition(":")
        args["actor_type"] = actor_type
        if actor_id or actor_type != "system":
            args["actor_id"] = actor_id
    # The date range covers whole days (UTC): from the first day's start to the end of the last.
    if isinstance(form.since.data, date):
        args["since"] = rfc3339(datetime.combine(form.since.data, time(), UTC))
    if isinstance(form.until.data, date):
        args["until"] = rfc3339(datetime.combine(form.until.data + timedelta(days=1), time(), UTC))
    if "since" in args and "until" in args and form.until.data < form.since.data:
        form.until.errors = list(form.until.errors) + ["Must not be before the From date."]
    try:
        filters = parse_audit_filters(args)
    except BadAuditFilter as exc:
        for name, messages in exc.fields.items():
            field = getattr(form, FORM_FIELD_OF[name])
            field.errors = list(field.errors) + list(messages)
        return None
    if form.since.errors or form.until.errors:
        return None
    return filters


@bp.get("/audit")
def audit_index():
    """The tenant's audit log, newest first, with filters and keyset pages (results for htmx)."""
    tenant = current_tenant()
    form = AuditFilterForm(request.args)
    form.actor.choices = _actor_choices(tenant.id, request.args.get("actor", "")[:100])
    filters = _filters(form)
    status = 200
    if filters is None:
        window, status = Window([], None, None), 400
    else:
        window = keyset_window(
            db.session,
            audit_event_query(tenant.id, filters),
            AuditEvent,
            current_app.config["PAGE_SIZE"],
            after=request.args.get("cursor") or None,
            before=request.args.get("before") or None,
        )
    kept = {k: v for k, v in request.args.items() if k not in ("cursor", "before") and v}
    return render_page(
        "audit/index.html",
        "audit/_results.html",
        status=status,
        form=form,
        window=window,
        filtered=filters is not None and not filters.is_empty(),
        bad_filters=filters is None,
        newer_url=url_for("console.audit_index", before=window.newer_cursor, **kept)
        if window.newer_cursor
        else None,
        older_url=url_for("console.audit_index", cursor=window.older_cursor, **kept)
        if window.older_cursor
        else None,
    )


@bp.app_template_global()
def audit_history(resource_type: str, resource_id: str) -> list[AuditEvent]:
    """The latest events about one resource of the current tenant (its page's history)."""
    tenant = current_tenant()
    query = audit_event_query(
        tenant.id, AuditFilters(resource_type=resource_type, resource_id=resource_id)
    )
    return list(
        db.session.scalars(
            query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(HISTORY_SIZE)
        )
    )


@bp.app_template_global()
def audit_resource_label(resource_type: str) -> str:
    """How a resource type reads in the console."""
    return RESOURCE_LABELS.get(resource_type, resource_type)


@bp.app_template_global()
def audit_actor_label(actor_type: str) -> str:
    """How an actor type reads in the console."""
    return ACTOR_LABELS.get(actor_type, actor_type)


@bp.app_template_global()
def audit_change(value) -> tuple[str, str] | str:
    """A change entry as (before, after) text, or as one text for notes such as ``reason``."""
    if isinstance(value, dict) and set(value) == {"before", "after"}:
        return audit_value(value["before"]), audit_value(value["after"])
    return audit_value(value)


def audit_value(value) -> str:
    """A before/after value as short text (None as an em dash)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
