"""Rate limits: per API key on /api and per account / per IP on sign-in, in memory and in Redis.

Each test enables the limiter with low limits. The Redis variant uses a key namespace unique to
the test run, so that runs sharing the Redis on this machine never see each other's counters,
and deletes its keys afterwards.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from bs4 import BeautifulSoup
from sqlalchemy import event, select

from core.extensions import db
from core.limits import SIGNIN_ACCOUNT_MESSAGE, SIGNIN_MESSAGE
from core.models import ApiKey, AuditEvent, PlatformEvent, User
from tests import factories
from tests.conftest import base_config
from tests.console.conftest import make_console_user
from tests.console.helpers import PASSWORD

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """The limiter's storage URI and a namespace unique to this test."""
    namespace = f"channels-test-{uuid.uuid4().hex}:"
    if request.param == "memory":
        yield "memory://", namespace
        return
    if not _redis_available():
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    yield REDIS_URL, namespace
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{namespace}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def app_config(database_url, storage):
    """Limits on, low: 3 API requests per key, 6 failed API authentications per IP and 2
    sign-in attempts per minute."""
    uri, namespace = storage
    config = base_config(database_url)
    config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=uri,
        RATELIMIT_KEY_NAMESPACE=namespace,
        RATELIMIT_API="3 per minute",
        RATELIMIT_API_AUTH_FAILURES="6 per minute",
        RATELIMIT_SIGNIN="2 per minute",
        WTF_CSRF_ENABLED=False,
    )
    return config


def _get(client, key):
    return client.get("/api/channels", headers={"Authorization": f"Bearer {key}"})


def test_api_limit_is_per_key_with_429_envelope_and_retry_after(app, client, tenant):
    """4th request of a key in a minute: 429 rate_limited + Retry-After; other keys unaffected."""
    first, second = factories.make_api_key(tenant), factories.make_api_key(tenant)

    assert [_get(client, first).status_code for _ in range(3)] == [200, 200, 200]
    limited = _get(client, first)

    assert limited.status_code == 429
    assert limited.json["error"]["code"] == "rate_limited"
    assert set(limited.json) == {"error"}
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert limited.mimetype == "application/json"
    assert _get(client, second).status_code == 200
    # Writes count against the same budget, and the limit answers before anything is written.
    created = client.post(
        "/api/integrations",
        json={"name": "x", "channel_type": "email", "provider": "console"},
        headers={"Authorization": f"Bearer {first}"},
    )
    assert created.status_code == 429


def test_api_limit_cannot_be_exhausted_for_a_key_by_guessing_its_prefix(app, client, tenant):
    """Made-up keys sharing a real key's public prefix have their own budget."""
    real = factories.make_api_key(tenant)
    stored = db.session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant.id)).one()
    for n in range(5):
        assert _get(client, f"{stored.prefix}_forged{n}").status_code == 401
    assert _get(client, real).status_code == 200


def _get_from(client, key, ip):
    return client.get(
        "/api/channels",
        headers={"Authorization": f"Bearer {key}"},
        environ_overrides={"REMOTE_ADDR": ip},
    )


