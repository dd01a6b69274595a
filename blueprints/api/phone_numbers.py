"""/api/phone_numbers: numbers, their auto-created SMS channel, release and delete."""

from __future__ import annotations

from flask import g, request, url_for
from sqlalchemy import select

from blueprints.api import bp, handover_headers, json_body, query_limit, write_endpoint
from core.extensions import db
from core.models import Channel, PhoneNumber
from core.openapi import (
    BODY_ERRORS,
    CURSOR,
    ID_BODY_ERRORS,
    ID_DELETE_ERRORS,
    ID_READ_ERRORS,
    LIMIT,
    READ_ERRORS,
    body,
    documented,
    no_content,
    path_id,
)
from core.pagination import keyset_page
from core.serializers import phone_number_to_api
from core.services import phone_numbers as service


def _channel_ids(numbers: list[PhoneNumber]) -> dict[str, str]:
    """The oldest SMS channel of each number, in one query."""
    if not numbers:
        return {}
    rows = db.session.execute(
        select(Channel.phone_number_id, Channel.id)
        .where(Channel.phone_number_id.in_([n.id for n in numbers]))
        .order_by(Channel.created_at.desc(), Channel.id.desc())
    )
    return {number_id: channel_id for number_id, channel_id in rows}


@bp.post("/phone_numbers")
@documented(
    operation_id="createPhoneNumber",
    summary="Add a phone number",
    tag="Phone numbers",
    ok={
        201: body(
            "PhoneNumber",
            "The number was added; `channel_id` is its SMS channel.",
            ("Location",),
        )
    },
    errors=BODY_ERRORS,
    request_schema="PhoneNumberCreate",
)
@write_endpoint
def create_phone_number():
    """Add a number (201); its SMS channel is created unless create_channel is false."""
    outcome = service.add_phone_number(g.tenant_id, json_body(), g.actor)
    number = outcome.phone_number
    location = url_for("api.get_phone_number", phone_number_id=number.id)
    channel_id = outcome.channel.id if outcome.channel else None
    return phone_number_to_api(number, channel_id), 201, {"Location": location}


@bp.get("/phone_numbers")
@documented(
    operation_id="listPhoneNumbers",
    summary="List phone numbers",
    tag="Phone numbers",
    ok={200: body("PhoneNumberList", "One page of numbers, newest first.")},
    errors=READ_ERRORS,
    parameters=[LIMIT, CURSOR],
)
def list_phone_numbers():
    """List the tenant's numbers, newest first."""
    query = select(PhoneNumber).where(PhoneNumber.tenant_id == g.tenant_id)
    rows, next_cursor = keyset_page(
        db.session, query, PhoneNumber, query_limit(), request.args.get("cursor")
    )
    channel_ids = _channel_ids(rows)
    return {
        "data": [phone_number_to_api(n, channel_ids.get(n.id)) for n in rows],
        "next_cursor": next_cursor,
    }


@bp.get("/phone_numbers/<phone_number_id>")
@documented(
    operation_id="getPhoneNumber",
    summary="Get a phone number",
    tag="Phone numbers",
    ok={200: body("PhoneNumber")},
    errors=ID_READ_ERRORS,
    parameters=[path_id("phone_number_id", "phone number")],
)
def get_phone_number(phone_number_id):
    """One number, with the id of its SMS channel."""
    number = service.get_phone_number(g.tenant_id, phone_number_id)
    return phone_number_to_api(number, _channel_ids([number]).get(number.id))


@bp.post("/phone_numbers/<phone_number_id>/release")
@documented(
    operation_id="releasePhoneNumber",
    summary="Release a phone number",
    tag="Phone numbers",
    ok={200: body("PhoneNumber", "The released number.", ("Default-Handover",))},
    errors=ID_BODY_ERRORS,
    parameters=[path_id("phone_number_id", "phone number")],
    body_optional=True,
    description="The number stays listed as `released`; its channels are disabled.",
)
@write_endpoint
def release_phone_number(phone_number_id):
    """Release the number: it stays listed as released and its channels are disabled."""
    json_body(required=False)
    number, outcomes = service.release_phone_number(g.tenant_id, phone_number_id, g.actor)
    return (
        phone_number_to_api(number, _channel_ids([number]).get(number.id)),
        200,
        handover_headers(outcomes),
    )


@bp.delete("/phone_numbers/<phone_number_id>")
@documented(
    operation_id="deletePhoneNumber",
    summary="Delete a phone number",
    tag="Phone numbers",
    ok={204: no_content("Deleted.")},
    errors=ID_DELETE_ERRORS,
    parameters=[path_id("phone_number_id", "phone number")],
    description="409 while channels use it; the message names them.",
)
@write_endpoint
def delete_phone_number(phone_number_id):
    """Delete (204); 409 naming the channels that still use it."""
    service.delete_phone_number(g.tenant_id, phone_number_id, g.actor)
    return None, 204
