"""SQL statements per request, counted on the engine: no N+1 in the lists, bounded single reads
and writes, whatever the tenant's size.

Counts exclude transaction control (SQLite's ``BEGIN``/``BEGIN IMMEDIATE`` is sent as a
statement, PostgreSQL's is not), so the same bounds hold on both backends.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from core.extensions import db
from core.models import Event, WebhookDelivery
from tests import factories
from tests.console.helpers import sign_in

# What one request may cost (see the docstrings of the tests for the statements).
MAX_GET_ONE = 2
MAX_LIST = 2  # the key (when not cached), the page; SQLite adds a trigram probe on searches
# A create: the key, the tenant lock (PostgreSQL only), the rules' one query (name, the current
# default's id, integration, domain or number, whether the tenant has an enabled webhook
# endpoint), the channel and its audit event, and its event (one INSERT, the sequence computed
# in it). The first of a type also writes channel.default_changed, in the same INSERT as
# channel.created; the rules' query already said there is no default yet.
MAX_CREATE = 6
MAX_CREATE_FIRST_OF_TYPE = MAX_CREATE
# Handing the default over ("is_default": true, as the seed's sample sends) adds one UPDATE of
# the previous default (RETURNING the row for the event's payload; its audit event goes in the
# same INSERT as the create's, the channel.default_changed event in the same INSERT as
# channel.created).
MAX_CREATE_HANDOVER = MAX_CREATE + 1
# A tenant with an enabled webhook endpoint: the endpoints are read (once per transaction) and
# the deliveries written (one INSERT for all the events of the create).
WEBHOOK_DELIVERY_STATEMENTS = 2


@contextmanager
def counted_statements():
    """The SQL statements the app's engine runs inside the block (transaction control excluded)."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def add_channels(setup, count: int) -> None:
    """``count`` more channels of both types through the service."""
    for n in range(count):
        factories.make_channel(setup, "email" if n % 2 else "sms", is_default=False)


def fresh_session() -> None:
    """Start the next request with nothing loaded, as in production (here every request of a
    test shares the test's app context, hence its session and identity map)."""
    db.session.expire_all()


def count_request(send) -> list[str]:
    """Statements run by one request, after a warm-up request (API key's last-use write)."""
    send()
    fresh_session()
    with counted_statements() as statements:
        response = send()
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(statements)


@pytest.mark.parametrize(
    "query", ["", "?channel_type=email", "?status=available", "?is_default=false", "?q=mail"]
)
def test_api_list_runs_the_same_queries_for_5_and_50_rows(api, setup, query):
    """GET /api/channels (filters, search) costs as many statements for 50 rows as for 5."""
    add_channels(setup, 5)
    small = count_request(lambda: api.get(f"/api/channels?limit=200&{query.lstrip('?')}"))
    add_channels(setup, 45)
    large = count_request(lambda: api.get(f"/api/channels?limit=200&{query.lstrip('?')}"))
    if query in ("", "?is_default=false"):
        assert len(api.get(f"/api/channels?limit=200&{query.lstrip('?')}").get_json()["data"]) == 50
    assert len(large) == len(small), large
    assert len(large) <= MAX_LIST + (1 if "q=" in query else 0), large


def test_api_list_next_page_runs_the_same_queries(api, setup):
    """Following a cursor costs what the first page costs."""
    add_channels(setup, 12)
    first = count_request(lambda: api.get("/api/channels?limit=5"))
    cursor = api.get("/api/channels?limit=5").get_json()["next_cursor"]
    assert cursor
    following = count_request(lambda: api.get(f"/api/channels?limit=5&cursor={cursor}"))
    assert len(following) == len(first)


def test_get_one_channel_is_bounded(api, setup):
    """GET /api/channels/{id}: the key lookup and one SELECT of the channel with its resources."""
    channel_id = factories.make_channel(setup).id
    add_channels(setup, 20)
    statements = count_request(lambda: api.get(f"/api/channels/{channel_id}"))
    assert len(statements) <= MAX_GET_ONE, statements


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_create_channel_is_bounded_and_independent_of_size(api, setup, channel_type):
    """POST /api/channels runs a bounded number of statements, as many with 40 channels as 0."""

    def create(name: str):
        make = setup.email_payload if channel_type == "email" else setup.sms_payload
        payload = make(name=name)
        fresh_session()
        with counted_statements() as statements:
            response = api.post("/api/channels", json=payload)
        assert response.status_code == 201, response.get_json()
        return list(statements)

    api.get("/api/channels")  # the key's last-use write happens here, not in the counts
    first = create("First")  # becomes the default: clears nothing; its default_changed event
    second = create("Second")
    add_channels(setup, 40)
    later = create("Later")
    assert len(first) <= MAX_CREATE_FIRST_OF_TYPE, first
    assert len(second) <= MAX_CREATE, second
    assert len(second) == len(later), later


