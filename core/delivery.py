"""Webhook delivery (DESIGN §8): sign, send, record, retry; the dispatcher's and sweeper's queries.

A delivery is one event for one endpoint (``webhook_deliveries``). Its life:

1. written ``pending`` and due with the event (``core.events.emit``), in the change's transaction;
2. handed to the task engine: at once after the commit, else by the dispatcher (due rows never
   handed over), else by the sweeper (rows handed over ``OUTBOX_SWEEP_SECONDS`` ago and not
   finished: the broker lost them, or the worker died);
3. claimed by a worker (``claim``: a lease of ``3 × WEBHOOK_TIMEOUT`` in ``locked_until``, taken
   by one UPDATE, so duplicates of the task message do nothing), sent, and recorded
   (``record_attempt``): ``delivered`` on a 2xx, else retried on the schedule below, ``failed``
   when it is used up. Every attempt of one event carries the same ``webhook-id``: at least once,
   duplicates only as retries of the same id.

Standard Webhooks: ``webhook-id`` (the event id), ``webhook-timestamp`` (Unix seconds of the
attempt), ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per
secret, space-separated: both the new and the previous secret for 24 hours after a rotation).
Redirects are never followed (a 3xx is a failure); the first 1 KiB of each answer is kept.
The SSRF guard (``core.net_guard``) checks the URL again before every attempt and the request
goes to the very address it checked (DNS rebinding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from core import net_guard
from core.crypto import decrypt_secret
from core.db_types import utcnow
from core.events import body_of
from core.extensions import db
from core.metrics import WEBHOOK_DELIVERIES, OutboxState
from core.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger("channels.webhooks")

# Seconds before the next attempt, after attempt 1, 2, ...: 10 attempts over about three and a
# half days (~91 h), each delay drawn within ±JITTER of its value so that an endpoint that comes
# back is not hit by every pending delivery at the same second. Even with the shortest draws the
# last attempt comes after DISABLE_AFTER, so an endpoint that never answers is disabled by it.
RETRY_DELAYS = (30, 120, 600, 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
DISABLE_AFTER = timedelta(days=3)  # an endpoint with no success for this long is disabled
RESPONSE_KEPT = 1024  # bytes of each answer kept in the log
ERROR_KEPT = 500
# A fresh delivery is handed over at once after its commit; the dispatcher leaves it that long
# before handing it over itself (no duplicate message on the healthy path).
DISPATCH_GRACE = timedelta(seconds=2)
BATCH = 500
USER_AGENT = "Channels-Webhooks/1.0"


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta | None:
    """How long after failed attempt number ``attempts`` to try again; None when used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts - 1]
    factor = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=base * factor)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body`` with a ``whsec_…`` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one while it still signs (24 h after a rotation)."""
    secrets = [decrypt_secret(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(decrypt_secret(endpoint.previous_secret_encrypted))
    return secrets


def lease() -> timedelta:
    """How long a worker owns a delivery it claimed: the attempt's time with room to spare."""
    return timedelta(seconds=3 * current_app.config["WEBHOOK_TIMEOUT"])


_ENABLED_ENDPOINT = select(WebhookEndpoint.id).where(
    WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.status == "enabled"
)


def _unleased(now: datetime):
    return or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now)


def claim(delivery_id: str) -> bool:
    """Take the delivery for one attempt (its own committed transaction): False when it is not
    due, already delivered or failed, leased by another worker, or its endpoint is disabled."""
    now = utcnow()
    result = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            _unleased(now),
            _ENABLED_ENDPOINT.exists(),
        )
        .values(locked_until=now + lease())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


@dataclass
class Attempt:
    """What one attempt got: a status code (None without an answer), the kept answer, an error."""

    status_code: int | None
    response: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver(delivery_id: str) -> str:
    """One attempt of one delivery: ``skipped`` (not claimed), ``delivered`` or ``failed``."""
    if not claim(delivery_id):
        return "skipped"
    delivery = db.session.get(WebhookDelivery, delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    now = utcnow()
    body = json.dumps(body_of(event), separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, event.id, timestamp, body) for secret in signing_secrets(endpoint, now)
        ),
    }
    url = endpoint.url
    db.session.rollback()  # nothing is held open while the receiver answers
    attempt = send(url, headers, body)
    record_attempt(delivery_id, attempt)
    return "delivered" if attempt.ok else "failed"


