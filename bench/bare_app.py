"""The baselines: bare Flask endpoints under the same gunicorn set-up as the app.

``GET /bare/json`` returns a fixed JSON object; ``POST /bare/insert`` inserts one row with the
SQLAlchemy ORM and returns it. The engine gets the app's own per-backend settings (SQLite: WAL,
``synchronous=NORMAL``, ``BEGIN IMMEDIATE`` for writes queued on the same file lock as the app's;
PostgreSQL: the same pool and checkout check), so that the
ratios measure what the app adds (auth, rules, audit, serialisation), not a different driver set-up.
The table ``bench_bare_rows`` belongs to the benchmark only; it is created here, not by a migration.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import DateTime, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.database import (
    begin_write,
    engine_options,
    normalize_database_url,
    queue_writers_of,
    replace_dead_connections,
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


def make_engine(url: str):
    """An engine configured like the app's (core.database) for the same backend."""
    url = normalize_database_url(url)
    engine = create_engine(url, **engine_options(url))
    if engine.dialect.name == "postgresql":
        replace_dead_connections(engine)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            queue_writers_of(dbapi_connection, engine.url.database)  # writers queue, as the app's
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            begin_write(connection)

    return engine


def create_bare_table(database_url: str) -> None:
    """Create the baseline's table (once, before the workers start)."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
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

    return app
