"""Engine set-up per backend: SQLite with WAL, a busy timeout, foreign keys and serial writes.

SQLite has one writer at a time. A write request takes the write lock with its first statement
(``BEGIN IMMEDIATE``), and before that it queues for it on an exclusive ``flock`` of a file next
to the database (``<database>-writers``): the kernel wakes the next waiter the moment the
holder commits or rolls back. Without the queue, writers that found the database locked slept
in SQLite's busy handler, whose back-off grows to 100 ms between tries, so a create's p99 was
19 times its p50 under load (bench/RESULTS.md). The busy timeout (30 s) still covers writers
that do not queue (the CLI, migrations). The lock is released by the connection's own
``commit``/``rollback``/``close`` (so after the COMMIT, never before), and by the kernel if the
process dies; a sync worker stuck holding it is ended by gunicorn's timeout. The WAL is copied
back into the database file (checkpointed) after a commit has released the queue, every
``CHECKPOINT_EVERY`` write commits of a process, so that no writer waits for another's copy and
fsync (SQLite's automatic checkpoint ran inside the commit, with the queue held).

PostgreSQL: a pooled connection is checked when it is checked out without a round trip
(``connection_is_dead``): a server that shuts down, restarts or ends a session
(``pg_terminate_backend``, ``idle_session_timeout``) first sends the client a FATAL message and
closes the socket, so an idle connection whose socket has something to read is gone, and the
pool replaces it before the request uses it. SQLAlchemy's ``pool_pre_ping`` did the same with a
``SELECT 1`` round trip on every checkout, i.e. on every request. What the check cannot see (a
network partition that delivered nothing) fails the request's first statement instead: it
answers 503 with ``Retry-After`` (core.http) and SQLAlchemy drops the pool's connections.
"""

from __future__ import annotations

import fcntl
import os
import select
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain

from flask import Flask, has_request_context, request
from sqlalchemy import ARRAY, Table, bindparam, event, func, insert
from sqlalchemy import select as select_rows
from sqlalchemy.exc import DisconnectionError

from core import json_text
from core.extensions import db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set inside ``read_phase``: SQLite transactions begun there are plain reads (no write lock).
_READ_PHASE: ContextVar[bool] = ContextVar("read_phase", default=False)
# Set by ``writing``: background work (tasks) that reads then writes takes the lock up front too.
_WRITING: ContextVar[bool] = ContextVar("writing", default=False)
# Execution option of ``read_alone``'s connections: no transaction is begun around the statement.
ALONE = "channels_alone"


def insert_rows(connection, table: Table, rows: list[dict], *, arrays: bool = True) -> None:
    """INSERT ``rows`` (dicts by column key, every row with the same keys; the columns left out
    get their Python defaults, as with ``insert``) into ``table`` on ``connection``: a batch's
    channels, audit events, webhook events and deliveries (``core.services.bulk``).

    SQLite, several rows: multi-row ``INSERT … VALUES (…), (…), …`` statements of plain values
    (``_insert_sqlite``). Every statement executed on ``channels`` makes the FTS5 index of its
    trigger (migration 0002) write its pending terms out as a new segment: as an executemany
    (one statement per row) the index cost about 90% of the insert; in one statement its rows
    are written once (bench/FINDINGS.md §14).

    PostgreSQL, several rows, ``arrays``: one ``INSERT … SELECT … FROM unnest(:column_1, …)``,
    each column's values sent as one array, bound by the column's own type, instead of an
    executemany's one execution per row (1,000 channels: 318 → 217 ms, medians of 6 alternating
    on a loaded machine; a 1,000-row VALUES list was 4× slower than the executemany:
    bench/FINDINGS.md §14). ``arrays=False`` for rows whose JSON values are large (audit
    changes, event payloads): in an array each one is quoted again inside the array's text, and
    1,000 audit or event rows went 2× slower than their executemany, which they keep.
    """
    if len(rows) < 2:
        connection.execute(insert(table), rows)
        return
    if connection.dialect.name == "sqlite":
        _insert_sqlite(connection, table, rows)
        return
    if connection.dialect.name != "postgresql" or not arrays:
        connection.execute(insert(table), rows)
        return
    given, defaulted = _columns_of(table, rows[0])
    values = {column.key: [row[column.key] for row in rows] for column in given}
    for column in defaulted:
        values[column.key] = _default_values(column, len(rows))
    connection.execute(_unnest_insert(table, given + defaulted), values)


def _columns_of(table: Table, row: dict) -> tuple[tuple, tuple]:
    """The columns ``row`` gives, and those it leaves out that have a Python default."""
    given = tuple(column for column in table.columns if column.key in row)
    defaulted = tuple(
        column
        for column in table.columns
        if column.key not in row
        and column.default is not None
        and (column.default.is_scalar or column.default.is_callable)
    )
    return given, defaulted


