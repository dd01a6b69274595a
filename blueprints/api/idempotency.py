"""``Idempotency-Key`` on POST: the first response is stored with the change, in one transaction.

The record is inserted first; a concurrent request with the same key waits on the unique index
(PostgreSQL) or on the write lock (SQLite) until the first one commits, then replays its
response. The work runs in a savepoint so that a rejected request (4xx) is stored and replayed
too, while nothing of its half-done work remains. 5xx responses are never stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

from flask import make_response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.db_types import utcnow
from core.extensions import db
from core.http import error_response
from core.models import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, IdempotencyRecord

TTL = timedelta(hours=24)
REPLAYED_HEADERS = ("Location", "Default-Handover", "ETag")


def fingerprint() -> str:
    """Method, path with query, and the body (canonical JSON when it parses)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError, UnicodeDecodeError):
        body = raw
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.full_path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _find(tenant_id: str, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
        )
    )


def _replay(record: IdempotencyRecord, request_hash: str):
    if record.request_hash != request_hash:
        return error_response(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request.",
        )
    response = make_response(record.response_body or "", record.response_status)
    if record.response_body:
        response.mimetype = "application/json"
    response.headers.update(record.response_headers or {})
    response.headers["Idempotent-Replayed"] = "true"
    return response


def run_idempotent(tenant_id: str, key: str, run):
    """Run ``run()`` at most once per (tenant, key) within 24 hours."""
    if not (1 <= len(key) <= IDEMPOTENCY_KEY_MAX and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key)):
        return error_response(
            400,
            "bad_request",
            f"Idempotency-Key must be 1–{IDEMPOTENCY_KEY_MAX} visible ASCII characters "
            "(no spaces).",
        )
    request_hash = fingerprint()

    record = _find(tenant_id, key)
    if record is not None and record.created_at < utcnow() - TTL:
        db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
        record = None
    if record is not None and record.response_status is not None:
        response = _replay(record, request_hash)
        db.session.rollback()
        return response

    try:
        record = IdempotencyRecord(
            tenant_id=tenant_id, key=key, request_hash=request_hash, created_at=utcnow()
        )
        db.session.add(record)
        db.session.flush()
    except IntegrityError:
        # Another request with this key committed first: answer what it answered.
        db.session.rollback()
        record = _find(tenant_id, key)
        if record is None or record.response_status is None:
            return error_response(
                409, "conflict", "A request with this Idempotency-Key is in progress."
            )
        response = _replay(record, request_hash)
        db.session.rollback()
        return response

    savepoint = db.session.begin_nested()
    response = run()
    if response.status_code >= 500:
        db.session.rollback()
        return response
    if response.status_code >= 400:
        savepoint.rollback()
    else:
        savepoint.commit()
    record.response_status = response.status_code
    record.response_body = response.get_data(as_text=True)
    record.response_headers = {
        h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers
    }
    db.session.commit()
    return response