def send(url: str, headers: dict[str, str], body: bytes) -> Attempt:
    """POST to the checked address of ``url``; never raises for what the receiver does."""
    timeout = current_app.config["WEBHOOK_TIMEOUT"]
    try:
        target = net_guard.check_webhook_url(url)
    except net_guard.UnsafeURL as exc:
        return Attempt(None, None, exc.reason)
    try:
        with net_guard.guarded_client(timeout=timeout) as client:
            response = net_guard.send_pinned(
                client, target, "POST", headers=headers, content=body, stream=True
            )
            try:
                kept = b""
                for chunk in response.iter_raw():
                    kept += chunk
                    if len(kept) >= RESPONSE_KEPT:
                        break
            finally:
                response.close()
    except httpx.TimeoutException:
        return Attempt(None, None, f"No answer within {timeout:g} s.")
    except httpx.HTTPError as exc:
        return Attempt(None, None, f"Could not connect: {exc}"[:ERROR_KEPT])
    text = kept[:RESPONSE_KEPT].decode("utf-8", "replace")
    error = None
    if not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error += " (redirects are not followed)"
    return Attempt(response.status_code, text, error)


def record_attempt(delivery_id: str, attempt: Attempt) -> None:
    """Store an attempt's outcome and what follows: delivered, the next try, or failed; an
    endpoint without a success for three days is disabled (audited, and announced)."""
    now = utcnow()
    delivery = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookDelivery)  # the row itself, not its joined endpoint and event
    ).one()
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    delivery.last_response = attempt.response
    delivery.locked_until = None
    delivery.enqueued_at = None
    if attempt.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.last_success_at = now
        endpoint.failing_since = None
    else:
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if endpoint.status == "enabled" and now - endpoint.failing_since >= DISABLE_AFTER:
            from core.services.webhooks import disable_failing_endpoint

            disable_failing_endpoint(endpoint)
        delay = retry_delay(delivery.attempts)
        if endpoint.status != "enabled":
            # Paused, not given up: re-enabling the endpoint sends it at once.
            delivery.next_attempt_at = now
        elif delay is None:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + delay
    log.info(
        "webhook delivery %s attempt %s: %s",
        delivery.id,
        delivery.attempts,
        "delivered" if attempt.ok else attempt.error,
    )
    db.session.commit()
    # After the commit: an attempt counts once it is recorded. delivered | retry (another try
    # is scheduled) | paused (the endpoint is disabled) | failed (no try left).
    if attempt.ok:
        outcome = "delivered"
    elif delivery.status == "failed":
        outcome = "failed"
    elif endpoint.status != "enabled":
        outcome = "paused"
    else:
        outcome = "retry"
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def outbox_state(now: datetime | None = None) -> OutboxState:
    """The outbox as the metrics report it: pending deliveries not yet handed to the engine
    whose time has come, and the age of the oldest of them (seconds)."""
    now = now or utcnow()
    waiting = and_(
        WebhookDelivery.status == "pending",
        WebhookDelivery.enqueued_at.is_(None),
        WebhookDelivery.next_attempt_at <= now,
    )
    count, oldest = db.session.execute(
        select(func.count(), func.min(WebhookDelivery.next_attempt_at)).where(waiting)
    ).one()
    db.session.rollback()  # a scrape holds no transaction
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return OutboxState(depth=count, oldest_age_seconds=age)


# --- the dispatcher and the sweeper ------------------------------------------------------------


def _hand_over(condition, now: datetime) -> list[str]:
    """Mark the matching deliveries handed over now and return their ids (committed)."""
    ids = list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "pending",
                _unleased(now),
                _ENABLED_ENDPOINT.exists(),
                condition,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return ids


def due_deliveries(now: datetime | None = None) -> list[str]:
    """The dispatcher: due deliveries never handed over (new ones past a short grace, during
    which the commit's own hand-over goes first; retries whose time came)."""
    now = now or utcnow()
    return _hand_over(
        and_(
            WebhookDelivery.enqueued_at.is_(None),
            WebhookDelivery.next_attempt_at <= now - DISPATCH_GRACE,
        ),
        now,
    )


def stale_deliveries(now: datetime | None = None) -> list[str]:
    """The sweeper: deliveries handed over ``OUTBOX_SWEEP_SECONDS`` ago, still pending and not
    being delivered (the broker lost the message, or the worker was killed)."""
    now = now or utcnow()
    before = now - timedelta(seconds=current_app.config["OUTBOX_SWEEP_SECONDS"])
    return _hand_over(
        and_(
            WebhookDelivery.enqueued_at.is_not(None),
            WebhookDelivery.enqueued_at <= before,
            WebhookDelivery.next_attempt_at <= now,
        ),
        now,
    )
