"""Rate limits (Flask-Limiter): per API key on /api, per account and per IP on sign-in.

Configuration (declared and typed in ``core.settings``):

- ``RATELIMIT_API`` — limit per API key, default ``600 per minute``.
- ``RATELIMIT_API_AUTH_FAILURES`` — failed API authentications (401s) per client IP, default
  ``60 per minute``; past it, that address gets 429 on /api before any key is looked up.
- ``RATELIMIT_SIGNIN`` — sign-in attempts (POSTs) per account and, separately, per client IP;
  also the password changes (POSTs) of one signed-in user.
- ``RATELIMIT_SIGNIN_ACCOUNT`` — sign-in attempts per account over a longer window, default
  ``100 per hour``: a slow guesser who keeps under the per-minute limit still gets no more than
  that many tries a window.
- ``RATELIMIT_STORAGE_URI`` — ``memory://`` (one process) or ``redis://host:6379/0`` so that
  every gunicorn worker shares the counters.
- ``RATELIMIT_KEY_NAMESPACE`` — prepended to every counter key; give each deployment (or test
  run) that shares a Redis its own.
- ``RATELIMIT_ENABLED`` — False switches limiting off (the general test suite does).

Decisions:

- The API counter is keyed by a SHA-256 of the presented bearer token, never by the token
  itself (counters live in Redis; secrets must not) and never by the public key prefix (anyone
  who saw a prefix could otherwise exhaust another tenant's budget with made-up keys).
  Requests without a bearer token are counted per client IP.
- Made-up keys would each get a budget of their own there, and each costs a database lookup, so
  401s are also counted per client IP (counted after the response, only when it is a 401). An
  address over that limit is refused with 429 whatever key it sends next, valid ones included,
  until the window moves on: the price of not trusting a source that keeps guessing. Behind a
  proxy, set ``TRUSTED_PROXIES`` so that the client's address is the one counted.
- The moving-window strategy: no double burst at window boundaries, and deterministic tests.
- Reaching an account's sign-in limit (either window) is a lockout: audited
  ``user.sign_in_locked`` in the account's log (core.services.console_sessions), once per window
  of that limit — an attacker hammering a locked account must not fill its log. The once-only
  marker is a counter in the same storage, so every worker agrees.
- A rate-limit storage outage must not take the API down: errors are logged and swallowed and
  the counters fall back to process memory until the storage is back.
- Everything that must differ between apps is read from ``current_app.config`` at request time,
  because the extension object (module-level, like every extension here) keeps some settings
  from the first ``init_app``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import limits
from flask import Flask, current_app, request
from flask_limiter import Limiter

SIGNIN_MESSAGE = "Too many sign-in attempts. Please wait a minute, then try again."
SIGNIN_ACCOUNT_MESSAGE = (
    "Too many sign-in attempts for this account: signing in to it is paused for up to an hour. "
    "Try again later, or ask an admin of your team for help."
)
AUTH_FAILURES_MESSAGE = (
    "Too many requests with an unknown or revoked API key from this address. "
    "Check the key, then retry after Retry-After seconds."
)


def _namespaced(key: str) -> str:
    return f"{current_app.config['RATELIMIT_KEY_NAMESPACE']}{key}"


def client_ip() -> str:
    """The client address as the WSGI server sees it (put ProxyFix in front behind a proxy)."""
    return request.remote_addr or "unknown"


def api_key_identity() -> str:
    """The rate-limit key of an API request: a hash of the bearer token, else the client IP."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() == "bearer" and presented:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return _namespaced(f"apikey:{digest}")
    return _namespaced(f"ip:{client_ip()}")


def api_auth_failures_identity() -> str:
    """Failed API authentications from one client IP."""
    return _namespaced(f"api-auth-failures-ip:{client_ip()}")


def signin_ip_identity() -> str:
    """Sign-in attempts from one IP address."""
    return _namespaced(f"signin-ip:{client_ip()}")


