"""Channels: the application factory.

Configuration, lowest to highest precedence: the defaults declared in ``core.settings``,
``instance/config.py``, environment variables, then ``test_config``; every setting is typed and
checked before anything else starts (``core.settings.SettingsError`` names a bad one).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import timedelta

from flask import Config, Flask, g, request
from flask.sessions import NullSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import ClosingIterator

from core.database import configure_engine, engine_options
from core.extensions import csrf, db, login_manager, migrate
from core.http import MAX_BODY_BYTES, REQUEST_ID_PATTERN, is_api_path
from core.json_text import JSONProvider
from core.limits import init_limiter
from core.metrics import init_metrics
from core.settings import HTMX_SRI, load_settings
from core.settings import HTMX_VERSION as HTMX_VERSION  # the pin, read by tests/browser
from core.tasks import init_tasks, register_embedded

REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# Fixed by the contract (64 KiB bodies, the pinned htmx build, cookie and CSRF policy): plain
# Flask config, not settings an operator is invited to change.
FIXED_CONFIG = {
    "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
    "HTMX_SRI": HTMX_SRI,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
}


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


class NoConsoleSession(NullSession):
    """The session of an API request: empty, and writing to it is a bug (the API authenticates
    with bearer keys, never with the console's cookie)."""

    def _fail(self, *args, **kwargs):
        raise RuntimeError("API requests have no console session: they authenticate with keys.")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class SigningSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session for the console, none for the API.

    - Under ``/api`` no session is opened: the API never reads the console's cookie (bearer keys
      only, CSRF exempt), so an API request neither parses nor verifies a cookie, nor saves,
      refreshes or varies on one (no ``Vary: Cookie``: the answer does not depend on it). Flask
      otherwise opened and saved a session on every request, and Flask-Login's after-request
      hook read it, which made every API response ``Vary: Cookie``.
    - Flask builds an ``itsdangerous`` serializer in every request that opens the session. The
      serializer holds nothing but its keys and settings, so one per (``SECRET_KEY``,
      fallbacks) is reused; a key changed at run time (tests) gets a new one.
    """

    def __init__(self):
        self._serializers: dict = {}

    def open_session(self, app: Flask, request):
        if is_api_path(request.path):
            return NoConsoleSession()  # a null session: Flask saves nothing at the end
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if len(self._serializers) > 8:
                self._serializers.clear()
            self._serializers[keys] = serializer
        return serializer


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI, error handling."""
    app = Flask(__name__, instance_relative_config=True)
    app.session_interface = SigningSessionInterface()
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(FIXED_CONFIG)
    # Any Flask key may be set in the instance file; declared settings are typed below.
    instance = Config(app.instance_path)
    instance.from_pyfile("config.py", silent=True)
    settings = load_settings(instance, test_config)
    app.config.update(instance)
    app.config.update(test_config or {})
    # The typed values replace whatever spelling the layers used (strings from the environment).
    app.config.update(dict(settings))
    for alias in ("CHANNELS_ENV", "DATABASE_URL"):
        app.config.pop(alias, None)
    if app.config["SQLALCHEMY_DATABASE_URI"] is None:
        path = os.path.join(app.instance_path, "channels.db")
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + path
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    # Settings whose default depends on CHANNELS_ENV (declared as None): only an explicit
    # value overrides it (Flask's own default for the cookie, False, must not win either).
    local = app.config["ENV"] in ("development", "testing")
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = not local
    if app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] is None:
        app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = local
    # Flask's signed cookie is accepted no longer than a console session may last (31 days
    # otherwise); the server-side session (core.services.console_sessions) decides the rest.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    _configure_logging(app)

    app.json = JSONProvider(app)  # orjson for response bodies; keeps API objects' field order
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    configure_engine(app)
    init_limiter(app)
    init_tasks(app)
    register_embedded(app)

    from blueprints.api import bp as api_bp
    from blueprints.console import bp as console_bp
    from blueprints.ops import bp as ops_bp
    from core.cli import register_cli
    from core.http import register_http

    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(console_bp)
    app.register_blueprint(ops_bp)
    csrf.exempt(api_bp)  # the API authenticates with bearer keys, never with cookies
    register_cli(app)
    register_http(app)

    app.wsgi_app = RequestIdMiddleware(_behind_proxies(app))
    init_metrics(app)  # outermost: times the whole request (only when METRICS_TOKEN is set)

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
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies == 0:
        return app.wsgi_app
    return ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
