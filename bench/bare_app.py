"""The baselines: bare Flask endpoints under the same gunicorn set-up as the app.

``GET /bare/json`` returns a fixed JSON object; ``POST /bare/insert`` inserts one row with the
SQLAlchemy ORM and returns it.

The floors (``floor_*`` in RESULTS.md): what the app's endpoints would cost with nothing of the
app but their statements. ``GET /bare/read`` reads one row by primary key (a statement alone, as
the app's ``read_alone``) and answers it with a strong ETag, or 304 when ``If-None-Match`` names
it; ``POST /bare/create`` runs a plain create's statements in one write transaction: a read by
primary key (the rules' query), then the row, an audit row and an event row.

The engine gets the app's own per-backend settings (SQLite: WAL, ``synchronous=NORMAL``,
``BEGIN IMMEDIATE`` for writes queued on the same file lock as the app's; PostgreSQL: the same
pool and checkout check), so that the ratios measure what the app adds (auth, rules, audit,
serialisation), not a different driver set-up. The tables ``bench_bare_*`` belong to the
benchmark only; they are created here, not by a migration.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import DateTime, String, bindparam, create_engine, event, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.database import (
    begin_write,
    engine_options,
    normalize_database_url,
    replace_dead_connections,
    set_up_sqlite_connection,
)

FIXED = {
    "id": "123e4567-e89b-12d3-a456-426614174000",
    "name": "Support Email",
    "channel_type": "email",
    "status": "available",
    "is_default": True,
    "metadata": {},
    "created_at": "2024-10-03T12:00:00Z",
}


class Base(DeclarativeBase):
    pass


class BareRow(Base):
    __tablename__ = "bench_bare_rows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class _BareLog:
    """A row written beside a created row: its id, the row's id, a kind and a JSON document."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(36), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    document: Mapped[str] = mapped_column(String(2000), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class BareAudit(_BareLog, Base):
    __tablename__ = "bench_bare_audit"


class BareEvent(_BareLog, Base):
    __tablename__ = "bench_bare_events"


SAMPLE_ID = "00000000-0000-4000-8000-000000000001"  # the row GET /bare/read answers
READ_ONE = select(BareRow.__table__).where(BareRow.__table__.c.id == bindparam("id"))
# A statement alone: no BEGIN on SQLite (the begin listener skips it), autocommit on PostgreSQL.
READ_ALONE = {"bare_read": True}


def make_engine(url: str):
    """An engine configured like the app's (core.database) for the same backend."""
    url = normalize_database_url(url)
    engine = create_engine(url, **engine_options(url))
    if engine.dialect.name == "postgresql":
        replace_dead_connections(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            set_up_sqlite_connection(dbapi_connection, engine.url.database)  # as the app's

        @event.listens_for(engine, "begin")
        def _begin(connection):
            if not connection.get_execution_options().get("bare_read"):
                begin_write(connection)

    return engine


def create_bare_table(database_url: str) -> None:
    """Create the baseline's table (once, before the workers start)."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        if session.get(BareRow, SAMPLE_ID) is None:
            session.add(BareRow(id=SAMPLE_ID, name="Support Email", created_at=datetime.now(UTC)))
    engine.dispose()


def create_bare_app(database_url: str | None = None) -> Flask:
    """The baseline app: one fixed-JSON endpoint and one insert-a-row endpoint."""
    app = Flask(__name__)
    engine = make_engine(database_url or os.environ["DATABASE_URL"])

    @app.get("/bare/json")
    def bare_json():
        """A fixed JSON object: the floor of any JSON endpoint under this server set-up."""
        return jsonify(FIXED)

    @app.post("/bare/insert")
    def bare_insert():
        """Insert one row from the JSON body's ``name`` and return it (201)."""
        body = request.get_json()
        row = BareRow(
            id=str(uuid.uuid4()), name=str(body["name"])[:100], created_at=datetime.now(UTC)
        )
        with Session(engine) as session, session.begin():
            session.add(row)
            session.flush()
            payload = {"id": row.id, "name": row.name, "created_at": row.created_at.isoformat()}
        return jsonify(payload), 201

    read_options = dict(READ_ALONE)
    if engine.dialect.name == "postgresql":
        read_options["isolation_level"] = "AUTOCOMMIT"

    @app.get("/bare/read")
    def bare_read():
        """The sample row by primary key with a strong ETag; 304 when If-None-Match names it."""
        with engine.connect() as connection:
            row = (
                connection.execution_options(**read_options)
                .execute(READ_ONE, {"id": SAMPLE_ID})
                .one()
            )
        payload = {"id": row.id, "name": row.name, "created_at": row.created_at.isoformat()}
        tag = hashlib.blake2b(repr(tuple(row)).encode(), digest_size=16).hexdigest()
        if request.if_none_match.contains(tag):  # the parsed header holds unquoted tags
            response = app.response_class(status=304)
        else:
            response = jsonify(payload)
        response.set_etag(tag)  # quoted, strong
        return response

    @app.post("/bare/create")
    def bare_create():
        """A plain create's statements and nothing else: a read by primary key (the rules'),
        then the row, its audit row and its event row, in one write transaction (201)."""
        body = request.get_json()
        now = datetime.now(UTC)
        row_id = str(uuid.uuid4())
        name = str(body["name"])[:100]
        payload = {"id": row_id, "name": name, "created_at": now.isoformat()}
        document = json.dumps(payload)
        with engine.begin() as connection:
            connection.execute(READ_ONE, {"id": SAMPLE_ID}).one()
            connection.execute(
                insert(BareRow.__table__), {"id": row_id, "name": name, "created_at": now}
            )
            for log, kind in ((BareAudit, "created"), (BareEvent, "row.created")):
                connection.execute(
                    insert(log.__table__),
                    {
                        "id": str(uuid.uuid4()),
                        "row_id": row_id,
                        "kind": kind,
                        "document": document,
                        "created_at": now,
                    },
                )
        return jsonify(payload), 201

    return app
