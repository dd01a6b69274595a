"""Channels: the application factory.

Configuration, lowest to highest precedence: the defaults below, ``instance/config.py``, then
environment variables (DATABASE_URL, SECRET_KEY, CREDENTIALS_KEY, HTMX_SRC, DNS_NAMESERVERS,
RATELIMIT_STORAGE_URI, CHANNELS_ENV, ...), then ``test_config``.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import timedelta

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import ClosingIterator

from core.crypto import dev_credentials_key
from core.database import configure_engine, engine_options, normalize_database_url
from core.extensions import csrf, db, login_manager, migrate
from core.http import MAX_BODY_BYTES, REQUEST_ID_PATTERN
from core.limits import init_limiter

DEV_SECRET_KEY = "dev-only-insecure-secret-key"
HTMX_VERSION = "2.0.11"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
HTMX_CDN = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

ENV_SETTINGS = (
    "SECRET_KEY",
    "CREDENTIALS_KEY",
    "HTMX_SRC",
    "DNS_NAMESERVERS",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_API",
    "RATELIMIT_API_AUTH_FAILURES",
    "RATELIMIT_SIGNIN",
    "RATELIMIT_KEY_NAMESPACE",
    "RATELIMIT_ENABLED",
    "PROVIDER_BASE_URLS",
    "PROVIDER_TIMEOUT",
    "PROVIDER_CA_FILE",
    "TRUSTED_PROXIES",
    "SESSION_IDLE_MINUTES",
    "SESSION_MAX_HOURS",
)


LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
# gunicorn's own lines keep their layout, with the request id added.
GUNICORN_FORMATS = {
    "gunicorn.error": "%(asctime)s [%(process)d] [%(levelname)s] [%(request_id)s] %(message)s",
    "gunicorn.access": "[%(request_id)s] %(message)s",
}
# The id of the request being served in this thread/task, from the moment the WSGI call starts
# until its response is closed: longer than Flask's request context, so that the access log
# lines written after the view returned carry it too.
_current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served (None outside requests)."""
    return _current_request_id.get()


class RequestIdMiddleware:
    """Gives every request an id before anything else runs, and returns it on every response.

    ``X-Request-ID`` is honoured when well-formed (1–64 of ``A-Za-z0-9._:-``), else replaced by
    a fresh one; the header is set even on responses that never reached a Flask view (CSRF
    failures, 404s, errors raised by extensions).
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        environ["channels.request_id"] = request_id
        _current_request_id.set(request_id)

        def start_with_id(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, start_with_id)
        except BaseException:
            _current_request_id.set(None)
            raise
        return ClosingIterator(body, lambda: _current_request_id.set(None))


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every log record.

    gunicorn writes its access line after the response is closed on some workers; its format
    arguments carry the response's ``X-Request-ID``, which is used first.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else {}
        record.request_id = atoms.get("{x-request-id}o") or _current_request_id.get() or "-"
        return True


def _attach_request_ids(logger: logging.Logger, fmt: str) -> None:
    """Filter and format ``logger``'s records with the request id (idempotent)."""
    if not any(isinstance(f, RequestIdFilter) for f in logger.filters):
        logger.addFilter(RequestIdFilter())
    for handler in logger.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
            datefmt = handler.formatter.datefmt if handler.formatter else None
            handler.setFormatter(logging.Formatter(fmt, datefmt))