def signin_account_identity() -> str:
    """Sign-in attempts against one account (the submitted email, normalised; hashed)."""
    email = (request.form.get("email") or "").strip().lower()
    digest = hashlib.sha256(email.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return _namespaced(f"signin-account:{digest}")


def _api_limit() -> str:
    return current_app.config["RATELIMIT_API"]


def _api_auth_failures_limit() -> str:
    return current_app.config["RATELIMIT_API_AUTH_FAILURES"]


def _signin_limit() -> str:
    return current_app.config["RATELIMIT_SIGNIN"]


def _signin_account_limit() -> str:
    return current_app.config["RATELIMIT_SIGNIN_ACCOUNT"]


limiter = Limiter(
    key_func=client_ip,
    strategy="moving-window",
    # Flask-Limiter's headers would put Retry-After on every response; core.http sets it on 429s.
    headers_enabled=False,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
)


def limit_api_blueprint(bp) -> None:
    """Apply the per-key limit to every route of the API blueprint (call once, at import)."""
    # shared_limit: one budget per key across every route (``limit`` would count per endpoint).
    limiter.shared_limit(_api_limit, scope="api", key_func=api_key_identity)(bp)
    limiter.shared_limit(
        _api_auth_failures_limit,
        scope="api-auth-failures",
        key_func=api_auth_failures_identity,
        deduct_when=lambda response: response.status_code == 401,
        error_message=AUTH_FAILURES_MESSAGE,
    )(bp)


def signin_rate_limits(view: Callable) -> Callable:
    """Decorate the sign-in view: POSTs are limited per IP, and per account twice (the
    per-minute limit and the longer ``RATELIMIT_SIGNIN_ACCOUNT``)."""
    per_ip = limiter.limit(
        _signin_limit,
        key_func=signin_ip_identity,
        methods=["POST"],
        scope="signin-ip",
        error_message=SIGNIN_MESSAGE,
    )
    per_account = limiter.limit(
        _signin_limit,
        key_func=signin_account_identity,
        methods=["POST"],
        scope="signin-account",
        error_message=SIGNIN_MESSAGE,
        on_breach=_record_lockout,
    )
    per_account_long = limiter.limit(
        _signin_account_limit,
        key_func=signin_account_identity,
        methods=["POST"],
        scope="signin-account-long",
        error_message=SIGNIN_ACCOUNT_MESSAGE,
        on_breach=_record_lockout,
    )
    return per_ip(per_account(per_account_long(view)))


def _record_lockout(request_limit) -> None:
    """An account's sign-in limit was reached: audit the lockout, once per window of that
    limit (a marker counter "1 per <window>" in the limiter's storage decides which request
    records it). Runs before the view, so it commits its own write."""
    from core.extensions import db
    from core.services.console_sessions import record_sign_in_lockout

    item = request_limit.limit
    marker = type(item)(1, item.multiples)
    if not limiter.limiter.hit(marker, *request_limit.request_args, "lockout"):
        return
    try:
        record_sign_in_lockout(request.form.get("email"), str(item))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise  # logged by Flask-Limiter (swallow_errors): the 429 stands either way


def password_change_identity() -> str:
    """Password changes of one signed-in user (a stolen session must not guess the current
    password faster than sign-in could)."""
    from flask_login import current_user

    return _namespaced(f"password-change:{getattr(current_user, 'id', 'anonymous')}")


def password_change_rate_limit(view: Callable) -> Callable:
    """Decorate the password-change view: POSTs limited per user, at the sign-in rate."""
    return limiter.limit(
        _signin_limit,
        key_func=password_change_identity,
        methods=["POST"],
        scope="password-change",
        error_message="Too many password change attempts. Please wait a minute, then try again.",
    )(view)


def retry_after_seconds() -> int:
    """Seconds until the limit that was just hit lets a request through again (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)


def init_limiter(app: Flask) -> None:
    """Attach the limiter to the app with its configuration."""
    limiter.init_app(app)


# --- second factors ---------------------------------------------------------------------------
# Wrong codes and refused passkey assertions are counted per account, wherever they are tried
# (the sign-in's second step, a confirmation before a sensitive action, confirming a new
# authenticator app): a guesser gains nothing by switching forms. Only failures count, so a
# user who types their codes right is never held up. Called from code, not as a decorator,
# because "failure" is known only after the check.

FACTOR_LIMIT_MESSAGE = (
    "Too many wrong codes for this account. Wait a few minutes, then try again "
    "(an administrator can reset your factors if you lost them)."
)
auth_log = logging.getLogger("channels.auth")


def _factor_key(user_id: str) -> str:
    return _namespaced(f"mfa-failures:{user_id}")


def _factor_limits() -> list:
    return limits.parse_many(current_app.config["RATELIMIT_MFA"])


def factor_attempts_allowed(user_id: str) -> bool:
    """Whether the account may try a factor now (False once RATELIMIT_MFA failures are spent).

    A rate-limit storage outage lets attempts through (logged), as every other limit here does.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return True
    try:
        strategy = limiter.limiter
        return all(strategy.test(item, _factor_key(user_id)) for item in _factor_limits())
    except Exception:  # noqa: BLE001 - the storage's own errors; see the docstring
        auth_log.exception("rate-limit storage failed: second-factor attempts not limited")
        return True


def count_factor_failure(user_id: str) -> None:
    """Count one wrong code or refused passkey against the account."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    try:
        strategy = limiter.limiter
        for item in _factor_limits():
            strategy.hit(item, _factor_key(user_id))
    except Exception:  # noqa: BLE001
        auth_log.exception("rate-limit storage failed: a second-factor failure was not counted")
