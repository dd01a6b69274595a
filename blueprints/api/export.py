"""/api/channels/export: every channel of the tenant (the list's filters apply), streamed as
NDJSON (the default) or CSV (issue 16, DESIGN §10). The work is in
``core.services.channel_export``, shared with the console's "Download CSV".

``/channels/export`` is never a channel id: the ``channel_id`` converter of the API blueprint
leaves the collection's own words out (tests/api/test_export.py checks the routing)."""

from __future__ import annotations

from flask import g, request

from blueprints.api import bp, query_bool, query_choice
from core.extensions import db
from core.models import CHANNEL_STATUSES, CHANNEL_TYPES, Tenant
from core.openapi import QUERY_BOOLEAN, READ_ERRORS, Operation, documented, query, streamed
from core.schemas.values import enum
from core.services.channel_export import (
    CSV_HEADER,
    EXPORT_FORMATS,
    ExportFilters,
    export_response,
)

EXPORT = Operation(
    "exportChannels",
    "Export channels",
    "Channels",
    ok={
        200: streamed(
            "Every channel the filters keep, newest first, streamed. `ndjson`: one channel "
            "object a line (`Channel`). `csv`: a header line, then one channel a line.",
            {
                "application/x-ndjson": {"type": "string"},
                "text/csv": {"type": "string"},
            },
            ("Content-Disposition",),
        )
    },
    errors=READ_ERRORS,
    parameters=[
        query(
            "format",
            {**enum(EXPORT_FORMATS), "default": "ndjson"},
            "`ndjson` (the default): one channel object, as the API renders it, a line. `csv`: "
            f"the columns {', '.join(f'`{c}`' for c in CSV_HEADER)} (`metadata` as JSON; a "
            "cell a spreadsheet would run as a formula starts with an apostrophe).",
        ),
        query("channel_type", enum(CHANNEL_TYPES), "Only channels of this type."),
        query("status", enum(CHANNEL_STATUSES), "Only this status."),
        query("is_default", QUERY_BOOLEAN, "Only default (`true`) or other (`false`) channels."),
        query("q", {"type": "string"}, "Name contains (case-insensitive)."),
    ],
    description="Streams every channel of the tenant in constant memory, newest first (the "
    "list's order); channels created while the export runs are not in it. The filters are the "
    "list's. Read keys may export.",
)


@bp.get("/channels/export")
@documented(EXPORT)
def export_channels():
    """Stream the tenant's channels (the list's filters) as NDJSON or CSV."""
    export_format = query_choice("format", EXPORT_FORMATS) or "ndjson"
    filters = ExportFilters(
        channel_type=query_choice("channel_type", CHANNEL_TYPES),
        status=query_choice("status", CHANNEL_STATUSES),
        is_default=query_bool("is_default"),
        q=request.args.get("q"),
    )
    return export_response(db.session.get(Tenant, g.tenant_id), filters, export_format)
