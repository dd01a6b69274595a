"""Console pages for webhooks: endpoints (create with the secret shown once, edit, enable or
disable, rotate the secret, delete), the delivery log with each payload, "Send test event" and
"Retry". Writes go through ``core.services.webhooks`` inside ``writes.console_write``; the form
is parsed by the same pydantic declarations as the API (``core.schemas.webhooks``).
"""

from __future__ import annotations

import json

from flask import flash, make_response, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.responses import redirect_back, render_page, see_other
from blueprints.console.writes import console_write
from core.events import EVENT_TYPES, WILDCARD, body_of
from core.extensions import db
from core.models import WebhookDelivery, WebhookEndpoint
from core.schemas import parse_body
from core.schemas.webhooks import WebhookEndpointCreate, WebhookEndpointUpdate
from core.services import webhooks as service
from core.tenancy import get_for_tenant

DELIVERIES_SHOWN = 50  # the latest; the API pages through all of them
EVENT_LABELS = {WILDCARD: "Every event (*)", **{t: t for t in EVENT_TYPES}}


class WebhookEndpointForm(FlaskForm):
    """URL, description, subscribed events (and status when editing)."""

    url = StringField("URL")
    description = StringField("Description")
    events = SelectMultipleField(
        "Events",
        choices=[SelectChoice(value, label) for value, label in EVENT_LABELS.items()],
        default=[WILDCARD],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    status = SelectField(
        "Status",
        choices=[SelectChoice("enabled", "Enabled"), SelectChoice("disabled", "Disabled")],
        validate_choice=False,
    )

    def api_data(self, with_status: bool) -> dict:
        """What the API receives for the same change."""
        data = {
            "url": (self.url.data or "").strip(),
            "events": list(self.events.data or []),
            "description": (self.description.data or "").strip(),
        }
        if with_status:
            data["status"] = self.status.data
        return data


def _endpoints(tenant_id: str) -> list[WebhookEndpoint]:
    return db.session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    ).all()


def _no_store(response):
    """A page holding a secret is never cached or stored."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _index(form: WebhookEndpointForm, created=None, secret=None, status: int = 200):
    """The endpoints page (with a new endpoint's secret, once)."""
    tenant = current_tenant()
    response = make_response(
        render_page(
            "webhooks/index.html",
            form=form,
            endpoints=_endpoints(tenant.id),
            created=created,
            secret=secret,
            status=status,
        )
    )
    return _no_store(response) if secret else response


@bp.get("/webhooks")
def webhooks_index():
    """The tenant's webhook endpoints and the form to add one."""
    return _index(WebhookEndpointForm(formdata=None))


@bp.post("/webhooks")
@requires_write
def webhooks_create():
    """Add an endpoint; the answer shows its signing secret once."""
    tenant = current_tenant()
    form = WebhookEndpointForm()
    with console_write(form) as write:
        data = parse_body(
            WebhookEndpointCreate,
            form.api_data(with_status=False),
            "The webhook endpoint could not be created.",
        )
        endpoint, secret = service.create_endpoint(tenant.id, data, current_actor())
    if write.failed:
        return _index(form, status=write.status)
    return _index(WebhookEndpointForm(formdata=None), created=endpoint, secret=secret)


def _deliveries(endpoint: WebhookEndpoint) -> list[tuple[WebhookDelivery, str]]:
    """The latest deliveries with each payload as pretty JSON (the payload viewer)."""
    rows = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(DELIVERIES_SHOWN)
    ).all()
    return [(row, json.dumps(body_of(row.event), indent=2, ensure_ascii=False)) for row in rows]


def _show(endpoint: WebhookEndpoint, form=None, secret=None, status: int = 200):
    """One endpoint: its settings form, notices, actions and delivery log."""
    if form is None:
        form = WebhookEndpointForm(formdata=None, obj=endpoint)
    response = make_response(
        render_template(
            "webhooks/show.html",
            endpoint=endpoint,
            form=form,
            deliveries=_deliveries(endpoint),
            secret=secret,
        ),
        status,
    )
    return _no_store(response) if secret else response


@bp.get("/webhooks/<endpoint_id>")
def webhooks_show(endpoint_id):
    """An endpoint's settings and delivery log."""
    tenant = current_tenant()
    return _show(get_for_tenant(WebhookEndpoint, tenant.id, endpoint_id))


@bp.post("/webhooks/<endpoint_id>")
@requires_write
def webhooks_update(endpoint_id):
    """Save url, description, events and status (enabling retries what is pending)."""
    tenant = current_tenant()
    endpoint = get_for_tenant(WebhookEndpoint, tenant.id, endpoint_id)
    form = WebhookEndpointForm()
    with console_write(form) as write:
        data = parse_body(
            WebhookEndpointUpdate,
            form.api_data(with_status=True),
            "The webhook endpoint could not be updated.",
        )
        service.update_endpoint(tenant.id, endpoint.id, data, current_actor())
    if write.failed:
        return _show(endpoint, form, status=write.status)
    flash("The endpoint was saved.", "success")
    return see_other(url_for("console.webhooks_show", endpoint_id=endpoint.id))


@bp.post("/webhooks/<endpoint_id>/test")
@requires_write
def webhooks_test(endpoint_id):
    """Queue a webhook.test event for this endpoint; its delivery appears in the log."""
    tenant = current_tenant()
    with console_write() as write:
        service.send_test(tenant.id, endpoint_id, current_actor())
    if not write.failed:
        flash("A test event is on its way: see the delivery log below.", "success")
    return see_other(url_for("console.webhooks_show", endpoint_id=endpoint_id))


@bp.post("/webhooks/<endpoint_id>/rotate")
@requires_write
def webhooks_rotate(endpoint_id):
    """A new secret, shown once on the answer; the old one signs too for 24 hours."""
    tenant = current_tenant()
    with console_write():
        endpoint, secret = service.rotate_secret(tenant.id, endpoint_id, current_actor())
    return _show(endpoint, secret=secret)


@bp.post("/webhooks/deliveries/<delivery_id>/retry")
@requires_write
def webhooks_retry(delivery_id):
    """Send a delivery again now (same webhook-id)."""
    tenant = current_tenant()
    delivery = get_for_tenant(WebhookDelivery, tenant.id, delivery_id)
    with console_write() as write:
        service.retry_delivery(tenant.id, delivery.id, current_actor())
    if not write.failed:
        flash(f"The {delivery.event.type} event will be sent again now.", "success")
    return see_other(url_for("console.webhooks_show", endpoint_id=delivery.endpoint_id))


@bp.get("/webhooks/<endpoint_id>/delete")
@requires_write
def webhooks_confirm_delete(endpoint_id):
    """Deleting asks for confirmation here."""
    tenant = current_tenant()
    endpoint = get_for_tenant(WebhookEndpoint, tenant.id, endpoint_id)
    return render_template("webhooks/delete.html", endpoint=endpoint)


@bp.post("/webhooks/<endpoint_id>/delete")
@requires_write
def webhooks_delete(endpoint_id):
    """Delete the endpoint and its delivery log; back to the list (303)."""
    tenant = current_tenant()
    with console_write():
        service.delete_endpoint(tenant.id, endpoint_id, current_actor())
    flash("The endpoint was deleted.", "success")
    return redirect_back(url_for("console.webhooks_index"))
