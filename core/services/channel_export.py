"""Export of a tenant's channels (issue 16, DESIGN §10): every channel the list's filters keep,
as NDJSON (one API object a line) or CSV, streamed in constant memory.

One place for the API (``GET /api/channels/export``) and the console's "Download CSV":

- ``export_rows`` walks the filtered channels newest first, as the list does, by keyset over
  (created_at, id) in chunks of ``EXPORT_CHUNK`` rows: one bounded query per chunk, never one
  giant fetch, so memory stays the same at ten thousand rows and at a million. Between chunks
  the read transaction ends (SQLite's WAL can checkpoint, PostgreSQL keeps no old snapshot); the
  keyset makes that safe: a channel created meanwhile is newer than the first row and is not
  exported, a deleted one is simply missing, none appears twice.
- Rows are fetched as plain column tuples (no ORM objects, no joins) of the API's own columns
  (``channel_queries.API_COLUMNS``, what GET /api/channels selects) and rendered by
  ``channel_to_api`` itself (the declared model ``core.schemas.channels``: its fields, order and
  serializers): a line is the object the API answers; tests/api/test_export.py compares them
  for every channel. The CSV's columns are the declared models' fields (``CSV_HEADER``).
- Every CSV cell goes through ``core.csv_cells`` (formula escaping).
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, stream_with_context
from sqlalchemy import Select, tuple_

from core.csv_cells import csv_block, csv_line
from core.extensions import db
from core.models import Channel
from core.schemas.channels import CHANNEL_MODELS
from core.serializers import channel_to_api
from core.services.channel_queries import API_COLUMNS, channel_list_query

EXPORT_CHUNK = 1000  # rows per query (and per write to the client)
EXPORT_FORMATS = ("ndjson", "csv")
EXPORT_MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _csv_header() -> tuple[str, ...]:
    """The CSV's columns: every field of the declared channel models (``CHANNEL_MODELS``), each
    type's in its model's order (a type's own address fields stand where its model has them,
    after the previous type's), less ``tenant_id``, which is the caller's own; the other type's
    address fields are empty cells."""
    names: list[str] = []
    for model in CHANNEL_MODELS.values():
        new: list[str] = []
        for name in model.model_fields:
            if name in names:
                at = names.index(name)
                names[at:at] = new
                new = []
            else:
                new.append(name)
        names += new
    return tuple(name for name in names if name != "tenant_id")


CSV_HEADER = _csv_header()
# A row of ``API_COLUMNS`` with plain attribute access: what ``channel_to_api`` reads by name,
# without SQLAlchemy's slower ``Row.__getattr__`` on every field of every row.
_ChannelRow = namedtuple("_ChannelRow", [column.key for column in API_COLUMNS])
# One encoder for every line (json.dumps with options builds a new one per call).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class ExportFilters:
    """The list's filters (DESIGN §4): all optional."""

    channel_type: str | None = None
    status: str | None = None
    is_default: bool | None = None
    q: str | None = None


def channel_object(row) -> dict:
    """The API object of a channel row (a result row of ``API_COLUMNS``): ``channel_to_api``'s."""
    return channel_to_api(_ChannelRow._make(row))


def _query(tenant_id: str, filters: ExportFilters) -> Select:
    return channel_list_query(
        tenant_id,
        channel_type=filters.channel_type,
        status=filters.status,
        is_default=filters.is_default,
        q=filters.q,
    ).with_only_columns(*API_COLUMNS)


def export_rows(
    tenant_id: str, filters: ExportFilters, chunk_size: int | None = None
) -> Iterator[list]:
    """The tenant's filtered channels, newest first, as lists of at most ``chunk_size`` rows
    (one query each, continuing after the last row of the previous chunk)."""
    size = chunk_size or EXPORT_CHUNK
    query = _query(tenant_id, filters).order_by(Channel.created_at.desc(), Channel.id.desc())
    after: tuple[datetime, str] | None = None
    while True:
        page = (
            query if after is None else query.where(tuple_(Channel.created_at, Channel.id) < after)
        )
        rows = db.session.execute(page.limit(size)).all()
        # End the read transaction between chunks (the keyset needs no snapshot).
        db.session.commit()
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = (rows[-1].created_at, rows[-1].id)


def _ndjson(chunks: Iterator[list]) -> Iterator[str]:
    for rows in chunks:
        yield "".join([_JSON(channel_object(row)) + "\n" for row in rows])


def csv_cells(channel: dict) -> list:
    """The export's CSV cells (``CSV_HEADER``) of a channel's API object, before escaping."""
    cells = [channel.get(name) for name in CSV_HEADER]
    cells[_METADATA_CELL] = _JSON(channel["metadata"])
    return cells


_METADATA_CELL = CSV_HEADER.index("metadata")


def _csv(chunks: Iterator[list]) -> Iterator[str]:
    yield csv_line(CSV_HEADER)
    for rows in chunks:
        yield csv_block([csv_cells(channel_object(row)) for row in rows])


def export_channels(
    tenant_id: str, filters: ExportFilters, export_format: str, chunk_size: int | None = None
) -> Iterator[str]:
    """The export document, as text pieces to stream (``export_format``: ndjson or csv).

    The first chunk is read before this returns, so that a database that cannot answer fails
    the request (503 and the error envelope) before any byte is sent.
    """
    chunks = export_rows(tenant_id, filters, chunk_size)
    first = next(chunks, None)
    pending = iter(()) if first is None else _chain(first, chunks)
    return _ndjson(pending) if export_format == "ndjson" else _csv(pending)


def _chain(first: list, rest: Iterator[list]) -> Iterator[list]:
    yield first
    yield from rest


def export_response(
    tenant, filters: ExportFilters, export_format: str, chunk_size: int | None = None
) -> Response:
    """The streamed download of ``tenant``'s export (the API's and the console's): the body is
    produced chunk by chunk while it is sent, inside the request's context (its session)."""
    pieces = export_channels(tenant.id, filters, export_format, chunk_size)
    response = Response(stream_with_context(pieces), mimetype=None)
    response.headers["Content-Type"] = EXPORT_MEDIA_TYPES[export_format]
    filename = export_filename(tenant.slug, export_format)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_filename(tenant_slug: str, export_format: str, now: datetime | None = None) -> str:
    """``channels-<tenant slug>-<UTC date>.<format>``."""
    day = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    return f"channels-{tenant_slug}-{day}.{export_format}"
