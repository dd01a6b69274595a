"""Engine set-up per backend: SQLite with WAL, a busy timeout, foreign keys and serial writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, has_request_context, request
from sqlalchemy import event

from core.extensions import db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set inside ``read_phase``: SQLite transactions begun there are plain reads (no write lock).
_READ_PHASE: ContextVar[bool] = ContextVar("read_phase", default=False)
# Set by ``writing``: background work (tasks) that reads then writes takes the lock up front too.
_WRITING: ContextVar[bool] = ContextVar("writing", default=False)


def normalize_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` spellings and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # isolation_level=None hands transaction control to the "begin" listener below.
        return {"connect_args": {"timeout": 30, "isolation_level": None}}
    # pre_ping: after PostgreSQL restarts, stale pooled connections are replaced, not used.
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5, "pool_timeout": 10}


def configure_engine(app: Flask) -> None:
    """Attach per-connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        # A write request takes the write lock up front: SQLite cannot upgrade a read
        # transaction once another writer committed, and would fail instead of waiting.
        write = _WRITING.get() or (
            has_request_context() and request.method not in SAFE_METHODS and not _READ_PHASE.get()
        )
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def read_phase() -> Iterator[None]:
    """The reads a write request makes before its work (finding the API key), outside the lock.

    SQLite has one writer at a time and a write request takes the lock with its first statement
    (``BEGIN IMMEDIATE``). Statements inside this block run in a plain read transaction instead,
    ended when the block ends, so the lock is held only from the request's first statement after
    it: other workers' writes go on meanwhile. Nothing may be written inside the block. On
    PostgreSQL, and for reading requests, it changes nothing (one transaction, as before).
    """
    if not (
        has_request_context()
        and request.method not in SAFE_METHODS
        and db.session.get_bind().dialect.name == "sqlite"
    ):
        yield
        return
    token = _READ_PHASE.set(True)
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    else:
        db.session.commit()  # a read transaction: nothing to write, only ends it
    finally:
        _READ_PHASE.reset(token)


@contextmanager
def writing() -> Iterator[None]:
    """Transactions begun inside take SQLite's write lock at ``BEGIN`` (as write requests do).

    For background work outside requests (the task engine's tasks): a transaction that reads and
    then writes would otherwise fail with "database is locked" when another process committed in
    between. Nothing changes on PostgreSQL.
    """
    token = _WRITING.set(True)
    try:
        yield
    finally:
        _WRITING.reset(token)