def test_made_up_keys_are_limited_per_client_address(app, client, tenant):
    """Every made-up key has a budget of its own, so 401s are counted per client IP as well:
    the 7th guess in a minute is a 429 before any key is looked up, and so is a valid key from
    that address; other addresses are not affected, and successful requests are not counted."""
    keys = [factories.make_api_key(tenant) for _ in range(3)]
    stored = db.session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant.id)).first()
    # 9 successful requests from one address (3 keys, 3 each): none of them is a failure.
    assert {_get_from(client, key, "192.0.2.10").status_code for key in keys for _ in range(3)} == {
        200
    }
    guesses = [_get_from(client, f"{stored.prefix}_guess{n}", "192.0.2.20") for n in range(6)]
    assert [r.status_code for r in guesses] == [401] * 6

    statements: list[str] = []
    with _counting(statements):
        refused = _get_from(client, f"{stored.prefix}_guess7", "192.0.2.20")
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert "unknown or revoked API key from this address" in refused.json["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert not any("api_keys" in s for s in statements), "no key lookup once limited"

    fresh = factories.make_api_key(tenant)
    assert _get_from(client, fresh, "192.0.2.20").status_code == 429  # the address, any key
    assert _get_from(client, fresh, "192.0.2.30").status_code == 200  # another address
    assert _get_from(client, f"{stored.prefix}_guess8", "192.0.2.30").status_code == 401


@contextmanager
def _counting(statements: list[str]):
    """The SQL the app's engine runs inside the block."""

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_rate_limit_counters_never_hold_the_key(app, client, tenant, storage):
    """Redis/memory keys are hashes: the API key itself is not in the limiter's storage."""
    key = factories.make_api_key(tenant)
    for _ in range(4):
        _get(client, key)
    uri, namespace = storage
    if uri.startswith("redis"):
        stored = [k.decode() for k in redis.Redis.from_url(uri).scan_iter(match=f"*{namespace}*")]
    else:
        from core.limits import limiter

        memory = limiter.storage  # moving-window entries live in .events
        stored = [k for k in [*memory.events, *memory.storage] if namespace in k]
    assert stored
    assert not any(key in k or key.split("_")[1] in k for k in stored)


def _sign_in(client, email, password="wrong-password-123", ip="203.0.113.1"):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_overrides={"REMOTE_ADDR": ip},
    )


def test_signin_limit_per_account_says_so_on_the_form(app, client, tenant):
    """Third attempt on one account in a minute (from different IPs): 429, and the sign-in form
    again with the reason inline, the email kept and the password not echoed."""
    user = make_console_user("limited@example.org", "admin", tenant)
    assert _sign_in(client, user.email, ip="203.0.113.1").status_code == 422
    assert _sign_in(client, user.email.upper(), ip="203.0.113.2").status_code == 422

    limited = _sign_in(client, user.email, password="correct-horse-battery", ip="203.0.113.3")

    assert limited.status_code == 429
    assert limited.mimetype == "text/html"
    page = BeautifulSoup(limited.get_data(as_text=True), "html.parser")
    form = page.find("form", action="/login")
    assert form is not None, "the sign-in form is shown again"
    assert "Too many sign-in attempts" in form.get_text()
    assert form.find("input", attrs={"name": "email"})["value"] == user.email
    assert "correct-horse-battery" not in limited.get_data(as_text=True)
    assert not form.find("input", attrs={"name": "password"}).get("value")
    assert int(limited.headers["Retry-After"]) >= 1
    assert db.session.get(User, user.id).last_login_at is None  # the limit answered before sign-in
    # Another account from a fresh IP is not affected; viewing the form is never limited.
    other = make_console_user("other@example.org", "admin", tenant)
    assert _sign_in(client, other.email, ip="203.0.113.9").status_code == 422
    assert client.get("/login").status_code == 200


def test_signin_limit_per_ip(app, client, tenant):
    """Third attempt from one IP in a minute, whatever the account: 429."""
    emails = [make_console_user(f"ip{n}@example.org", "admin", tenant).email for n in range(3)]
    assert _sign_in(client, emails[0]).status_code == 422
    assert _sign_in(client, emails[1]).status_code == 422
    assert _sign_in(client, emails[2]).status_code == 429
    assert _sign_in(client, emails[2], ip="198.51.100.7").status_code == 422


