"""Fixtures for live-server tests: gunicorn with 4 workers on a scratch copy of the test database.

SQLite: a copy of the session's migrated template file. PostgreSQL: a private database next to
``TEST_DATABASE_URL`` (``<name>_live_<xdist worker>``), migrated from empty, emptied afterwards;
the shared test database is never touched by the server, so function-scoped truncation in other
tests cannot pull rows from under it. One server serves the whole session (starting 4 workers
is the slow part); each test works in a tenant of its own.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, _migrate
from tests.reliability.live import (
    LiveServer,
    create_scratch_postgres,
    empty_scratch_postgres,
    worker_suffix,
)


@pytest.fixture(scope="session")
def live_database(database_template, tmp_path_factory):
    """A migrated database of the live server's own."""
    if ON_POSTGRES:
        name = f"{make_url(TEST_DATABASE_URL).database}_live_{worker_suffix()}"
        url = create_scratch_postgres(TEST_DATABASE_URL, name)
        _migrate(url)
        yield url
        empty_scratch_postgres(url)
        return
    path = tmp_path_factory.mktemp("live") / "live.db"
    shutil.copyfile(database_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def live_server(live_database, tmp_path_factory):
    """gunicorn -w 4 serving the app on ``live_database``."""
    server = LiveServer(live_database, workers=4)
    server.start(tmp_path_factory.mktemp("gunicorn"))
    yield server
    server.stop()


@pytest.fixture
def live(live_server):
    """The live server; the test fails if the server logged an unexpected error meanwhile."""
    before = len(live_server.server_errors())
    yield live_server
    errors = live_server.server_errors()[before:]
    assert not errors, "server errors:\n" + "\n".join(errors)
