"""Cross-cutting HTTP behaviour: error envelopes, security headers, database outages.

Anything under /api answers JSON in the envelope of DESIGN §4, whatever raised the error
(routing, Werkzeug, an extension, a bug); console pages get an HTML error page.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from core.errors import ServiceError
from core.extensions import db
from core.key_cache import CounterUnavailable
from core.schemas.errors import render_error

# The largest JSON body the API reads (DESIGN §4): Flask's MAX_CONTENT_LENGTH and the document.
MAX_BODY_BYTES = 64 * 1024
# The bulk routes (DESIGN §10: up to 1,000 items) read larger bodies: set per request.
BULK_MAX_BODY_BYTES = 4 * 1024 * 1024
# A caller's X-Request-ID is kept when it matches this; else a fresh id is used.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
MESSAGES = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is larger than 64 KiB.",
    500: "Something went wrong on our side. The error was logged.",
    503: "The service is temporarily unavailable. Retry shortly.",
}


# Security headers of every response (a view's own value of one wins); the API's add a
# Content-Security-Policy that allows nothing and ``Cache-Control: no-store``.
COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
API_HEADERS = (
    *COMMON_HEADERS,
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
)


def is_api_path(path: str) -> bool:
    """Is ``path`` the API's (``/api`` and below)? Decided from the path alone, so that it holds
    before routing too (the session is opened before the URL is matched)."""
    return path == "/api" or path.startswith("/api/")


def is_api_request() -> bool:
    return is_api_path(request.path)


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    """The JSON error envelope."""
    response = jsonify(render_error(code, message, fields))
    response.status_code = status
    return response


def _page(status: int, message: str):
    return render_template("error.html", status=status, message=message), status


def register_http(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        db.session.rollback()
        if is_api_request():
            return error_response(exc.status, exc.code, exc.message, exc.fields)
        return _page(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status) or exc.description or "Error."
        if status == 413 and request.max_content_length:
            message = f"The request body is larger than {request.max_content_length // 1024} KiB."
        if status == 429:
            return rate_limited(exc)
        if is_api_request():
            response = error_response(status, HTTP_CODES.get(status, "error"), message)
            if status == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return _page(status, message)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc):
        # Connection lost / database restarting: tell the client to retry; dead pooled
        # connections are replaced at checkout once the database is back (core.database).
        current_app.logger.warning("database unavailable: %s", exc.orig.__class__.__name__)
        _safe_rollback()
        return _unavailable()

    @app.errorhandler(CounterUnavailable)
    def _key_counter_unavailable(exc):
        # A revocation whose counter (Redis) could not be bumped was rolled back: retry later.
        current_app.logger.warning("%s", exc)
        _safe_rollback()
        return _unavailable()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            _safe_rollback()
            return _unavailable()
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        _safe_rollback()
        if is_api_request():
            return error_response(500, "internal_error", MESSAGES[500])
        return _page(500, MESSAGES[500])

    @app.after_request
    def _security_headers(response):
        # One pass over the response's headers, then the missing ones added: a header the view
        # set itself wins (``setdefault`` per header walked them all six times).
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        api = is_api_request()
        for name, value in API_HEADERS if api else COMMON_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if not api:
            if "content-security-policy" not in present:
                headers.add("Content-Security-Policy", content_security_policy())
            headers.add("Vary", "HX-Request")
        return response


def content_security_policy() -> str:
    """Scripts: our own static files and exactly the pinned htmx build."""
    htmx = current_app.config["HTMX_SRC"]
    script_src = "'self'" if htmx.startswith("/") else f"'self' {htmx}"
    return (
        "default-src 'self'; "
        f"script-src {script_src}; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def rate_limited(exc: HTTPException, page: Response | None = None):
    """429: the JSON envelope on /api, a friendly page elsewhere (or ``page``, a view's own
    answer: the sign-in form says it inline); Retry-After on all of them."""
    from core.limits import retry_after_seconds

    _safe_rollback()
    if page is not None:
        response = page
    elif is_api_request():
        own_message = getattr(getattr(exc, "limit", None), "error_message", None)
        response = error_response(
            429,
            "rate_limited",
            own_message or f"Too many requests for this API key ({exc.description}). Slow down.",
        )
    else:
        response = current_app.make_response(_page(429, exc.description or "Too many requests."))
    response.headers["Retry-After"] = str(retry_after_seconds())
    return response


def _safe_rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection may be gone; the session is discarded at teardown
        db.session.remove()


def _unavailable():
    if is_api_request():
        response = error_response(503, "service_unavailable", MESSAGES[503])
    else:
        response = current_app.make_response(_page(503, MESSAGES[503]))
    response.headers["Retry-After"] = "5"
    return response
