"""Conditional requests (RFC 9110 §13): one resource's version as a strong ``ETag``.

One place decides what a version is and whether a request's precondition holds; the API
(``If-None-Match`` → 304, ``If-Match`` → 412) and the console's edit forms (a hidden
``version`` field) both ask it.

**What the tag is.** A hash of the columns that make the resource's representation (its own
row, plus for a phone number the id of its SMS channel), read with one narrow query by primary
key: no joins, no decrypting, no rendering. Every stored change changes it, whoever made it
(a PATCH, the status cascade's bulk UPDATE, the domain re-check), on every backend, whatever
the clock says: two changes within one second (or one microsecond) give two tags because the
values differ, not because time passed, and nothing has to remember to bump a counter. The
same stored values always render the same bytes, so the tag is strong. ``FORMAT`` is part of
the hash: bump it when a change to the rendering makes old tags wrong.

**Atomic If-Match.** ``require_version`` reads the row ``FOR UPDATE`` inside the write's own
transaction (on SQLite the write transaction is ``BEGIN IMMEDIATE``: no other writer runs until
it commits), so no change can slip in between the check and the write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from functools import cache, wraps

from flask import g, make_response, request
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags, quote_etag

from core.database import read_alone
from core.errors import NotFound, ServiceError
from core.extensions import db
from core.models import Channel, EmailDomain, Integration, PhoneNumber, WebhookEndpoint
from core.tenancy import lookup_id

FORMAT = "1"

# Columns that change without changing the representation: left out, so that a delivery's
# bookkeeping does not make an editor's If-Match fail.
# A channel's tag is made of exactly the columns the API renders (``channel_queries.API_COLUMNS``),
# so that a GET computes it from the row it read for the body: ``name_key`` follows ``name`` and
# ``enabled`` shows in ``status``.
# The scheduler's bookkeeping (when the next re-check is due, its claim and lease) is left out
# too: a scheduled check that changes nothing the API shows must not fail an editor's If-Match.
SCHEDULER = ("check_claim", "check_lease_until")
UNRENDERED = {
    WebhookEndpoint: ("last_success_at",),
    Channel: ("name_key", "enabled"),
    Integration: ("next_check_at", *SCHEDULER),
    EmailDomain: SCHEDULER,
}


class PreconditionFailed(ServiceError):
    """The resource changed since the version the caller (If-Match, an edit form) has seen."""

    status = 412
    code = "precondition_failed"


def _phone_number_channel():
    # The number's ``channel_id`` as ``services.phone_numbers.channel_ids`` picks it: the oldest.
    channels = Channel.__table__
    return (
        select(channels.c.id)
        .where(channels.c.phone_number_id == PhoneNumber.__table__.c.id)
        .order_by(channels.c.created_at, channels.c.id)
        .limit(1)
        .scalar_subquery()
    )


# Parts of a representation that live outside the resource's row.
DERIVED = {PhoneNumber: _phone_number_channel}


@cache
def _attributes(model) -> tuple:
    """The mapped column attributes that make ``model``'s version, in table order."""
    skipped = UNRENDERED.get(model, ())
    return tuple(a for a in sa_inspect(model).column_attrs if a.key not in skipped)


