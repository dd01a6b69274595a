"""The JSON API (DESIGN §4), mounted at /api.

Thin on purpose: authenticate the key, parse JSON, call a service, serialize, or map the
service's error to the envelope. Writes commit once, at the end, through ``write_endpoint``.
"""

from __future__ import annotations

import json
import re
from functools import wraps

from flask import Blueprint, g, jsonify, make_response, request
from sqlalchemy.exc import OperationalError
from werkzeug.routing import BaseConverter

from core.database import SAFE_METHODS, read_phase
from core.errors import ServiceError
from core.extensions import db
from core.http import error_response
from core.limits import limit_api_blueprint
from core.pagination import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX
from core.services import accounts
from core.services.audit import Actor

bp = Blueprint("api", __name__)
limit_api_blueprint(bp)  # RATELIMIT_API per API key (core.limits)

# The words of /api/channels/<word> routes of the collection itself.
CHANNEL_COLLECTION_WORDS = ("export", "bulk")


class ChannelIdConverter(BaseConverter):
    """``<channel_id:...>``: a channel id in a path, i.e. any segment but the collection's own
    words, so that /api/channels/export answers only as itself (its ``Allow`` lists GET alone;
    a PATCH there is 405, not "channel export not found")."""

    regex = r"(?!(?:" + "|".join(CHANNEL_COLLECTION_WORDS) + r")(?:/|$))[^/]+"


# Registered before any route of the blueprint is added (deferred functions run in order).
bp.record_once(
    lambda state: state.app.url_map.converters.setdefault("channel_id", ChannelIdConverter)
)

MAX_DEPTH = 32


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


@bp.before_request
def authenticate():
    """Bearer API key: unknown or revoked → 401; a read key on a write → 403."""
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    key = None
    if scheme.lower() == "bearer":
        with read_phase():
            # A reading request's key is its own one-statement read when not cached: on
            # PostgreSQL no transaction, and the request's read then reuses the same connection.
            key = accounts.find_api_key(presented.strip(), alone=request.method in SAFE_METHODS)
    if key is None:
        response = error_response(401, "unauthorized", "A valid API key is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="channels"'
        return response
    g.api_key = key
    g.tenant_id = key.tenant_id
    g.actor = Actor("api_key", key.id, key.name)
    # PostgreSQL text cannot hold NUL: such ids and filters match nothing, say so before SQL does.
    if "\x00" in request.path:
        return error_response(404, "not_found", "Not found.")
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return error_response(
            400, "bad_request", "Query parameters must not contain NUL characters."
        )
    if request.method not in SAFE_METHODS and key.scope != "write":
        return error_response(403, "forbidden", "This API key is read-only.")
    try:
        if accounts.touch_api_key(key):
            db.session.commit()
    except OperationalError:
        # Best effort: a busy database must not fail the request over a usage timestamp.
        db.session.rollback()
    return None


def _check_nesting(body) -> None:
    """Nesting at most MAX_DEPTH levels: no key or value inside more than MAX_DEPTH containers
    (the body itself is the first). One walk over the containers only."""
    containers = [(body, 0)]
    while containers:
        value, depth = containers.pop()
        if value and depth + 1 > MAX_DEPTH:  # its items would be deeper than the limit
            raise BadRequest(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, dict | list):
                containers.append((item, depth + 1))


def _check_no_nul(body) -> None:
    """No NUL character in any key or string (PostgreSQL text cannot hold one)."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise BadRequest("The JSON body must not contain NUL characters (\\u0000).")
        elif isinstance(value, dict):
            pending.extend(value)  # the keys
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


# What makes a parsed body need the slow checks (``json_body``): a NUL escape, and a surrogate,
# escaped (\ud800-\udfff, any case of hex digit) or decoded from the bytes ("surrogatepass").
_NUL_ESCAPE = "\\u0000"
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_JSON_WHITESPACE = b" \t\n\r"


def json_body(required: bool = True) -> dict:
    """The request's JSON object: 415 without application/json, 400 unless an object."""
    raw = request.get_data(cache=True)
    # JSON's whitespace only (RFC 8259 §2): bytes.strip() would also take \x0b and \x0c for
    # nothing, and accept a body that is not JSON.
    if not raw.strip(_JSON_WHITESPACE) and not required:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    try:
        # As json.loads(bytes) decodes (UTF-8, -16 or -32), so that the checks below read the
        # very text that is parsed.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise BadRequest("The JSON body is nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("The JSON body must be an object.")
    # Strict JSON has no raw control character in a string: a NUL can only come from its
    # escape, a surrogate from its escape or from the bytes. A body with neither (nearly every
    # body) needs only the nesting walk, over its containers: a 1,000-item bulk body's checks
    # went from ~4 ms to ~1 (bench/FINDINGS.md §17).
    _check_nesting(body)
    if _NUL_ESCAPE in text:
        _check_no_nul(body)
    if _SURROGATE.search(text):
        try:
            # "\ud800" is valid JSON but not Unicode text: no database could store it.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadRequest(
                "The JSON body contains an unpaired surrogate (\\ud800-\\udfff)."
            ) from exc
    return body


def query_bool(name: str, default: bool | None = None) -> bool | None:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRequest(f"The query parameter {name} must be true or false.")


def query_limit(default: int = LIST_LIMIT_DEFAULT, maximum: int = LIST_LIMIT_MAX) -> int:
    value = request.args.get("limit")
    if value is None:
        return default
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:
        raise BadRequest(f"The query parameter limit must be a whole number from 1 to {maximum}.")
    return int(value)


def query_choice(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if value not in choices:
        raise BadRequest(f"The query parameter {name} must be one of: {', '.join(choices)}.")
    return value


def as_response(result):
    """(payload, status[, headers]) or a Response, as a Response."""
    if isinstance(result, tuple):
        payload, status, *rest = result
        response = make_response(jsonify(payload) if payload is not None else "", status)
        if rest:
            response.headers.update(rest[0])
        return response
    return result


def write_endpoint(view):
    """Run a write view in one transaction: commit on success, roll back on any error.

    A POST with an ``Idempotency-Key`` goes through the idempotency store (same key and body
    within 24 hours: the first response again; another body: 409).
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        def run():
            try:
                return as_response(view(*args, **kwargs))
            except ServiceError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.fields)

        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key is not None:
            from blueprints.api.idempotency import run_idempotent

            return run_idempotent(g.tenant_id, key, run)
        response = run()
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    return wrapper


def handover_headers(outcomes) -> dict:
    """``Default-Handover`` names the channel that became default (``none`` if no channel could)."""
    for outcome in outcomes:
        if outcome.new_default is not None:
            return {"Default-Handover": outcome.new_default.id}
        if outcome.lost_default:
            return {"Default-Handover": "none"}
    return {}


from blueprints.api import (  # noqa: E402,F401  (routes register on bp)
    audit_events,
    bulk,
    channels,
    email_domains,
    export,
    integrations,
    openapi,
    phone_numbers,
    webhooks,
)