def _configure_logging(app: Flask) -> None:
    """The app's log, werkzeug's request lines and gunicorn's logs all carry the request id."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(app.config["LOG_LEVEL"])
    app.logger.propagate = False
    _attach_request_ids(app.logger, LOG_FORMAT)

    werkzeug_log = logging.getLogger("werkzeug")
    if not werkzeug_log.handlers:  # the dev server would add a bare handler of its own
        werkzeug_log.addHandler(logging.StreamHandler())
        werkzeug_log.setLevel(logging.INFO)
        werkzeug_log.propagate = False
    _attach_request_ids(werkzeug_log, LOG_FORMAT)
    # Loggers under "channels." (the console provider's output, provider checks) share the log.
    channels_log = logging.getLogger("channels")
    channels_log.handlers[:] = [handler]
    channels_log.setLevel(app.config["LOG_LEVEL"])
    channels_log.propagate = False
    for name, fmt in GUNICORN_FORMATS.items():  # handlers exist only when gunicorn serves us
        _attach_request_ids(logging.getLogger(name), fmt)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI, error handling."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        ENV=os.environ.get("CHANNELS_ENV", "development"),
        SECRET_KEY=DEV_SECRET_KEY,
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "channels.db"),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        HTMX_SRC=HTMX_CDN,
        HTMX_SRI=HTMX_SRI,
        DNS_NAMESERVERS="",
        DNS_TIMEOUT=3.0,
        SPF_INCLUDE="spf.channels-mail.net",
        DKIM_SELECTOR="channels",
        DKIM_TARGET_SUFFIX="dkim.channels-mail.net",
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_API="600 per minute",
        RATELIMIT_API_AUTH_FAILURES="60 per minute",
        RATELIMIT_SIGNIN="10 per minute",
        PROVIDER_BASE_URLS="",
        PROVIDER_TIMEOUT=10.0,
        LOG_LEVEL="INFO",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=None,  # None: Secure everywhere but development and testing
        WTF_CSRF_TIME_LIMIT=None,
        PAGE_SIZE=25,
        TRUSTED_PROXIES=0,
        SESSION_IDLE_MINUTES=30,
        SESSION_MAX_HOURS=12,
    )
    app.config.from_pyfile("config.py", silent=True)
    for name in ENV_SETTINGS:
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if test_config:
        app.config.update(test_config)

    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    _check_secrets(app)
    _type_session_settings(app)
    # Flask's own default (False) must not win: only an explicit setting overrides this.
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["ENV"] not in ("development", "testing")
    _configure_logging(app)

    app.json.sort_keys = False  # keep the documented field order of API objects
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    configure_engine(app)
    init_limiter(app)

    from blueprints.api import bp as api_bp
    from blueprints.console import bp as console_bp
    from core.cli import register_cli
    from core.http import register_http

    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(console_bp)
    csrf.exempt(api_bp)  # the API authenticates with bearer keys, never with cookies
    register_cli(app)
    register_http(app)

    app.wsgi_app = RequestIdMiddleware(_behind_proxies(app))

    def _assign_request_id():
        g.request_id = request.environ.get("channels.request_id") or uuid.uuid4().hex

    # First of all before_request hooks, so that even CSRF failures log and audit with the id.
    app.before_request_funcs.setdefault(None, []).insert(0, _assign_request_id)

    return app


def _behind_proxies(app: Flask):
    """The WSGI app, trusting ``X-Forwarded-For``/``-Proto`` from TRUSTED_PROXIES proxies.

    0 (the default) trusts none: the client address (audit events, sign-in limits) is the
    socket's peer. Behind one TLS-terminating proxy, set TRUSTED_PROXIES=1.
    """
    value = str(app.config.get("TRUSTED_PROXIES") or 0)
    if not value.isdigit():
        raise RuntimeError("TRUSTED_PROXIES must be a whole number of proxies (0 for none).")
    proxies = int(value)
    if proxies == 0:
        return app.wsgi_app
    return ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def _type_session_settings(app: Flask) -> None:
    """SESSION_IDLE_MINUTES and SESSION_MAX_HOURS as positive numbers, or no start at all.

    Flask's own signed cookie is then accepted no longer than a session may last
    (PERMANENT_SESSION_LIFETIME would otherwise default to 31 days); the server-side session
    record (core.services.console_sessions) is what actually decides.
    """
    for name, unit in (("SESSION_IDLE_MINUTES", "minutes"), ("SESSION_MAX_HOURS", "hours")):
        raw = app.config[name]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(raw, bool) or not (0 < value < 100_000):
            raise RuntimeError(f"{name} must be a positive number of {unit} (got {raw!r}).")
        app.config[name] = value
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_MAX_HOURS"])


def _check_secrets(app: Flask) -> None:
    """Development runs on safe defaults; production refuses to start without real secrets."""
    production = app.config["ENV"] == "production"
    if production and app.config["SECRET_KEY"] in (None, "", DEV_SECRET_KEY):
        raise RuntimeError("SECRET_KEY must be set to a long random value in production.")
    if production and not app.config.get("CREDENTIALS_KEY"):
        raise RuntimeError("CREDENTIALS_KEY must be set in production (a Fernet key).")
    if production and len(app.config["SECRET_KEY"]) < 32:
        raise RuntimeError("SECRET_KEY must be at least 32 characters in production.")
    if not app.config.get("CREDENTIALS_KEY"):
        app.config["CREDENTIALS_KEY"] = dev_credentials_key(app.config["SECRET_KEY"])
