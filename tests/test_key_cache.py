"""The API key cache (core/key_cache.py): no database lookup for a key a worker has verified,
the revocation generation dropping it at once (local file or Redis), fallbacks when the counter
cannot be read, expiry. Across real worker processes: tests/reliability/test_key_cache_live.py."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from contextlib import contextmanager

import pytest
import redis

from core import key_cache as key_cache_module
from core.extensions import db
from core.models import ApiKey
from core.services import accounts
from core.services.audit import Actor
from tests import factories
from tests.api.test_query_counts import count_request, counted_statements, fresh_session
from tests.services.fake_providers import closed_port

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MODE = "local"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "API_KEY_CACHE": MODE, "RATELIMIT_KEY_NAMESPACE": uuid.uuid4().hex}


def key_lookups(statements) -> list[str]:
    return [s for s in statements if "FROM api_keys" in s]


def revoke(tenant, key: str) -> None:
    prefix = "_".join(key.split("_", 2)[:2])
    key_id = db.session.query(ApiKey.id).filter(ApiKey.prefix == prefix).scalar()
    accounts.revoke_api_key(tenant.id, key_id, Actor.system())
    db.session.commit()


def test_a_verified_key_costs_no_statement(api, setup):
    """The second request with a key runs without looking it up: GET of one channel is 1."""
    channel_id = factories.make_channel(setup).id
    statements = count_request(lambda: api.get(f"/api/channels/{channel_id}"))
    assert key_lookups(statements) == [] and len(statements) == 1, statements


def test_revoking_drops_the_key_at_once(api, tenant, setup):
    """Cached, revoked: the very next request is refused (and the other key stays cached)."""
    other = factories.ApiClient(api.client, factories.make_api_key(tenant))
    assert api.get("/api/channels").status_code == 200
    assert other.get("/api/channels").status_code == 200
    revoke(tenant, api.key)
    assert api.get("/api/channels").status_code == 401
    assert other.get("/api/channels").status_code == 200


def test_a_revocation_by_another_process_is_seen(app, api, tenant):
    """Another process bumps the shared counter (a fresh mapping of the same file): the cache
    of this one is dropped, so the next request looks its key up again."""
    assert api.get("/api/channels").status_code == 200
    cache = key_cache_module.key_cache()
    other_process = key_cache_module.LocalGeneration(cache.generation.path)
    fresh_session()
    with counted_statements() as before:
        assert api.get("/api/channels").status_code == 200
    assert key_lookups(before) == []
    other_process.bump()
    fresh_session()
    with counted_statements() as after:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(after)) == 1


def test_entries_expire(api, monkeypatch):
    """Past TTL_SECONDS an entry is read from the database again."""
    assert api.get("/api/channels").status_code == 200
    monkeypatch.setattr(key_cache_module, "TTL_SECONDS", -1)
    fresh_session()
    with counted_statements() as statements:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(statements)) == 1


def test_unknown_keys_are_not_cached(api):
    """A made-up key is looked up every time (and refused)."""
    bogus = factories.ApiClient(api.client, "chk_deadbeef_" + "x" * 40)
    for _ in range(2):
        fresh_session()
        with counted_statements() as statements:
            assert bogus.get("/api/channels").status_code == 401
        assert len(key_lookups(statements)) == 1


def test_off_looks_every_key_up(app, api):
    """API_KEY_CACHE=off: one lookup per request, as before the cache."""
    app.config["API_KEY_CACHE"] = "off"
    api.get("/api/channels")
    fresh_session()
    with counted_statements() as statements:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(statements)) == 1


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def test_redis_counter_revocation_and_outage(app, api, tenant):
    """On Redis: a bump by another machine drops the cache; a revocation bumps it twice
    (before and after commit); Redis down: keys are looked up in the database, and a revocation
    that cannot bump the counter fails and is rolled back."""
    if not _redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    app.config["API_KEY_CACHE"] = REDIS_URL
    cache = key_cache_module.key_cache()
    assert isinstance(cache.generation, key_cache_module.RedisGeneration)
    assert api.get("/api/channels").status_code == 200
    fresh_session()
    with counted_statements() as cached:
        assert api.get("/api/channels").status_code == 200
    assert key_lookups(cached) == []

    another_machine = key_cache_module.RedisGeneration(
        REDIS_URL, app.config["RATELIMIT_KEY_NAMESPACE"]
    )
    start = another_machine.value()
    another_machine.bump()
    fresh_session()
    with counted_statements() as dropped:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(dropped)) == 1

    revoke(tenant, api.key)
    assert another_machine.value() == start + 3
    assert api.get("/api/channels").status_code == 401
    another_machine.client.delete(another_machine.key)

    # Redis unreachable: the keys still work (from the database); a revocation fails whole.
    app.config["API_KEY_CACHE"] = f"redis://127.0.0.1:{closed_port()}/7"
    fresh_key = factories.make_api_key(tenant)
    fresh = factories.ApiClient(api.client, fresh_key)
    fresh_session()
    with counted_statements() as statements:
        assert fresh.get("/api/channels").status_code == 200
    assert len(key_lookups(statements)) == 1
    with pytest.raises(key_cache_module.CounterUnavailable) as refused:
        revoke(tenant, fresh_key)  # the console and the API answer it with a 503
    assert isinstance(refused.value.__cause__, redis.RedisError)
    db.session.rollback()
    app.config["API_KEY_CACHE"] = "off"
    assert fresh.get("/api/channels").status_code == 200  # not revoked


def test_apps_with_their_own_namespace_on_one_redis_have_their_own_cache(app):
    """The cache is per process, Redis and namespace: a second app of the process on the same
    Redis with another ``RATELIMIT_KEY_NAMESPACE`` reads its own counter (sharing the first
    app's cache, it missed every revocation made under its namespace)."""
    if not _redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    app.config["API_KEY_CACHE"] = REDIS_URL
    first = key_cache_module.key_cache()
    app.config["RATELIMIT_KEY_NAMESPACE"] = other = uuid.uuid4().hex
    second = key_cache_module.key_cache()
    assert second is not first
    assert second.generation.key.startswith(other) and not first.generation.key.startswith(other)


@pytest.mark.parametrize("value", ["sometimes", "http://cache.internal"])
def test_bad_api_key_cache_values_stop_the_app(app_config, value):
    """Anything but off, local or a redis URL refuses to start."""
    from app import create_app
    from core.settings import SettingsError

    with pytest.raises(SettingsError, match="API_KEY_CACHE"):
        create_app({**app_config, "API_KEY_CACHE": value})


# The Redis counter under CLIENT TRACKING (core.key_cache.RedisGeneration): no command per
# request, a bump seen by the next request of every process, a lost tracking connection safe.


@contextmanager
def redis_commands(generation):
    """The commands Redis runs inside the block that come from ``generation``'s tracking
    connection or name its counter, as Redis's MONITOR reports them (a marker ends the wait)."""
    marker = f"end-{uuid.uuid4().hex}"
    connection = getattr(generation, "_tracking", None)
    port = str(connection._sock.getsockname()[1]) if connection is not None else None
    sent: list[str] = []
    with redis.Redis.from_url(REDIS_URL).monitor() as monitor:
        yield sent
        redis.Redis.from_url(REDIS_URL).echo(marker)
        while True:
            command = monitor.next_command()
            if marker in command["command"]:
                break
            if command["client_port"] == port or generation.key in command["command"]:
                sent.append(command["command"])


def _tracked(app, monkeypatch):
    if not _redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    # No PING in the way (raising=False: the module of before tracking fails the assertions).
    monkeypatch.setattr(key_cache_module, "CONFIRM_SECONDS", 3600.0, raising=False)
    app.config["API_KEY_CACHE"] = REDIS_URL
    return key_cache_module.key_cache()


def test_the_redis_counter_costs_no_command_and_a_bump_is_seen_by_the_next_request(
    app, api, monkeypatch
):
    """A cached key costs no Redis command at all (the counter is tracked, not read); another
    machine's bump reaches this process as a push, which the very next request finds without
    sending anything either: it drops the cache and looks the key up in the database."""
    cache = _tracked(app, monkeypatch)
    assert api.get("/api/channels").status_code == 200  # the tracking connection opens
    with redis_commands(cache.generation) as sent:
        for _ in range(3):
            fresh_session()
            with counted_statements() as cached:
                assert api.get("/api/channels").status_code == 200
            assert key_lookups(cached) == []
    assert sent == []

    another_machine = key_cache_module.RedisGeneration(
        REDIS_URL, app.config["RATELIMIT_KEY_NAMESPACE"]
    )
    another_machine.bump()
    with redis_commands(cache.generation) as sent:
        fresh_session()
        with counted_statements() as dropped:
            assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(dropped)) == 1 and sent == []
    fresh_session()
    with counted_statements() as cached_again:
        assert api.get("/api/channels").status_code == 200
    assert key_lookups(cached_again) == []
    another_machine.client.delete(another_machine.key)


