"""Faults: the database going away under gunicorn, and a worker killed in the middle of writes.

The outage test never touches the shared PostgreSQL server: it brings up a throwaway
PostgreSQL 15 cluster of its own (initdb + pg_ctl as the ``postgres`` OS user), so it runs in
the SQLite suite run as well as in the PostgreSQL one.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis
from sqlalchemy import func, select

from core.extensions import db
from core.models import AuditEvent, Channel, PhoneNumber
from tests import factories
from tests.conftest import _migrate
from tests.reliability.live import PG_BIN, LiveServer, PrivatePostgres, in_parallel, statuses


def payload_named(base: dict, name: str) -> dict:
    return {**base, "name": name}


def _assert_unavailable(reply) -> None:
    assert reply.status == 503, (reply.status, reply.body)
    assert reply.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "The service is temporarily unavailable. Retry shortly.",
        }
    }
    assert int(reply.headers["retry-after"]) > 0


# The Redis of the key-cache case (a database number no other test file uses).
KEY_CACHE_REDIS_URL = os.environ.get("TEST_KEY_CACHE_REDIS_URL", "redis://127.0.0.1:6379/12")


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(KEY_CACHE_REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_postgres():
    """A PostgreSQL 15 cluster nobody else uses, removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 server binaries are not installed ({PG_BIN} is missing)")
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _readyz(server) -> tuple[int, dict]:
    reply = server.request("GET", "/readyz")
    return reply.status, reply.json()


@pytest.mark.parametrize("keys", ["database", "redis"])
def test_postgres_outage_answers_503_and_recovers_by_itself(
    private_postgres, tmp_path_factory, keys
):
    """Database stopped mid-run: 503 service_unavailable with Retry-After, /readyz 503 naming the
    database while /healthz stays 200; back: 200/201 again, /readyz 200, on every worker. A
    restart between two requests is not seen at all (dead pooled connections are replaced).
    ``keys``: API keys looked up in the database (API_KEY_CACHE off), or cached against the
    counter in the deployment's Redis (RATELIMIT_STORAGE_URI set, as in production), where a
    request's only statement is its read."""
    extra_env = {}
    if keys == "redis":
        if not _redis_answers():
            pytest.skip(f"Redis does not answer at {KEY_CACHE_REDIS_URL}")
        extra_env = {
            "RATELIMIT_STORAGE_URI": KEY_CACHE_REDIS_URL,
            "RATELIMIT_KEY_NAMESPACE": uuid.uuid4().hex,
        }
    _migrate(private_postgres.url)
    server = LiveServer(private_postgres.url, workers=2, extra_env=extra_env)
    with server.context():
        ready = factories.make_ready_tenant(factories.make_tenant())
        key = factories.make_api_key(ready.tenant)
        base = ready.email_payload()
    server.start(tmp_path_factory.mktemp("gunicorn-outage"))
    try:
        assert _readyz(server)[0] == 200
        assert server.request("GET", "/api/channels", key=key).status == 200
        assert (
            server.request("POST", "/api/channels", payload_named(base, "Before"), key).status
            == 201
        )

        private_postgres.stop("fast")
        down = in_parallel(
            [lambda: server.request("GET", "/api/channels", key=key)] * 4
            + [lambda: server.request("POST", "/api/channels", payload_named(base, "During"), key)]
            * 4
        )
        for reply in down:
            _assert_unavailable(reply)
        assert "text/html" not in down[0].headers["content-type"]
        for _ in range(4):  # whichever worker answers
            status, body = _readyz(server)
            assert status == 503 and body["failed"] == ["database"], body
            assert body["checks"]["database"]["status"] == "unavailable"
            assert server.request("GET", "/healthz").status == 200

        private_postgres.start()
        deadline = time.monotonic() + 30
        codes = []
        while time.monotonic() < deadline:
            codes = statuses(
                in_parallel([lambda: server.request("GET", "/api/channels", key=key)] * 4)
            )
            if codes == [200] * 4:
                break
            assert set(codes) <= {200, 503}, codes
            time.sleep(0.5)
        assert codes == [200] * 4
        assert [_readyz(server)[0] for _ in range(4)] == [200] * 4
        created = server.request("POST", "/api/channels", payload_named(base, "After"), key)
        assert created.status == 201, created.body
        names = [c["name"] for c in server.request("GET", "/api/channels", key=key).json()["data"]]
        assert names == ["After", "Before"]

        # Restarted with no request in between: every worker's pooled connections are dead.
        # They are replaced when checked out (core.database.connection_is_dead), so not one
        # request sees the restart.
        private_postgres.stop("fast")
        private_postgres.start()
        after_restart = in_parallel(
            [lambda: server.request("GET", "/api/channels", key=key)] * 4
            + [lambda: server.request("GET", "/readyz")] * 4
        )
        assert statuses(after_restart) == [200] * 8, [r.body for r in after_restart]
        assert server.server_errors() == []
    finally:
        server.stop()


