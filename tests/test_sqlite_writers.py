"""SQLite writers queue on a file lock (core.database): they wait in the kernel and start the
moment the holder commits, instead of sleeping in SQLite's busy handler; the lock is always
released (commit, rollback, refused request), so a write never leaks it."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

import httpx
import pytest

from core.extensions import db
from tests import factories
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's write queue")


def lock_path() -> str:
    return os.path.abspath(db.engine.url.database) + "-writers"


def lock_is_free() -> bool:
    """Can another open file description take the writers' lock right now?"""
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_write_waits_for_the_queue_and_starts_when_it_is_released(app, server, api, setup):
    """While another writer holds the queue the create does not start (no BEGIN IMMEDIATE: the
    database is not locked); released, it finishes at once (no busy-handler sleep)."""
    api.get("/api/channels")  # the key's last-use write, out of the way
    body = setup.email_payload(name="Queued")
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done: dict = {}

    def create():
        done["response"] = httpx.post(
            f"{server}/api/channels", json=body, headers=api._headers(None), timeout=30
        )
        done["at"] = time.perf_counter()

    thread = threading.Thread(target=create)
    thread.start()
    time.sleep(0.5)
    assert "response" not in done  # still queued
    # The database itself is free meanwhile: another connection takes its write lock at once.
    other = sqlite3.connect(db.engine.url.database, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    released = time.perf_counter()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    thread.join(10)
    assert done["response"].status_code == 201, done["response"].text
    assert done["at"] - released < 0.25  # woken, not polling with a back-off
    assert lock_is_free()


def test_the_queue_is_released_after_every_kind_of_write(app, api, setup, tenant, monkeypatch):
    """Created, refused by the rules (422), refused before any write (415), read-only key
    (403), a write that raised (500): afterwards the queue is free every time."""
    from core.services import audit

    api.get("/api/channels")
    assert api.post("/api/channels", json=setup.email_payload()).status_code == 201
    assert lock_is_free()
    assert api.post("/api/channels", json={"name": ""}).status_code == 422
    assert lock_is_free()
    plain = api.post("/api/channels", data="x", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    assert lock_is_free()
    reader = factories.ApiClient(api.client, factories.make_api_key(tenant, scope="read"))
    assert reader.post("/api/channels", json=setup.email_payload()).status_code == 403
    assert lock_is_free()

    def crash(*events):
        raise RuntimeError("injected")

    monkeypatch.setattr(audit, "write", crash)
    assert api.post("/api/channels", json=setup.email_payload()).status_code == 500
    assert lock_is_free()


def test_reads_never_queue(app, api, setup):
    """GETs run while a writer holds the queue."""
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        started = time.perf_counter()
        assert api.get("/api/channels").status_code == 200
        assert time.perf_counter() - started < 2
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def wal_bytes() -> int:
    return os.path.getsize(db.engine.url.database + "-wal")


def test_checkpoints_run_after_the_queue_is_released(app, api, setup, monkeypatch):
    """Every CHECKPOINT_EVERY queued write commits, a PASSIVE checkpoint copies the log back
    into the database, once the committing connection has released the writers' queue (another
    writer could take it meanwhile): SQLite's own checkpoint ran inside the commit with the queue
    held, so every writer waited for its copy and fsync. SQLite's is only a backstop now."""
    from core import database

    assert (
        db.session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        == database.AUTOCHECKPOINT_BACKSTOP_PAGES
    )
    db.session.rollback()
    api.get("/api/channels")  # the key's last-use write, out of the way
    payloads = [setup.sms_payload(name=f"Checkpointed {n}") for n in range(25)]
    db.session.commit()  # the factories' own writes (each payload's number), out of the way
    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(database, "_write_commits", 0)
    checkpoints: list[bool] = []
    real = database._checkpoint

    def watched(connection):
        checkpoints.append(lock_is_free())
        real(connection)

    monkeypatch.setattr(database, "_checkpoint", watched)
    sizes = []
    for payload in payloads:
        response = api.post("/api/channels", json=payload)
        assert response.status_code == 201, response.get_json()
        sizes.append(wal_bytes())
    # After writes 4, 8, ..., 24, with the queue free each time for another writer.
    assert checkpoints == [True] * 6
    # The log was copied back and restarted from its start: the file stopped growing. Without
    # the checkpoints (SQLite's backstop only) each of the last 12 writes would have grown it.
    first_writes = sizes[3] - sizes[0]  # three writes' frames, before any checkpoint
    assert sizes[-1] - sizes[12] < first_writes, sizes