def _count_create(api, payload) -> list[str]:
    fresh_session()
    with counted_statements() as statements:
        response = api.post("/api/channels", json=payload)
    assert response.status_code == 201, response.get_json()
    return list(statements)


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_default_handover_create_is_bounded_like_the_plain_one(api, setup, channel_type):
    """POST with "is_default": true (the seed's body) when a default exists: one UPDATE of the
    previous default more than a plain create (channel.default_changed goes in the events'
    INSERT), nothing else, at any size; both audit events written."""
    make = setup.email_payload if channel_type == "email" else setup.sms_payload
    api.get("/api/channels")  # the key's last-use write happens here, not in the counts
    _count_create(api, make(name="First"))  # the type's first channel: the default
    plain = _count_create(api, make(name="Plain", is_default=False))
    handover = _count_create(api, make(name="Takes over", is_default=True))
    add_channels(setup, 40)
    later = _count_create(api, make(name="Takes over later", is_default=True))
    assert len(handover) <= MAX_CREATE_HANDOVER, handover
    assert len(handover) == len(plain) + 1, (plain, handover)
    updates = [s for s in handover if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1 and "channels" in updates[0], handover
    assert len(later) == len(handover), later
    defaults = [
        c
        for c in api.get("/api/channels?limit=200").get_json()["data"]
        if c["channel_type"] == channel_type and c["is_default"]
    ]
    assert [c["name"] for c in defaults] == ["Takes over later"]
    events = api.get("/api/audit_events?resource_type=channel&limit=200").get_json()["data"]
    actions = [e["action"] for e in events]
    assert actions.count("channel.default_cleared") >= 2


@pytest.mark.parametrize("is_default", [False, True])
def test_create_with_a_webhook_endpoint_reads_endpoints_and_writes_deliveries(
    api, setup, is_default
):
    """A tenant with an enabled endpoint: a create (plain or handing the default over) costs
    the endpoints read and one deliveries INSERT more, and every event gets its delivery."""
    api.get("/api/channels")  # the key's last-use write happens here, not in the counts
    _count_create(api, setup.email_payload(name="First"))
    without = _count_create(api, setup.email_payload(name="Without", is_default=is_default))
    factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/hook")
    db.session.commit()
    counted = _count_create(api, setup.email_payload(name="With", is_default=is_default))
    assert len(counted) == len(without) + WEBHOOK_DELIVERY_STATEMENTS, (without, counted)
    created = db.session.scalars(
        select(Event).where(Event.tenant_id == setup.tenant.id).order_by(Event.created_at.desc())
    ).all()[: 2 if is_default else 1]
    assert {e.type for e in created} == (
        {"channel.created", "channel.default_changed"} if is_default else {"channel.created"}
    )
    for event_row in created:
        deliveries = db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == event_row.id)
        ).all()
        assert [d.status for d in deliveries] == ["pending"], event_row.type


@pytest.fixture
def app_config(app_config):
    """Console pages of 50 rows, so that 50 channels render on one page."""
    return dict(app_config, PAGE_SIZE=50)


@pytest.fixture
def console(app, client, tenant):
    """The test client signed in as an admin of ``tenant``."""
    admin = factories.make_user(tenant, role="admin", email="counts-admin@example.org")
    assert sign_in(client, admin.email).status_code == 303
    return client


@pytest.mark.parametrize("fragment", [False, True])
def test_console_channels_page_runs_the_same_queries_for_5_and_50_rows(console, setup, fragment):
    """The console's channels table (page and htmx rows) costs the same for 50 rows as for 5."""
    headers = {"HX-Request": "true"} if fragment else {}

    def page():
        return console.get("/channels", headers=headers)

    add_channels(setup, 5)
    small = count_request(page)
    add_channels(setup, 45)
    large = count_request(page)
    assert page().get_data(as_text=True).count("<tr") >= 50
    assert len(large) == len(small), large


def test_one_statement_reads_run_outside_any_transaction(api, setup):
    """GET of one channel, its 304 and a list page read the channels in one statement each, run
    alone (``core.database.read_alone``): no BEGIN before it and no ROLLBACK after it (on
    PostgreSQL, two round trips of three). SQLite: the driver is in no transaction when the
    statement runs; PostgreSQL: the connection is in autocommit mode."""
    channel_id = factories.make_channel(setup).id
    etag = api.get(f"/api/channels/{channel_id}").headers["ETag"]
    seen: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM channels" in statement:
            raw = conn.connection.dbapi_connection
            alone = raw.autocommit if conn.dialect.name == "postgresql" else not raw.in_transaction
            seen.append((statement, alone))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert api.get(f"/api/channels/{channel_id}").status_code == 200
        not_modified = api.get(f"/api/channels/{channel_id}", headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert api.get("/api/channels").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(seen) == 3 and all(alone for _, alone in seen), seen


def test_an_uncached_key_of_a_read_is_read_alone_on_the_same_connection(app, api, setup):
    """API_KEY_CACHE=off: a GET, its 304 and a list page look the key up by a statement of its
    own too (no BEGIN/ROLLBACK around it on PostgreSQL), then read the channels on the same
    pooled connection, one at a time: two round trips, never two connections at once."""
    app.config["API_KEY_CACHE"] = "off"
    channel_id = factories.make_channel(setup).id
    etag = api.get(f"/api/channels/{channel_id}").headers["ETag"]  # and the key's last use
    seen: list[tuple[str, bool, int]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        raw = conn.connection.dbapi_connection
        alone = raw.autocommit if conn.dialect.name == "postgresql" else not raw.in_transaction
        table = next((t for t in ("api_keys", "channels") if f"FROM {t}" in statement), statement)
        seen.append((table, alone, db.engine.pool.checkedout()))

    fresh_session()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert api.get(f"/api/channels/{channel_id}").status_code == 200
        not_modified = api.get(f"/api/channels/{channel_id}", headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert api.get("/api/channels").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert seen == [("api_keys", True, 1), ("channels", True, 1)] * 3, seen
    assert not db.session().in_transaction()