def test_worker_killed_mid_load_leaves_no_partial_rows(live):
    """SIGKILL two gunicorn workers during parallel creates: every row committed is whole."""
    with live.context():
        ready = factories.make_ready_tenant(factories.make_tenant())
        key = factories.make_api_key(ready.tenant)
        tenant_id = ready.tenant.id
        sms_integration = ready.sms_integration.id
        email_base = ready.email_payload()
        seed_number = ready.number.id  # added by the factory without a channel

    jobs, done = [], []
    progress = threading.Condition()

    def tracked(method, path, body):
        def job():
            try:
                return live.request(method, path, body, key)
            finally:
                with progress:
                    done.append(1)
                    progress.notify_all()

        return job

    for n in range(30):
        number = {"phone_number": f"+1415555{3000 + n:04d}", "integration_id": sms_integration}
        jobs.append(tracked("POST", "/api/phone_numbers", number))
        jobs.append(tracked("POST", "/api/channels", payload_named(email_base, f"Load {n}")))

    killed = []

    def killer():
        for threshold in (len(jobs) // 4, len(jobs) // 2):
            with progress:
                progress.wait_for(lambda t=threshold: len(done) >= t, timeout=120)
            killed.append(live.kill_worker())

    thread = threading.Thread(target=killer)
    thread.start()
    replies = in_parallel(jobs, start_together=False)
    thread.join()

    assert len(killed) == 2
    codes = statuses(replies)
    # A request on a killed worker gets no answer at all, or (killed while writing it) part of
    # one, which the client cannot read and so is no acknowledgement; every whole answer that
    # came is a success.
    assert set(codes) <= {201, "RemoteDisconnected", "ConnectionResetError", "IncompleteRead"}, (
        codes
    )
    assert codes.count(201) >= len(jobs) // 2

    live.wait_ready()  # gunicorn replaced the killed workers
    assert live.request("GET", "/api/channels", key=key).status == 200
    with live.context():
        numbers = db.session.scalars(
            select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id)
        ).all()
        channels = db.session.scalars(select(Channel).where(Channel.tenant_id == tenant_id)).all()
        audited = set(
            db.session.scalars(
                select(AuditEvent.resource_id).where(
                    AuditEvent.tenant_id == tenant_id, AuditEvent.action == "channel.create"
                )
            )
        )
        defaults = db.session.execute(
            select(Channel.channel_type, func.count())
            .where(Channel.tenant_id == tenant_id, Channel.is_default.is_(True))
            .group_by(Channel.channel_type)
        ).all()
    channel_numbers = {c.phone_number_id for c in channels if c.channel_type == "sms"}
    loaded = [n for n in numbers if n.id != seed_number]
    assert loaded and all(n.id in channel_numbers for n in loaded)  # each has its auto channel
    assert all(c.id in audited for c in channels)  # every channel has its audit event
    assert all(count <= 1 for _, count in defaults)
    # Every 201 the clients saw is in the database (nothing acknowledged was lost).
    acknowledged = [r.json()["id"] for r in replies if not isinstance(r, Exception)]
    stored = {n.id for n in numbers} | {c.id for c in channels}
    assert set(acknowledged) <= stored
