"""/api/channels/bulk and /api/phone_numbers/bulk (DESIGN §10): up to 1,000 items a request.

Thin like the other routes: read the body by its declared model, call ``core.services.bulk``,
render. ``?dry_run=true`` and ``Idempotency-Key`` work as for a single create (the latter through
``write_endpoint``); the body may be up to ``BULK_MAX_BODY_BYTES``.
"""

from __future__ import annotations

from functools import wraps

from flask import g, make_response, request

from blueprints.api import bp, json_body, query_bool, write_endpoint
from core.http import BULK_MAX_BODY_BYTES
from core.openapi import QUERY_BOOLEAN, Operation, body, query
from core.openapi import documented as document
from core.schemas import bulk as shapes
from core.schemas import parse_body
from core.schemas.errors import ErrorDetail
from core.serializers import channel_to_api
from core.services import bulk as service
from core.services.bulk import ItemResult

DRY_RUN = query(
    "dry_run",
    QUERY_BOOLEAN,
    "`true` runs every rule on every item and saves nothing (200).",
)
BULK_ERRORS = (400, 401, 403, 409, 413, 415, 422, 429, 500, 503)


def bulk_route(rule: str):
    """A POST-only route whose body may be up to BULK_MAX_BODY_BYTES (the API's limit is
    64 KiB). It answers OPTIONS itself: Werkzeug's automatic answer would also list the methods
    of ``/channels/<channel_id>``, which the path matches too (``bulk`` as an id)."""

    def register(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if request.method == "OPTIONS":
                response = make_response("", 200)
                response.headers["Allow"] = "OPTIONS, POST"
                return response
            request.max_content_length = BULK_MAX_BODY_BYTES
            return view(*args, **kwargs)

        return bp.route(rule, methods=["POST", "OPTIONS"], provide_automatic_options=False)(wrapper)

    return register


def _results(results: list[ItemResult], key: str, dry_run: bool, render_preview) -> dict:
    """A non-atomic batch's body: one result per item, in order."""
    rendered = []
    for result in results:
        if result.ok:
            rendered.append(
                {
                    "index": result.index,
                    "status": 200 if dry_run else 201,
                    key: render_preview(result) if dry_run else result.rendered,
                }
            )
        else:
            error = ErrorDetail(
                code="validation_error", message=result.message, fields=result.errors
            )
            rendered.append(
                {"index": result.index, "status": 422, "error": error.model_dump(mode="json")}
            )
    return {"results": rendered}


@bulk_route("/channels/bulk")
@document(
    Operation(
        "createChannels",
        "Create channels in bulk",
        "Bulk",
        ok={
            201: body(shapes.ChannelBatch, "`atomic` (default): every channel was created."),
            200: body(
                shapes.ChannelBatchOutcome,
                "`atomic: false`: one result per item (`results`); or `dry_run=true` of an "
                "atomic batch: the channels it would create (`data`).",
            ),
        },
        errors=BULK_ERRORS,
        parameters=[DRY_RUN],
        request_schema=shapes.ChannelBatchCreate,
        description="Up to 1,000 channels, each judged by the rules of a single create and "
        "against the earlier items (a name repeated in the batch, two defaults of one type). "
        "Atomic batches are all or nothing: the 422 lists every refused item's fields as "
        "`channels.<index>.<field>`. Defaults are applied in order as for single creates.",
    )
)
@write_endpoint
def create_channels():
    """Create up to 1,000 channels: atomic (201 / 422) or item by item (200 with results)."""
    dry_run = query_bool("dry_run", False)
    batch = parse_body(shapes.ChannelBatchCreate, json_body(), "The channels could not be created.")
    results = service.create_channels(
        g.tenant_id, batch.channels, g.actor, atomic=batch.atomic, dry_run=dry_run
    )
    if not batch.atomic:
        return _results(results, "channel", dry_run, lambda r: r.rendered), 200
    return {"data": [r.rendered for r in results]}, 200 if dry_run else 201


def _number_preview(result: ItemResult) -> dict:
    """A number a dry run would add, with the SMS channel it would get."""
    number = result.phone_number
    return {
        "phone_number": number.phone_number,
        "integration_id": number.integration_id,
        "capabilities": list(number.capabilities),
        "status": "active",
        "channel": channel_to_api(result.channel) if result.channel is not None else None,
    }


@bulk_route("/phone_numbers/bulk")
@document(
    Operation(
        "createPhoneNumbers",
        "Add phone numbers in bulk",
        "Bulk",
        ok={
            201: body(shapes.PhoneNumberBatch, "`atomic` (default): every number was added."),
            200: body(
                shapes.PhoneNumberBatchOutcome,
                "`atomic: false`: one result per item (`results`); or `dry_run=true` of an "
                "atomic batch: the numbers it would add (`data`).",
            ),
        },
        errors=BULK_ERRORS,
        parameters=[DRY_RUN],
        request_schema=shapes.PhoneNumberBatchCreate,
        description="Up to 1,000 numbers, each judged by the rules of a single add and against "
        "the earlier items (the same number twice); each SMS-capable number gets its SMS "
        "channel unless `create_channel` is false. Atomic batches are all or nothing: the 422 "
        "lists every refused item's fields as `phone_numbers.<index>.<field>`.",
    )
)
@write_endpoint
def create_phone_numbers():
    """Add up to 1,000 numbers: atomic (201 / 422) or item by item (200 with results)."""
    dry_run = query_bool("dry_run", False)
    batch = parse_body(
        shapes.PhoneNumberBatchCreate, json_body(), "The phone numbers could not be added."
    )
    results = service.add_phone_numbers(
        g.tenant_id, batch.phone_numbers, g.actor, atomic=batch.atomic, dry_run=dry_run
    )
    if not batch.atomic:
        return _results(results, "phone_number", dry_run, _number_preview), 200
    if dry_run:
        return {"data": [_number_preview(r) for r in results]}, 200
    return {"data": [r.rendered for r in results]}, 201