def _canonical(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def version_of(model, values) -> str:
    """The strong entity tag (quoted) of a resource whose version values are ``values``."""
    payload = json.dumps(
        [model.__tablename__, FORMAT, *(_canonical(v) for v in values)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return quote_etag(hashlib.blake2b(payload.encode(), digest_size=16).hexdigest())


def etag_of(row, *derived, model=None) -> str:
    """The tag of ``row`` as it stands in the session (loaded, or just written: the values the
    response renders), with its ``DERIVED`` value. ``model``: when ``row`` is a result row of
    the model's columns (``channel_queries.channel_row``) rather than an instance."""
    model = model or type(row)
    return version_of(model, [*(getattr(row, a.key) for a in _attributes(model)), *derived])


@cache
def _version_query(model, lock: bool):
    """The narrow query of ``model``'s version values by id and tenant, built once: plain table
    columns and bound parameters, so that each call costs no statement building, no cache-key
    walk and no ORM loading (the 304 path's whole cost is this one indexed lookup)."""
    table = model.__table__
    derived = DERIVED.get(model)
    query = select(
        *(a.columns[0] for a in _attributes(model)), *([derived()] if derived else [])
    ).where(table.c.id == bindparam("object_id"), table.c.tenant_id == bindparam("tenant_id"))
    return query.with_for_update(of=table) if lock else query


def current_version(model, tenant_id: str, object_id: object, *, lock: bool = False) -> str | None:
    """The tag of the tenant's ``object_id`` read now (one narrow query), or None if there is
    no such row (unknown, malformed or another tenant's id alike).

    ``lock``: inside a write, in the session's transaction, holding the row until it ends.
    Without it, on a connection of its own as a statement alone (``core.database.read_alone``:
    no ``BEGIN``/``ROLLBACK`` around it): a 304 never opens the ORM session's transaction, so
    the request has nothing to tear down.
    """
    clean = lookup_id(object_id)
    if clean is None:
        return None
    parameters = {"object_id": clean, "tenant_id": tenant_id}
    if lock:
        row = db.session.connection().execute(_version_query(model, True), parameters).first()
    else:
        rows = read_alone(_version_query(model, False), parameters)
        row = rows[0] if rows else None
    return None if row is None else version_of(model, row)


def _unquoted(tag: str) -> str:
    return tag[1:-1]


def none_match(header: str | None, tag: str) -> bool:
    """If-None-Match (weak comparison, ``*`` for any): does the header name ``tag``?"""
    if header is None:
        return False
    return parse_etags(header).contains_weak(_unquoted(tag))


def matches(header: str, tag: str) -> bool:
    """If-Match (strong comparison, ``*`` for any): does the header name ``tag``? A weak tag
    never matches; an unparsable header matches nothing."""
    etags: ETags = parse_etags(header)
    return etags.contains(_unquoted(tag))


def locked_version(model, tenant_id: str, object_id: object) -> str:
    """Inside a write's transaction: the row's current tag, the row locked until the transaction
    ends; NotFound for an unknown or foreign id."""
    tag = current_version(model, tenant_id, object_id, lock=True)
    if tag is None:
        raise NotFound(f"{model.LABEL} not found.")
    return tag


def require_version(model, tenant_id: str, object_id: object, expected: str) -> str:
    """Inside a write's transaction: the row is locked and still at a version ``expected``
    names (an If-Match value, or an edit form's version), or PreconditionFailed. Returns the
    current tag. An unknown or foreign id is NotFound, whatever ``expected`` says."""
    tag = locked_version(model, tenant_id, object_id)
    if not matches(expected, tag):
        raise precondition_failed(model, tag)
    return tag


def precondition_failed(model, tag: str) -> PreconditionFailed:
    """The 412 of a resource whose current tag is ``tag``."""
    return PreconditionFailed(
        f"The {model.LABEL.lower()} changed since the version you have; its current ETag "
        f"is {tag}. Fetch it again and retry."
    )


def _status_of(result) -> int:
    """The status a view's return value answers with (a response, or a Flask return tuple)."""
    if isinstance(result, tuple) and len(result) > 1 and isinstance(result[1], int):
        return result[1]
    return getattr(result, "status_code", 200)


# --- the API's decorators ----------------------------------------------------------------------


def _not_found(model) -> NotFound:
    return NotFound(f"{model.LABEL} not found.")


def conditional(model, id_param: str | None = None) -> Callable:
    """Conditional requests for one resource's API route (below ``write_endpoint`` for writes):

    - GET: ``If-None-Match`` naming the current tag answers 304 (the tag, no body) from one
      narrow query, before the view loads or renders anything.
    - PATCH, DELETE: with ``If-Match``, the row is locked and its version read before the view
      runs; when the resource changed since and the view would have succeeded, 412, and the
      view's writes roll back (a request the view refuses, 400, 415 or 422, answers that).

    The view puts the ETag of its 200/201 itself (``etag_header``), from the row it loaded or
    wrote: no further query. Without those headers the route behaves exactly as without the
    decorator. ``documented`` reads the mark this leaves: the OpenAPI document declares the
    headers, the 304 and the 412.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            object_id = kwargs.get(id_param) if id_param else None
            if request.method in ("GET", "HEAD"):
                header = request.headers.get("If-None-Match")
                if header is not None:
                    tag = current_version(model, g.tenant_id, object_id)
                    if tag is None:
                        raise NotFound(f"{model.LABEL} not found.")
                    if none_match(header, tag):
                        response = make_response("", 304)
                        response.headers["ETag"] = tag
                        return response
            elif id_param is not None:
                header = request.headers.get("If-Match")
                if header is not None:
                    # The row is locked and its version read first; the precondition is judged
                    # once the request has passed every other check (RFC 9110 §13.2.1: a request
                    # that would fail without If-Match, a 415, 400 or 422, answers that, not
                    # 412), and a 412 raised here rolls the view's writes back with it.
                    tag = locked_version(model, g.tenant_id, object_id)
                    result = view(*args, **kwargs)
                    if not matches(header, tag) and _status_of(result) < 400:
                        raise precondition_failed(model, tag)
                    return result
            return view(*args, **kwargs)

        wrapper.conditional = True
        return wrapper

    return decorate


def etag_header(row, *derived, model=None) -> dict:
    """The ``ETag`` header of a response carrying ``row`` (a GET's, or a write's after the
    change), from the row in hand: no further query."""
    return {"ETag": etag_of(row, *derived, model=model)}


# --- edit forms ----------------------------------------------------------------------------------


def snapshot(values: dict) -> str:
    """What an edit form was rendered with (its hidden ``seen`` field), to name what changed
    underneath it if the save finds a newer version. Never a secret: only what the form shows."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def changed_since(seen: str | None, current: dict) -> list[str]:
    """The keys of ``current`` whose value differs from the ``snapshot`` a form was rendered
    with; all of them when the snapshot is missing or unreadable."""
    try:
        before = json.loads(seen or "")
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return list(current)
    now = json.loads(snapshot(current))
    return [key for key in current if before.get(key) != now[key]]