def _default_values(column, count: int) -> list:
    """``count`` values of ``column``'s Python default, one call per row as ``insert`` makes."""
    default = column.default
    if default.is_scalar:
        return [default.arg] * count
    return [default.arg(None) for _ in range(count)]  # SQLAlchemy wraps it to take a context


def _bound(process, values: list) -> list:
    """``values`` bound by a column type's processor, a value repeated down the column (the
    batch's timestamp, tenant or actor, an empty metadata object) processed once."""
    bound, last, last_bound = [], _bound, None  # ``_bound`` itself: no value is it
    for value in values:
        if value is not last:
            last, last_bound = value, process(value)
        bound.append(last_bound)
    return bound


def _insert_sqlite(connection, table: Table, rows: list[dict]) -> None:
    """``insert_rows`` on SQLite: each column's values bound by its type (``_bound``), the rows
    sent as multi-row ``INSERT … VALUES`` statements of plain tuples through the driver, as
    many rows a statement as SQLite takes parameters (at most 1,000). SQLAlchemy's own
    multi-row form ("insertmanyvalues") binds every value of every row through its compiled
    parameters: for a 1,000-channel batch with its audit and event rows that was ~15 ms of
    ~110 (bench/FINDINGS.md §17)."""
    given, defaulted = _columns_of(table, rows[0])
    columns = given + defaulted
    dialect = connection.dialect
    by_column = [[row[column.key] for row in rows] for column in given]
    by_column += [_default_values(column, len(rows)) for column in defaulted]
    for index, column in enumerate(columns):
        process = column.type._cached_bind_processor(dialect)
        if process is not None:
            by_column[index] = _bound(process, by_column[index])
    preparer = dialect.identifier_preparer
    head = (
        f"INSERT INTO {preparer.format_table(table)} "
        f"({', '.join(preparer.format_column(column) for column in columns)}) VALUES "
    )
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    limit = connection.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(1000, limit // len(columns)))
    value_rows = list(zip(*by_column, strict=True))
    for start in range(0, len(value_rows), per_statement):
        chunk = value_rows[start : start + per_statement]
        connection.exec_driver_sql(
            head + ", ".join([marks] * len(chunk)), tuple(chain.from_iterable(chunk))
        )


_UNNEST_INSERTS: dict = {}


def _unnest_insert(table: Table, columns: tuple):
    """``INSERT INTO table (columns) SELECT * FROM unnest(:a, :b, …) AS given(a, b, …)``, built
    once per table and columns."""
    key = (table.name, tuple(column.key for column in columns))
    statement = _UNNEST_INSERTS.get(key)
    if statement is None:
        arrays = [bindparam(column.key, type_=ARRAY(column.type)) for column in columns]
        given = func.unnest(*arrays).table_valued(*key[1]).render_derived(name="given")
        statement = insert(table).from_select(list(key[1]), select_rows(given))
        _UNNEST_INSERTS[key] = statement
    return statement


def normalize_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` spellings and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection that queues for the write lock on a file lock (module docstring)."""

    lock_path: str | None = None
    _lock_fd: int | None = None
    _holding = False

    def queue_for_write_lock(self) -> None:
        """Wait (in the kernel, woken at once) until no other queued writer holds the lock."""
        if self.lock_path is None or self._holding:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = True

    def release_write_lock(self) -> None:
        if self._holding:
            self._holding = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        wrote = self._holding
        try:
            super().commit()
        finally:
            self.release_write_lock()
        if wrote:
            _count_write_and_checkpoint(self)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            self.release_write_lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        finally:
            super().close()


# Checkpoints (SQLite's WAL copied back into the database file) run after a connection's commit
# has released the writers' queue, every CHECKPOINT_EVERY queued write commits of the process,
# as PASSIVE checkpoints: other writers neither wait for them nor stop them. SQLite's own
# automatic checkpoint ran inside ``commit``, while the queue was still held, so every writer
# waited for its copy and fsync (16-25 ms every ~50 creates). Kept as a backstop only, far
# above this cadence (``wal_autocheckpoint``), for connections that never count to it.
CHECKPOINT_EVERY = 50
AUTOCHECKPOINT_BACKSTOP_PAGES = 20_000
_write_commits = 0


def _count_write_and_checkpoint(connection: sqlite3.Connection) -> None:
    global _write_commits
    _write_commits += 1
    if _write_commits < CHECKPOINT_EVERY:
        return
    _write_commits = 0
    _checkpoint(connection)


def _checkpoint(connection: sqlite3.Connection) -> None:
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        pass  # busy or interrupted: the next one (or SQLite's backstop) copies these pages


def engine_options(url: str) -> dict:
    """The engine's options; JSON columns' text written by ``core.json_text.dumps`` and read by
    ``core.json_text.loads`` (``json.loads``'s values, without its encoding guess per value) on
    every backend."""
    if url.startswith("sqlite"):
        # isolation_level=None hands transaction control to the "begin" listener below.
        return {
            "json_serializer": json_text.dumps,
            "json_deserializer": json_text.loads,
            "connect_args": {
                "timeout": 30,
                "isolation_level": None,
                "factory": QueuedWriterConnection,
            },
        }
    # No pool_pre_ping (a round trip per request): ``connection_is_dead`` at checkout instead.
    return {
        "json_serializer": json_text.dumps,
        "json_deserializer": json_text.loads,
        "pool_pre_ping": False,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 10,
    }


def connection_is_dead(dbapi_connection) -> bool:
    """Has the server given up on this idle psycopg connection? No round trip: the socket of an
    idle connection has nothing to read unless the server sent it a FATAL message and closed it
    (an asynchronous notice would also wake it: replacing that connection is merely wasted)."""
    if dbapi_connection.closed:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def replace_dead_connections(engine) -> None:
    """At checkout, a PostgreSQL connection the server closed is swapped for a fresh one."""

    @event.listens_for(engine, "checkout")
    def _replace_dead_connections(dbapi_connection, _record, _proxy):
        # DisconnectionError makes the pool discard this connection and check out another.
        if connection_is_dead(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")


def set_up_sqlite_connection(dbapi_connection, database: str | None) -> None:
    """A new SQLite connection's settings (the app's engine and the benchmark's baseline alike):
    its writers' queue, WAL, ``synchronous=NORMAL``, foreign keys, the busy timeout, and
    SQLite's automatic checkpoint as a backstop only (``CHECKPOINT_EVERY``)."""
    cursor = dbapi_connection.cursor()
    queue_writers_of(dbapi_connection, database)
    if database not in (None, "", ":memory:"):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_BACKSTOP_PAGES}")
    cursor.close()


def configure_engine(app: Flask) -> None:
    """Attach per-connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        replace_dead_connections(engine)
        return
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        set_up_sqlite_connection(dbapi_connection, engine.url.database)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        if connection.get_execution_options().get(ALONE):
            return  # ``read_alone``: the statement is its own (autocommit) read transaction
        # A write request takes the write lock up front: SQLite cannot upgrade a read
        # transaction once another writer committed, and would fail instead of waiting.
        write = _WRITING.get() or (
            has_request_context() and request.method not in SAFE_METHODS and not _READ_PHASE.get()
        )
        if write:
            begin_write(connection)
        else:
            connection.exec_driver_sql("BEGIN")


def begin_write(connection) -> None:
    """Queue for SQLite's write lock (the file lock), then take it: ``BEGIN IMMEDIATE``."""
    raw = connection.connection.dbapi_connection
    queued = isinstance(raw, QueuedWriterConnection)
    if queued:
        raw.queue_for_write_lock()
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if queued:
            raw.release_write_lock()
        raise


def queue_writers_of(dbapi_connection, database: str | None) -> None:
    """Make a new connection to an SQLite file queue its writes on ``<database>-writers``."""
    if database not in (None, "", ":memory:") and isinstance(
        dbapi_connection, QueuedWriterConnection
    ):
        dbapi_connection.lock_path = os.path.abspath(database) + "-writers"


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
        # A read transaction: nothing to write, only ends it. A cached key ran no statement and
        # began no transaction: nothing to end (a commit would still run the ORM's machinery).
        if db.session().in_transaction():
            db.session.commit()
    finally:
        _READ_PHASE.reset(token)


def read_alone(statement, parameters: dict | None = None) -> list:
    """The rows of one read statement run as its own snapshot, outside the ORM session.

    For the requests whose whole reading is one statement (a GET of one resource, its 304, a
    list page): a single statement is a consistent snapshot by itself on both databases, so it
    needs no ``BEGIN`` before it nor ``ROLLBACK`` after it, and the request's session never
    begins a transaction (nothing to tear down). On SQLite the statement runs in the driver's
    autocommit mode (the ``begin`` listener sends no ``BEGIN``); on PostgreSQL the pooled
    connection is switched to autocommit for this use (a client-side setting: no round trip), so
    the read costs one round trip instead of three. Never for writes, nor for reads that must
    agree with another statement. Statements run alone one after the other (an API key that is
    not cached, then the resource: ``accounts.find_api_key(alone=True)``) reuse one pooled
    connection; a request whose session holds a connection uses a second one for this read.
    """
    engine = db.engine
    options = _ALONE_OPTIONS.get(engine.dialect.name, _ALONE_SQLITE)
    with engine.connect() as connection:
        connection.execution_options(**options)
        return connection.execute(statement, parameters).all()


_ALONE_SQLITE = {ALONE: True}
_ALONE_OPTIONS = {"postgresql": {ALONE: True, "isolation_level": "AUTOCOMMIT"}}


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
