"""The API key cache (core/key_cache.py): no database lookup for a key a worker has verified,
the revocation generation dropping it at once (local file or Redis), fallbacks when the counter
cannot be read, expiry. Across real worker processes: tests/reliability/test_key_cache_live.py."""

from __future__ import annotations

import os
import uuid

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
    start = another_machine.read()
    another_machine.bump()
    fresh_session()
    with counted_statements() as dropped:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(dropped)) == 1

    revoke(tenant, api.key)
    assert another_machine.read() == start + 3
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
