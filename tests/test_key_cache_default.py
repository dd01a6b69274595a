"""Where the API key cache's revocation counter lives when ``API_KEY_CACHE`` is unset (the
deployment's own Redis on PostgreSQL, else off; local on SQLite), and what a Redis that does not
answer costs. The Redis these tests use: ``TEST_KEY_CACHE_REDIS_URL`` (database 12 by default,
one no other test file uses)."""

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

REDIS_URL = os.environ.get("TEST_KEY_CACHE_REDIS_URL", "redis://127.0.0.1:6379/12")
PG = "postgresql+psycopg://app@db.internal/channels"


@pytest.mark.parametrize(
    ("url", "ratelimit_storage", "broker", "expected"),
    [
        ("sqlite:///instance/channels.db", "redis://r:6379/0", "redis://r:6379/1", "local"),
        (PG, "redis://r:6379/0", "redis://r:6379/1", "redis://r:6379/0"),
        (PG, "memory://", "redis://r:6379/1", "redis://r:6379/1"),
        (PG, "rediss://r:6380/0", None, "rediss://r:6380/0"),
        (PG, "memory://", "amqp://guest@mq//", "off"),
        (PG, "redis+sentinel://s:26379/mymaster", None, "off"),
        (PG, "memory://", None, "off"),
        ("postgresql+psycopg://app@127.0.0.1/channels", "memory://", None, "off"),
    ],
)
def test_the_default_is_the_deployments_shared_redis(url, ratelimit_storage, broker, expected):
    """Unset: local on SQLite; on PostgreSQL the rate limits' Redis, else the broker's, else
    off (never local: a database on localhost may be a per-machine PgBouncer)."""
    assert key_cache_module.default_mode(url, ratelimit_storage, broker) == expected


def key_lookups(statements) -> list[str]:
    return [s for s in statements if "FROM api_keys" in s]


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def app_config(app_config):
    """The production layout's Redis settings, API_KEY_CACHE unset."""
    return {
        **app_config,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "BROKER_URL": REDIS_URL,
        "RATELIMIT_KEY_NAMESPACE": uuid.uuid4().hex,
    }


def test_with_the_production_redis_a_get_is_one_statement_and_revocation_is_at_once(
    app, api, tenant, setup
):
    """PostgreSQL with RATELIMIT_STORAGE_URI on Redis: keys are cached against a counter in that
    Redis (GET of one channel is its one statement), another machine's bump drops them, and a
    revoked key is refused by the next request. SQLite keeps its local counter."""
    if not _redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    assert app.config["API_KEY_CACHE"] is None
    channel_id = factories.make_channel(setup).id
    statements = count_request(lambda: api.get(f"/api/channels/{channel_id}"))
    assert key_lookups(statements) == [] and len(statements) == 1, statements
    generation = key_cache_module.key_cache().generation
    if db.engine.dialect.name == "sqlite":
        assert isinstance(generation, key_cache_module.LocalGeneration)
        return
    assert isinstance(generation, key_cache_module.RedisGeneration)
    another_machine = key_cache_module.RedisGeneration(
        REDIS_URL, app.config["RATELIMIT_KEY_NAMESPACE"]
    )
    try:
        another_machine.bump()
        fresh_session()
        with counted_statements() as dropped:
            assert api.get("/api/channels").status_code == 200
        assert len(key_lookups(dropped)) == 1
        prefix = "_".join(api.key.split("_", 2)[:2])
        key_id = db.session.query(ApiKey.id).filter(ApiKey.prefix == prefix).scalar()
        accounts.revoke_api_key(tenant.id, key_id, Actor.system())
        db.session.commit()
        assert api.get("/api/channels").status_code == 401
    finally:
        another_machine.client.delete(another_machine.key)


def test_an_unanswering_redis_sends_keys_to_the_database_without_asking_it_each_time(
    app, api, monkeypatch
):
    """The counter cannot be read: the key is looked up in the database (never served from
    the cache), and the next requests do not try Redis again until the back-off ends."""
    app.config["API_KEY_CACHE"] = f"redis://127.0.0.1:{closed_port()}/12"
    cache = key_cache_module.key_cache()
    reads = []
    real_read = cache.generation.read

    def counted_read():
        reads.append(1)
        return real_read()

    monkeypatch.setattr(cache.generation, "read", counted_read)
    for expected_reads in (1, 1, 1):
        fresh_session()
        with counted_statements() as statements:
            assert api.get("/api/channels").status_code == 200
        assert len(key_lookups(statements)) == 1
        assert len(reads) == expected_reads
    cache._unreadable_until = 0.0  # the back-off is over: Redis is asked again
    fresh_session()
    with counted_statements() as statements:
        assert api.get("/api/channels").status_code == 200
    assert len(key_lookups(statements)) == 1 and len(reads) == 2