class TestAccountLimitOverAnHour:
    """The defaults: RATELIMIT_SIGNIN 10 per minute, RATELIMIT_SIGNIN_ACCOUNT 100 per hour."""

    @pytest.fixture
    def app_config(self, database_url, storage):
        """Limits on, at their declared defaults, in memory or in Redis."""
        uri, namespace = storage
        return base_config(database_url) | {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": uri,
            "RATELIMIT_KEY_NAMESPACE": namespace,
            "WTF_CSRF_ENABLED": False,
        }

    @staticmethod
    def lockouts(user_id: str) -> list[AuditEvent]:
        db.session.rollback()
        query = select(AuditEvent).where(
            AuditEvent.action == "user.sign_in_locked", AuditEvent.resource_id == user_id
        )
        return list(db.session.scalars(query.order_by(AuditEvent.created_at)))

    def test_the_101st_attempt_in_an_hour_is_refused_even_spread_over_minutes(
        self, app, client, tenant
    ):
        """100 wrong passwords at two a minute from ever-new addresses (under every per-minute
        limit): the 101st attempt, the right password, is refused with 429 and says why; the
        lockout is audited once; an hour after the first attempts it signs in again."""
        assert app.config["RATELIMIT_SIGNIN_ACCOUNT"] == "100 per hour"
        user = make_console_user("patient@example.org", "admin", tenant)
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with time_machine.travel(start, tick=False) as clock:
            for attempt in range(100):
                clock.move_to(start + timedelta(seconds=30 * attempt))
                assert _sign_in(client, user.email, ip=f"203.0.113.{attempt}").status_code == 422
            clock.move_to(start + timedelta(minutes=55))
            refused = _sign_in(client, user.email, PASSWORD, ip="::1")
            assert refused.status_code == 429
            assert SIGNIN_ACCOUNT_MESSAGE in refused.get_data(as_text=True)
            assert 300 <= int(refused.headers["Retry-After"]) <= 302  # the first leaves at 60:00
            assert _sign_in(client, user.email, ip="192.0.2.7").status_code == 429
            assert db.session.get(User, user.id).last_login_at is None
            [locked] = self.lockouts(user.id)
            assert locked.changes == {"reason": "rate_limited", "limit": "100 per 1 hour"}
            assert (locked.tenant_id, locked.actor_name) == (tenant.id, "sign-in")
            # Another account is not affected.
            other = make_console_user("other@example.org", "admin", tenant)
            assert _sign_in(client, other.email, ip="192.0.2.8").status_code == 422
            clock.move_to(start + timedelta(minutes=60, seconds=1))
            assert _sign_in(client, user.email, PASSWORD, ip="::1").status_code == 303
        assert len(self.lockouts(user.id)) == 1

    def test_a_minute_lockout_is_audited_once_per_minute(self, app, client, tenant):
        """Past 10 attempts in a minute: every further one is refused, one lockout event; the
        next minute's lockout is another event."""
        user = make_console_user("hasty@example.org", "admin", tenant)
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with time_machine.travel(start, tick=False) as clock:
            for attempt in range(10):
                assert _sign_in(client, user.email, ip=f"198.51.100.{attempt}").status_code == 422
            for attempt in range(5):
                limited = _sign_in(client, user.email, ip=f"192.0.2.{attempt}")
                assert limited.status_code == 429
                assert SIGNIN_MESSAGE in limited.get_data(as_text=True)
            assert [e.changes["limit"] for e in self.lockouts(user.id)] == ["10 per 1 minute"]
            clock.move_to(start + timedelta(minutes=1, seconds=1))
            for attempt in range(11):
                _sign_in(client, user.email, ip=f"203.0.113.{attempt}")
        assert [e.changes["limit"] for e in self.lockouts(user.id)] == ["10 per 1 minute"] * 2

    def test_support_staff_lockouts_go_to_the_platform_log(self, app, client):
        """A support user has no tenant: the lockout is a platform event."""
        user = make_console_user("sam@support.example", "support")
        for attempt in range(11):
            _sign_in(client, user.email, ip=f"198.51.100.{attempt}")
        db.session.rollback()
        [locked] = db.session.scalars(
            select(PlatformEvent).where(PlatformEvent.action == "user.sign_in_locked")
        ).all()
        assert (locked.resource_id, locked.changes["limit"]) == (user.id, "10 per 1 minute")
        assert db.session.scalar(select(AuditEvent)) is None