def _other_process(app_config, key, requests):
    """Another worker process: its own app, key cache and tracking connection; answers each
    request it is sent with (status, key lookups, Redis commands sent)."""
    from app import create_app

    sent = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counted_send(self, command, *args, **kwargs):
        sent.append(command)
        return real_send(self, command, *args, **kwargs)

    redis.connection.AbstractConnection.send_packed_command = counted_send
    try:
        application = create_app(app_config)
        with application.app_context():
            api = factories.ApiClient(application.test_client(), key)
            while requests.recv():
                db.session.expire_all()
                sent.clear()
                with counted_statements() as statements:
                    status = api.get("/api/channels").status_code
                requests.send((status, len(key_lookups(statements)), len(sent)))
    except BaseException as exc:  # shown by the parent's failing assertion
        requests.send(repr(exc))
        raise


def test_a_key_revoked_through_the_console_is_refused_by_another_process_at_once(
    app, app_config, tenant, monkeypatch
):
    """Two processes, two apps on one Redis: the other process has the key cached (its
    request sends no Redis command); the console revokes it here; the other process's very
    next request is refused."""
    from tests.console.conftest import ConsoleClient, make_console_user
    from tests.console.helpers import htmx_headers, sign_in

    _tracked(app, monkeypatch)
    config = {**app_config, "API_KEY_CACHE": REDIS_URL}
    key = factories.make_api_key(tenant)
    prefix = "_".join(key.split("_", 2)[:2])
    key_id = db.session.query(ApiKey.id).filter(ApiKey.prefix == prefix).scalar()
    admin = make_console_user("keys@example.org", tenant=tenant)
    app.test_client_class = ConsoleClient
    browser = app.test_client()
    assert sign_in(browser, admin.email).status_code == 303

    db.session.commit()
    db.engine.dispose()  # no SQLite connection (nor its lock state) is forked
    here, there = multiprocessing.get_context("fork").Pipe()
    worker = multiprocessing.get_context("fork").Process(
        target=_other_process, args=(config, key, there), daemon=True
    )
    worker.start()
    try:

        def request():
            db.session.commit()  # this process's open transaction would hold SQLite's lock
            here.send(True)
            assert here.poll(30), "the other process did not answer"
            return here.recv()

        assert request()[:2] == (200, 1)
        assert request() == (200, 0, 0)  # cached there, no Redis command
        revoked = browser.post(
            f"/api-keys/{key_id}/revoke", headers=htmx_headers(browser, "/api-keys")
        )
        assert revoked.status_code == 200
        assert request()[:2] == (401, 1)
    finally:
        here.send(False)
        worker.join(10)
    assert worker.exitcode == 0


