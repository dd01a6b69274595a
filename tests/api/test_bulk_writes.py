"""How a batch is written (bench/FINDINGS.md §14): the channels in multi-row statements (SQLite)
or one statement of arrays (PostgreSQL), the garbage collector paused for the batch, the E.164
parse remembered. Each keeps what a batch writes and answers exactly as before."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import event, select

from core.database import insert_rows
from core.errors import FieldErrors
from core.extensions import db
from core.models import AuditEvent, Channel
from core.rules import values
from core.services import bulk
from core.services.audit import Actor


@pytest.fixture(autouse=True)
def warm_key(api):
    api.get("/api/channels")


def test_every_column_of_a_batch_is_written_as_rendered(api, setup):
    """Both types, metadata, an explicit and an implicit default: each channel read back by id
    is the one the batch answered (the arrays' and multi-row statements' values, typed)."""
    items = [
        setup.email_payload(name="Mail A", metadata={"team": "growth", "n": 3}),
        setup.email_payload(name="Mail B", is_default=True),
        setup.sms_payload(name="Text A", metadata={"flag": True, "none": None, "ratio": 0.5}),
        setup.sms_payload(name="Text B", is_default=False),
    ]
    response = api.post("/api/channels/bulk", json={"channels": items})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert [c["is_default"] for c in data] == [False, True, True, False]
    for channel in data:
        assert api.get(f"/api/channels/{channel['id']}").get_json() == channel
    assert data[0]["metadata"] == {"team": "growth", "n": 3}
    assert data[2]["metadata"] == {"flag": True, "none": None, "ratio": 0.5}
    stored = db.session.execute(select(Channel.created_at, Channel.updated_at)).all()
    assert len(stored) == 4 and all(c.created_at is not None for c in stored)


def test_channels_of_a_batch_are_found_by_name_search(api, setup):
    """SQLite: the FTS5 index kept by the channels' trigger has every row of a multi-row
    statement (a search of 3+ characters reads that index); PostgreSQL: the trigram index."""
    items = [setup.sms_payload(name=f"Zebra crossing {i}") for i in range(30)]
    items += [setup.sms_payload(name=f"Other {i}") for i in range(30)]
    assert api.post("/api/channels/bulk", json={"channels": items}).status_code == 201
    found = api.get("/api/channels?q=zebra&limit=100").get_json()["data"]
    assert sorted(c["name"] for c in found) == sorted(f"Zebra crossing {i}" for i in range(30))
    found = api.get("/api/channels?q=crossing 29").get_json()["data"]
    assert {c["name"] for c in found} == {"Zebra crossing 29"}


def test_insert_rows_fills_python_defaults(app, tenant):
    """``insert_rows`` as ``insert``: the columns left out get their Python defaults (fresh
    ids and timestamps, one per row), on either backend."""
    rows = [
        {
            "tenant_id": tenant.id,
            "actor_type": "system",
            "actor_id": None,
            "actor_name": "test",
            "action": "channel.create",
            "resource_type": "channel",
            "resource_id": None,
            "changes": {"name": {"before": None, "after": f"N{i}"}, "i": i},
            "request_id": None,
            "ip": None,
        }
        for i in range(3)
    ]
    insert_rows(db.session.connection(), AuditEvent.__table__, rows)
    stored = db.session.scalars(select(AuditEvent).where(AuditEvent.actor_name == "test"))
    stored = sorted(stored, key=lambda e: e.changes["i"])
    assert [e.changes for e in stored] == [r["changes"] for r in rows]
    assert len({e.id for e in stored}) == 3 and all(e.created_at for e in stored)


def test_insert_rows_writes_more_rows_than_a_statement_holds(app, tenant):
    """Several statements when the rows need more parameters than one takes (SQLite: 1,000
    rows or its variable limit), every row stored with its own values; a value repeated down a
    column (one timestamp object, one dict) is stored the same in every row."""
    from datetime import UTC, datetime

    from core.db_types import new_ids

    moment = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
    shared = {"same": "object"}
    ids = new_ids(2500)
    rows = [
        {
            "id": ids[i],
            "tenant_id": tenant.id,
            "actor_type": "system",
            "actor_id": None,
            "actor_name": "chunks",
            "action": "channel.create",
            "resource_type": "channel",
            "resource_id": None,
            "changes": shared if i % 2 else {"i": i},
            "request_id": None,
            "ip": None,
            "created_at": moment,
        }
        for i in range(2500)
    ]
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "audit_events" in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        insert_rows(db.session.connection(), AuditEvent.__table__, rows, arrays=False)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    stored = {
        e.id: e
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.actor_name == "chunks"))
    }
    assert len(stored) == 2500
    for i, event_id in enumerate(ids):
        assert stored[event_id].changes == (shared if i % 2 else {"i": i})
        assert stored[event_id].created_at == moment
    if db.engine.dialect.name == "sqlite":
        assert len(statements) == 3  # 1,000 + 1,000 + 500 rows


def test_new_ids_are_distinct_canonical_uuid4s():
    """``new_ids``: the form of ``new_id`` (lower-case canonical text), version 4, RFC 9562's
    variant, no repeats."""
    import uuid

    from core.db_types import new_id, new_ids

    ids = new_ids(5000)
    assert len(ids) == len(set(ids)) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(new_id()) == len(ids[0]) and new_ids(0) == []


def test_the_collector_is_paused_for_a_batch_and_resumed(app, tenant, setup, monkeypatch):
    """Paused while the items are checked and written; on again after it, and after a batch
    that failed; left off when it was off before."""
    seen = []
    original = bulk._check_channels

    def watch(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(bulk, "_check_channels", watch)
    actor = Actor.system()
    assert gc.isenabled()
    bulk.create_channels(tenant.id, [setup.sms_payload(name="A")], actor)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(bulk.BatchRefused):
        bulk.create_channels(tenant.id, [setup.sms_payload(name="A")], actor)  # taken
    assert gc.isenabled()
    gc.disable()
    try:
        bulk.create_channels(tenant.id, [setup.sms_payload(name="B")], actor)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False, False]


@pytest.mark.parametrize(
    ("text", "expected", "message"),
    [
        ("+14155550123", "+14155550123", None),
        ("+4915112345678", "+4915112345678", None),
        ("+999123456789", None, values.INVALID_NUMBER),  # no such country code
        ("+4912", None, values.INVALID_NUMBER),  # too short for Germany
    ],
)
def test_a_remembered_number_is_judged_the_same_every_time(text, expected, message):
    """The E.164 parse is remembered per text: the second and third answers (and errors) are
    the first's."""
    values._possible_e164.cache_clear()
    for _ in range(3):
        errors = FieldErrors()
        assert values.parse_e164(f" {text} ", errors, "n") == expected
        assert errors.as_dict() == ({"n": [message]} if message else {})
    assert values._possible_e164.cache_info().hits == 2


@pytest.mark.postgres_only  # SQLite plans IN (...) as index probes whatever its statistics
def test_names_are_probed_through_the_tenants_unique_index(api, app, setup):
    """PostgreSQL: the batch's names are looked up through ``uq_channels_tenant_name_key``,
    one probe per name, even on a table the planner has no statistics of (it walked the
    tenant's rows once per name through a tenant-first index: bench/FINDINGS.md §14)."""
    items = [setup.sms_payload(name=f"Existing {i}") for i in range(1000)]
    assert api.post("/api/channels/bulk", json={"channels": items}).status_code == 201
    seen = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "unnest" in statement and "name_key" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        keys = {f"new {i}" for i in range(499)} | {"existing 7"}  # one query of 500
        assert bulk._probe(
            Channel.name_key,
            Channel.name_key,
            keys,
            Channel.tenant_id == setup.tenant.id,
            unique_after=(Channel.tenant_id, setup.tenant.id),
        ) == ["existing 7"]
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    [(statement, parameters)] = seen
    cursor = db.session.connection().connection.dbapi_connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "uq_channels_tenant_name_key" in plan, plan
    assert "ix_channels_tenant" not in plan, plan
