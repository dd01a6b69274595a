"""/api/channels: create (with dry_run), list, get, patch, delete."""

from __future__ import annotations

from flask import g, request, url_for

from blueprints.api import (
    bp,
    handover_headers,
    json_body,
    query_bool,
    query_choice,
    query_limit,
    write_endpoint,
)
from core.conditional import conditional, etag_header
from core.models import CHANNEL_STATUSES, CHANNEL_TYPES, Channel
from core.openapi import QUERY_BOOLEAN, ResourceDocs, body, documented, query
from core.schemas import channels as shapes
from core.schemas import parse_body, render, render_page
from core.schemas.channels import SEED_CHANNEL_EXAMPLES, SEED_CREATE_EXAMPLES
from core.schemas.values import enum
from core.serializers import channel_row_to_api, channel_to_api
from core.services import channels as service
from core.services.channel_queries import api_channel_page, channel_row
from core.services.test_send import send_test_message

CHANNELS = ResourceDocs(
    "Channels",
    shapes.Channel,
    "channel",
    "channels",
    "channel_id",
    list_schema=shapes.ChannelList,
)


@bp.post("/channels")
@documented(
    CHANNELS.creating(
        "createChannel",
        "Create a channel",
        "The channel was created.",
        examples=SEED_CHANNEL_EXAMPLES,
        ok={200: body(shapes.ChannelPreview, "`dry_run=true`: the channel that would be created.")},
        parameters=[
            query(
                "dry_run",
                QUERY_BOOLEAN,
                "`true` runs every rule and saves nothing: 200 with the channel it would create.",
            )
        ],
        request_schema=shapes.ChannelCreate,
        request_examples=SEED_CREATE_EXAMPLES,
        description="When `is_default` is omitted and the tenant has no default channel of the "
        "type, the new channel becomes the default.",
    )
)
@write_endpoint
@conditional(Channel)
def create_channel():
    """Create a channel (201), or with ?dry_run=true check it and save nothing (200)."""
    dry_run = query_bool("dry_run", False)
    outcome = service.create_channel(g.tenant_id, json_body(), g.actor, dry_run=dry_run)
    if dry_run:
        return channel_to_api(outcome.channel), 200
    channel = outcome.channel
    return (
        outcome.rendered,
        201,
        {"Location": url_for("api.get_channel", channel_id=channel.id), **etag_header(channel)},
    )


@bp.get("/channels")
@documented(
    CHANNELS.listing(
        "listChannels",
        "List channels",
        query("channel_type", enum(CHANNEL_TYPES), "Only channels of this type."),
        query("status", enum(CHANNEL_STATUSES), "Only this status."),
        query("is_default", QUERY_BOOLEAN, "Only default (`true`) or other (`false`) channels."),
        query("q", {"type": "string"}, "Name contains (case-insensitive)."),
    )
)
def list_channels():
    """List the tenant's channels, newest first, with filters and a cursor."""
    # What the API renders, as rows (no ORM objects nor joins), by one prebuilt statement.
    rows, next_cursor = api_channel_page(
        g.tenant_id,
        query_limit(),
        request.args.get("cursor"),
        channel_type=query_choice("channel_type", CHANNEL_TYPES),
        status=query_choice("status", CHANNEL_STATUSES),
        is_default=query_bool("is_default"),
        q=request.args.get("q"),
    )
    return render_page(shapes.ChannelList, [channel_row_to_api(c) for c in rows], next_cursor)


@bp.get("/channels/<channel_id:channel_id>")
@documented(CHANNELS.reading("getChannel", "Get a channel"))
@conditional(Channel, "channel_id")
def get_channel(channel_id):
    """One channel of the tenant, with its ETag (304 when If-None-Match names it)."""
    row = channel_row(g.tenant_id, channel_id)
    return channel_row_to_api(row), 200, etag_header(row, model=Channel)


@bp.patch("/channels/<channel_id:channel_id>")
@documented(
    CHANNELS.changing(
        "updateChannel",
        "Update a channel",
        "The updated channel.",
        ("Default-Handover",),
        request_schema=shapes.ChannelUpdate,
        description="A partial update. Disabling the default channel hands the default over to "
        "the oldest other available channel of the type, named in `Default-Handover`.",
    )
)
@write_endpoint
@conditional(Channel, "channel_id")
def update_channel(channel_id):
    """Partial update; disabling the default names its successor in Default-Handover."""
    outcome = service.update_channel(g.tenant_id, channel_id, json_body(), g.actor)
    headers = {**handover_headers([outcome]), **etag_header(outcome.channel)}
    return channel_to_api(outcome.channel), 200, headers


@bp.delete("/channels/<channel_id:channel_id>")
@documented(CHANNELS.deleting("deleteChannel", "Delete a channel", ("Default-Handover",)))
@write_endpoint
@conditional(Channel, "channel_id")
def delete_channel(channel_id):
    """Delete (204); deleting the default names its successor in Default-Handover."""
    outcome = service.delete_channel(g.tenant_id, channel_id, g.actor)
    return None, 204, handover_headers([outcome])


@bp.post("/channels/<channel_id:channel_id>/test")
@documented(
    CHANNELS.changing(
        "testChannel",
        "Send a test message",
        "What the provider answered (also when it refused).",
        answer_schema=shapes.TestMessageResult,
        request_schema=shapes.TestMessageRequest,
        description="Sends one real message through the channel's provider. Only an `available` "
        "channel sends; others answer 409.",
    )
)
@write_endpoint
def test_channel(channel_id):
    """Send a test message to ``to``; 200 with {"ok", "message"} whatever the provider said."""
    request = parse_body(
        shapes.TestMessageRequest, json_body(), "The test message could not be sent."
    )
    result = send_test_message(g.tenant_id, channel_id, request.to, g.actor)
    return render(shapes.TestMessageResult(ok=result.ok, message=result.message)), 200
