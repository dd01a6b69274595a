"""/api/phone_numbers: numbers, their auto-created SMS channel, release and delete."""

from __future__ import annotations

from flask import g, request, url_for
from sqlalchemy import select

from blueprints.api import bp, handover_headers, json_body, query_limit, write_endpoint
from core.conditional import conditional, etag_header
from core.extensions import db
from core.models import PhoneNumber
from core.openapi import ResourceDocs, documented
from core.pagination import keyset_page
from core.schemas import phone_numbers as shapes
from core.schemas import render_page
from core.serializers import phone_number_to_api
from core.services import phone_numbers as service
from core.tenancy import get_for_tenant

PHONE_NUMBERS = ResourceDocs(
    "Phone numbers",
    shapes.PhoneNumber,
    "phone number",
    "numbers",
    "phone_number_id",
    list_schema=shapes.PhoneNumberList,
)


@bp.post("/phone_numbers")
@documented(
    PHONE_NUMBERS.creating(
        "createPhoneNumber",
        "Add a phone number",
        "The number was added; `channel_id` is its SMS channel.",
        request_schema=shapes.PhoneNumberCreate,
    )
)
@write_endpoint
@conditional(PhoneNumber)
def create_phone_number():
    """Add a number (201); its SMS channel is created unless create_channel is false."""
    outcome = service.add_phone_number(g.tenant_id, json_body(), g.actor)
    number = outcome.phone_number
    location = url_for("api.get_phone_number", phone_number_id=number.id)
    channel_id = outcome.channel.id if outcome.channel else None
    headers = {"Location": location, **etag_header(number, channel_id)}
    return phone_number_to_api(number, channel_id), 201, headers


@bp.get("/phone_numbers")
@documented(PHONE_NUMBERS.listing("listPhoneNumbers", "List phone numbers"))
def list_phone_numbers():
    """List the tenant's numbers, newest first."""
    query = select(PhoneNumber).where(PhoneNumber.tenant_id == g.tenant_id)
    rows, next_cursor = keyset_page(
        db.session, query, PhoneNumber, query_limit(), request.args.get("cursor")
    )
    channel_ids = service.channel_ids(rows)
    return render_page(
        shapes.PhoneNumberList,
        [phone_number_to_api(n, channel_ids.get(n.id)) for n in rows],
        next_cursor,
    )


@bp.get("/phone_numbers/<phone_number_id>")
@documented(PHONE_NUMBERS.reading("getPhoneNumber", "Get a phone number"))
@conditional(PhoneNumber, "phone_number_id")
def get_phone_number(phone_number_id):
    """One number, with the id of its SMS channel and its ETag (304 when If-None-Match names it)."""
    number = get_for_tenant(PhoneNumber, g.tenant_id, phone_number_id)
    channel_id = service.channel_ids([number]).get(number.id)
    return phone_number_to_api(number, channel_id), 200, etag_header(number, channel_id)


@bp.post("/phone_numbers/<phone_number_id>/release")
@documented(
    PHONE_NUMBERS.changing(
        "releasePhoneNumber",
        "Release a phone number",
        "The released number.",
        ("Default-Handover",),
        body_optional=True,
        description="The number stays listed as `released`; its channels are disabled.",
    )
)
@write_endpoint
def release_phone_number(phone_number_id):
    """Release the number: it stays listed as released and its channels are disabled."""
    json_body(required=False)
    number, outcomes = service.release_phone_number(g.tenant_id, phone_number_id, g.actor)
    return (
        phone_number_to_api(number, service.channel_ids([number]).get(number.id)),
        200,
        handover_headers(outcomes),
    )


@bp.delete("/phone_numbers/<phone_number_id>")
@documented(
    PHONE_NUMBERS.deleting(
        "deletePhoneNumber",
        "Delete a phone number",
        description="409 while channels use it; the message names them.",
    )
)
@write_endpoint
@conditional(PhoneNumber, "phone_number_id")
def delete_phone_number(phone_number_id):
    """Delete (204); 409 naming the channels that still use it."""
    service.delete_phone_number(g.tenant_id, phone_number_id, g.actor)
    return None, 204
