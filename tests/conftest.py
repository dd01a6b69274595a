"""Shared fixtures: an app on a fresh database per test, on SQLite or PostgreSQL.

The backend comes from ``TEST_DATABASE_URL``: unset, each test gets a copy of a SQLite file
migrated once per session; a ``postgresql+psycopg://`` URL is migrated once per session (from
empty, through Alembic) and every table is emptied between tests; under pytest-xdist each
worker gets a database of its own next to it (``<name>_gw0``, ...). The schema always comes from
the migrations, never from ``create_all``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import WSGIRequestHandler, make_server

import core.schemas
from app import create_app
from core.extensions import db
from tests import factories
from tests.dns_zone import running_zone

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
# Every object the API renders without validation (core.schemas.render_values) is also validated
# by its declared model here: a value of the wrong type or shape fails the test that rendered it.
core.schemas.CHECK_RENDERED = True


def _share_url_builders() -> None:
    """Every test makes its app, and Werkzeug generates and compiles two Python functions per
    URL rule for each (``Rule._compile_builder``: ~40 of the ~50 ms of CPU a ``create_app``
    costs, a sixth of an API test's). A builder's code depends only on the rule's parsed parts
    (and its defaults, not cached here), so the apps of this process share one per rule shape;
    each rule still binds it to itself. Only speed: a Werkzeug without this method is left as
    it is."""
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "shared", False):
        return
    builders: dict = {}

    def shared_builder(self, append_unknown=True):
        if self.defaults:
            return compile_builder(self, append_unknown)
        key = (tuple(self._trace), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    shared_builder.shared = True
    Rule._compile_builder = shared_builder


_share_url_builders()


def pytest_collection_modifyitems(config, items):
    """``postgres_only`` tests are skipped, with the reason, unless the suite runs on PostgreSQL."""
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason=(
            "needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://..."
            " (row locks, real concurrency)"
        )
    )
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)


def base_config(database_url: str) -> dict:
    return {
        "TESTING": True,
        "ENV": "testing",
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }


def _migrate(database_url: str) -> None:
    app = create_app(base_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _worker_postgres_url(url: str) -> str:
    """Under pytest-xdist, a database of the worker's own next to ``url`` (``<name>_gw0``...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """The migrated database every test starts from (one per xdist worker on PostgreSQL)."""
    if ON_POSTGRES:
        url = _worker_postgres_url(TEST_DATABASE_URL)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            # A scratch database: a commit need not wait for its WAL to reach the disk (no test
            # restarts the server; every connection opened from here on gets the setting).
            name = make_url(url).database
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        engine.dispose()
        _migrate(url)
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


_EMPTYING_ENGINES: dict[str, object] = {}


def _empty_all(url: str) -> None:
    """Delete every row of every table, children first, in one transaction.

    ``DELETE`` and not ``TRUNCATE``: on tables of a few rows, a TRUNCATE of the 18 tables costs
    about half a second (it makes new files for each table and its indexes, fsynced), a DELETE
    of them a few milliseconds; over two thousand tests that was most of the PostgreSQL run's
    extra time. No table has a sequence to restart (ids are UUIDs; ``events.sequence`` is
    computed by its INSERT). One engine per worker process, so that each test does not open a
    connection for it either (pre-ping: the outage tests end every connection).
    """
    engine = _EMPTYING_ENGINES.get(url)
    if engine is None:
        engine = _EMPTYING_ENGINES[url] = create_engine(url, pool_size=1, pool_pre_ping=True)
    with engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def database_url(database_template, tmp_path):
    """A fresh, migrated, empty database for one test."""
    if ON_POSTGRES:
        _empty_all(database_template)
        return database_template
    path = tmp_path / "test.db"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url) -> dict:
    """Override in a test module to change configuration for its tests."""
    return base_config(database_url)


@pytest.fixture
def app(app_config):
    """The app, with an application context pushed for the test's duration."""
    application = create_app(app_config)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def tenant(app):
    return factories.make_tenant()


@pytest.fixture
def other_tenant(app):
    return factories.make_tenant(name="Other Co")


@pytest.fixture
def api(app, client, tenant):
    """A JSON API client authenticated with a write key of ``tenant``."""
    return factories.ApiClient(client, factories.make_api_key(tenant, scope="write"))


@pytest.fixture
def setup(app, tenant):
    """A tenant ready for channels: active email/SMS integrations, a verified domain, a number."""
    return factories.make_ready_tenant(tenant)


@pytest.fixture
def zone():
    """A real DNS server on 127.0.0.1 serving what the test publishes (tests/dns_zone.py)."""
    with running_zone() as resolver:
        yield resolver


_APP_ITER = "tests.app_iter"


class _QuietHandler(WSGIRequestHandler):
    """Keeps the per-request access log out of the test output; errors are still logged.

    It also closes what the app returned when the browser dropped the connection mid-response
    (a page left while ``app.js`` was still being sent): Werkzeug's development server skips
    ``close()`` when draining the dropped socket fails again in its ``finally``, which PEP 3333
    forbids, and the file behind ``send_file`` is then left for the garbage collector to find
    (an unclosed-file ``ResourceWarning``, an error under this suite's warning filter)."""

    def log_request(self, code="-", size="-"):
        pass

    def connection_dropped(self, error, environ=None):
        app_iter = (environ or {}).pop(_APP_ITER, None)
        if app_iter is not None:
            app_iter.close()


class _ClosedOnce:
    """The app's iterable, closed once whoever asks first (the server or the handler)."""

    def __init__(self, app_iter):
        self.app_iter = app_iter
        self.closed = False

    def __iter__(self):
        return iter(self.app_iter)

    def close(self):
        if not self.closed:
            self.closed = True
            if hasattr(self.app_iter, "close"):
                self.app_iter.close()


def _keeping_app_iter(app):
    """The app, with the iterable it returns noted in the environ for ``connection_dropped``."""

    def wsgi(environ, start_response):
        environ[_APP_ITER] = app_iter = _ClosedOnce(app(environ, start_response))
        return app_iter

    return wsgi


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """``app`` served on 127.0.0.1:<free port> in a thread, as the ``server`` fixture does."""
    http = make_server(
        "127.0.0.1", 0, _keeping_app_iter(app), threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(target=http.serve_forever, name="test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(app) -> Iterator[str]:
    """The test's app served on 127.0.0.1:<free port> in a thread; yields the base URL."""
    with serving(app) as url:
        yield url