def _kill(generation) -> None:
    """End the tracking connection from the server's side, as a Redis restart would."""
    port = generation._tracking._sock.getsockname()[1]
    killer = redis.Redis.from_url(REDIS_URL)
    assert killer.client_kill_filter(_type=None, addr=f"127.0.0.1:{port}") == 1
    killer.ping()


def test_a_lost_tracking_connection_drops_the_cache_and_keys_go_to_the_database(
    app, api, monkeypatch
):
    """CLIENT KILL of the tracking connection: the next request finds it ended, so the counter
    is unreadable: the cache is dropped, the key is looked up in the database, and Redis is
    left alone for the backoff; after it a new tracking connection is opened."""
    cache = _tracked(app, monkeypatch)
    assert api.get("/api/channels").status_code == 200
    fresh_session()
    with counted_statements() as cached:
        assert api.get("/api/channels").status_code == 200
    assert key_lookups(cached) == []
    _kill(cache.generation)
    for _ in range(2):  # the second one within the backoff: no new connection either
        fresh_session()
        with counted_statements() as statements:
            assert api.get("/api/channels").status_code == 200
        assert len(key_lookups(statements)) == 1
        assert cache.generation._tracking is None and cache._seen is None
    cache._unreadable_until = 0.0  # the backoff is over
    for lookups in (1, 0):  # a new connection, a new number: read once, then cached
        fresh_session()
        with counted_statements() as statements:
            assert api.get("/api/channels").status_code == 200
        assert len(key_lookups(statements)) == lookups
    assert cache.generation._tracking is not None


def test_a_tracking_connection_that_stops_answering_is_found_by_its_ping(app, api, monkeypatch):
    """Every CONFIRM_SECONDS a read PINGs the tracking connection (a connection cut without a
    FIN or RST says nothing by itself); a PING that times out makes the counter unreadable."""
    cache = _tracked(app, monkeypatch)
    assert api.get("/api/channels").status_code == 200
    monkeypatch.setattr(key_cache_module, "CONFIRM_SECONDS", 0.0)
    cache.generation._confirm_at = 0.0
    with redis_commands(cache.generation) as sent:
        fresh_session()
        with counted_statements() as statements:
            assert api.get("/api/channels").status_code == 200
    assert sent == ["PING"] and key_lookups(statements) == []

    def silent(*args, **kwargs):
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(cache.generation._tracking, "read_response", silent)
    fresh_session()
    with counted_statements() as statements:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(statements)) == 1
    assert cache.generation._tracking is None and cache._seen is None


def test_a_bump_moves_the_bumping_process_without_waiting_for_its_push(app, monkeypatch):
    """The process that bumps (the revoking one) sees its own bump at once, even if Redis's
    push to its tracking connection is still on the wire (Redis on another machine)."""
    cache = _tracked(app, monkeypatch)
    generation = cache.generation
    before = generation.read()
    monkeypatch.setattr(generation._tracking, "can_read", lambda timeout=0: False)  # in flight
    generation.bump()
    assert generation.read() != before
    generation.client.delete(generation.key)
