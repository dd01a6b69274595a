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

from flask import Flask, g, request

from core.crypto import dev_credentials_key
from core.database import configure_engine, engine_options, normalize_database_url
from core.extensions import csrf, db, login_manager, migrate
from core.limits import init_limiter

DEV_SECRET_KEY = "dev-only-insecure-secret-key"
HTMX_VERSION = "2.0.11"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
HTMX_CDN = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

ENV_SETTINGS = (
    "SECRET_KEY",
    "CREDENTIALS_KEY",
    "HTMX_SRC",
    "DNS_NAMESERVERS",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_API",
    "RATELIMIT_SIGNIN",
    "RATELIMIT_KEY_NAMESPACE",
    "RATELIMIT_ENABLED",
    "PROVIDER_BASE_URLS",
)


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def _configure_logging(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(app.config["LOG_LEVEL"])
    app.logger.propagate = False


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI, error handling."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        ENV=os.environ.get("CHANNELS_ENV", "development"),
        SECRET_KEY=DEV_SECRET_KEY,
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "channels.db"),
        MAX_CONTENT_LENGTH=64 * 1024,
        HTMX_SRC=HTMX_CDN,
        HTMX_SRI=HTMX_SRI,
        DNS_NAMESERVERS="",
        DNS_TIMEOUT=3.0,
        SPF_INCLUDE="spf.channels-mail.net",
        DKIM_SELECTOR="channels",
        DKIM_TARGET_SUFFIX="dkim.channels-mail.net",
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_API="600 per minute",
        RATELIMIT_SIGNIN="10 per minute",
        PROVIDER_BASE_URLS="",
        PROVIDER_TIMEOUT=10.0,
        LOG_LEVEL="INFO",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        PAGE_SIZE=25,
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
    app.config["SESSION_COOKIE_SECURE"] = app.config.get(
        "SESSION_COOKIE_SECURE", app.config["ENV"] not in ("development", "testing")
    )
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

    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _return_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    return app


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
