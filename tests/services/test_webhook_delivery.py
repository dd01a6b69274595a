"""Webhook delivery in process against a real HTTP receiver: Standard Webhooks signatures (checked
with the standardwebhooks library), secret rotation, retries with backoff, redirects, the kept
answer, the three-day disable (time travel), re-enabling, the dispatcher and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select
from standardwebhooks.webhooks import WebhookVerificationError

from core import delivery
from core.db_types import utcnow
from core.extensions import db
from core.models import AuditEvent, Event, WebhookDelivery, WebhookEndpoint
from core.schemas.webhooks import WebhookEndpointUpdate
from core.serializers import channel_to_api
from core.services import webhooks
from tests import factories
from tests.webhook_receiver import Receiver, verify

CREATED = ["channel.created"]  # one event per new channel (the first is also a default_changed)


@pytest.fixture
def app_config(app_config):
    """A short timeout so that the slow-receiver test is quick."""
    return {**app_config, "WEBHOOK_TIMEOUT": 1.0}


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def pending_ids() -> list[str]:
    return list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending")
            .order_by(WebhookDelivery.created_at)
        )
    )


def deliver_all() -> list[str]:
    """One attempt of every pending delivery, as a worker would make them."""
    outcomes = [delivery.deliver(delivery_id) for delivery_id in pending_ids()]
    db.session.expire_all()
    return outcomes


def only_delivery(endpoint_id: str | None = None) -> WebhookDelivery:
    """The one delivery (of the endpoint), read afresh."""
    db.session.expire_all()
    query = select(WebhookDelivery)
    if endpoint_id:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return db.session.scalars(query).one()


def test_an_event_arrives_signed_with_the_resource_as_the_api_renders_it(setup, receiver):
    """channel.created reaches the receiver; standardwebhooks verifies it; webhook-id is the
    event id; data is exactly the API's rendering."""
    _, secret = factories.make_webhook_endpoint(setup.tenant, receiver.url, ["channel.created"])
    channel = factories.make_channel(setup, "email", name="Support")
    assert deliver_all() == ["delivered"]
    request = receiver.received[0]
    payload = verify(secret, request)
    event = db.session.scalars(select(Event).where(Event.type == "channel.created")).one()
    assert request["headers"]["webhook-id"] == event.id
    assert payload["type"] == "channel.created"
    assert payload["sequence"] == 1
    assert payload["data"] == channel_to_api(db.session.get(type(channel), channel.id))
    assert only_delivery().status == "delivered"
    with pytest.raises(WebhookVerificationError):
        verify(webhooks.new_secret(), request)


def test_after_a_rotation_both_secrets_sign_for_24_hours(setup, receiver):
    """Two signatures: the old and the new secret each verify; after 24 h only the new one."""
    endpoint, old = factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    _, new = webhooks.rotate_secret(setup.tenant.id, endpoint.id, factories.ACTOR)
    db.session.commit()
    factories.make_channel(setup, "email", name="One")
    deliver_all()
    first = receiver.received[-1]
    assert len(first["headers"]["webhook-signature"].split(" ")) == 2
    verify(old, first)
    verify(new, first)
    with time_machine.travel(utcnow() + timedelta(hours=24, seconds=5), tick=False):
        factories.make_channel(setup, "email", name="Two")
        deliver_all()
        later = receiver.received[-1]
        assert len(later["headers"]["webhook-signature"].split(" ")) == 1
        verify(new, later)
        with pytest.raises(WebhookVerificationError):
            verify(old, later)


def test_receiver_down_then_back_is_retried_with_backoff_and_the_same_webhook_id(setup, receiver):
    """A 503 is a failed attempt retried about 30 s later; once the receiver answers 2xx the
    delivery is delivered, with the webhook-id of the first attempt."""
    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    receiver.status = 503
    assert deliver_all() == ["failed"]
    first = only_delivery()
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 503)
    assert first.last_error == "HTTP 503"
    wait = first.next_attempt_at - first.last_attempt_at
    assert timedelta(seconds=24) <= wait <= timedelta(seconds=36)
    assert delivery.deliver(first.id) == "skipped"  # not due yet
    receiver.status = 200
    with time_machine.travel(first.next_attempt_at + timedelta(seconds=1), tick=False):
        assert deliver_all() == ["delivered"]
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 2 and ids == {first.event_id}
    done = only_delivery()
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 200)


def test_the_retry_schedule_spans_about_three_days_with_jitter():
    """30 s, 2 min, 10 min, 1 h, 6 h, 12 h, then daily: 10 attempts; even the shortest draws
    reach past the three days after which a silent endpoint is disabled."""
    import random

    rng = random.Random(7)
    delays = [delivery.retry_delay(n, rng) for n in range(1, delivery.MAX_ATTEMPTS + 1)]
    assert delays[-1] is None
    for delay, base in zip(delays, delivery.RETRY_DELAYS, strict=False):
        assert base * 0.8 <= delay.total_seconds() <= base * 1.2
    shortest = sum(delivery.RETRY_DELAYS) * (1 - delivery.JITTER)
    assert timedelta(seconds=shortest) >= delivery.DISABLE_AFTER
    assert sum(delivery.RETRY_DELAYS) / 3600 < 4 * 24  # hours to the last attempt


def test_redirects_are_not_followed_and_one_kib_of_the_answer_is_kept(setup, receiver):
    """A 302 is a failure saying so; the log keeps the first 1024 bytes of the answer."""
    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    receiver.status = 302
    receiver.answer = b"x" * 5000
    deliver_all()
    attempt = only_delivery()
    assert len(receiver.received) == 1  # the Location was not followed
    assert attempt.last_error == "HTTP 302 (redirects are not followed)"
    assert attempt.last_response == "x" * 1024


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(setup, receiver):
    """No answer within WEBHOOK_TIMEOUT (1 s here): failed, retried later."""
    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    receiver.delay = 2.5
    assert deliver_all() == ["failed"]
    attempt = only_delivery()
    assert attempt.last_error == "No answer within 1 s."
    assert attempt.status == "pending" and attempt.last_status_code is None


def test_three_days_without_success_disable_the_endpoint_and_enabling_retries(setup, receiver):
    """Failures spread over three days disable the endpoint (audited, announced to another
    endpoint); its pending deliveries wait; enabling it delivers them at once."""
    failing, _ = factories.make_webhook_endpoint(setup.tenant, receiver.url + "/failing", CREATED)
    with Receiver() as watcher:
        factories.make_webhook_endpoint(setup.tenant, watcher.url, ["webhook_endpoint.disabled"])
        factories.make_channel(setup, "email", name="Support")
        receiver.status = 500
        start = utcnow()
        with time_machine.travel(start, tick=False) as traveller:
            for _ in range(delivery.MAX_ATTEMPTS):
                row = only_delivery(failing.id)
                if row.status != "pending" or row.endpoint.status != "enabled":
                    break
                traveller.move_to(row.next_attempt_at + timedelta(seconds=1))
                assert delivery.deliver(row.id) == "failed"
            endpoint = db.session.get(WebhookEndpoint, failing.id)
            db.session.refresh(endpoint)
            assert endpoint.status == "disabled" and endpoint.disabled_reason == "failing"
            assert utcnow() - start >= delivery.DISABLE_AFTER
            row = only_delivery(failing.id)
            assert row.status == "pending"  # kept for when the endpoint is back
            assert delivery.deliver(row.id) == "skipped"  # nothing goes to a disabled endpoint
            audit = db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.disable")
            ).one()
            assert audit.actor_type == "system" and audit.resource_id == failing.id
            announce = db.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id != failing.id)
            ).one()
            assert delivery.deliver(announce.id) == "delivered"
            assert watcher.payloads()[0]["type"] == "webhook_endpoint.disabled"
            assert watcher.payloads()[0]["data"]["id"] == failing.id

            receiver.status = 200
            webhooks.update_endpoint(
                setup.tenant.id,
                failing.id,
                WebhookEndpointUpdate(status="enabled"),
                factories.ACTOR,
            )
            db.session.commit()
            assert delivery.deliver(row.id) == "delivered"
    assert only_delivery(failing.id).status == "delivered"


def test_the_dispatcher_takes_due_rows_and_the_sweeper_takes_lost_ones(app, setup, receiver):
    """New rows wait out the commit's own hand-over, then the dispatcher hands them over once;
    a row handed over and never finished is handed over again after OUTBOX_SWEEP_SECONDS."""
    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    row_id = only_delivery().id
    now = utcnow()
    assert delivery.due_deliveries(now) == []  # the commit handed it over a moment ago
    later = now + delivery.DISPATCH_GRACE + timedelta(seconds=1)
    assert delivery.due_deliveries(later) == [row_id]
    assert delivery.due_deliveries(later) == []  # handed over once
    sweep = timedelta(seconds=app.config["OUTBOX_SWEEP_SECONDS"])
    assert delivery.stale_deliveries(later + sweep - timedelta(seconds=1)) == []
    assert delivery.stale_deliveries(later + sweep + timedelta(seconds=1)) == [row_id]
    # A worker holds it (a lease of 3 × WEBHOOK_TIMEOUT): the sweeper leaves it alone until the
    # lease runs out (a killed worker), then hands it over again.
    app.config.update(WEBHOOK_TIMEOUT=1000.0)
    assert delivery.claim(row_id)
    claimed = utcnow()
    handed = later + sweep + timedelta(seconds=1)  # when the sweeper handed it over above
    assert claimed + timedelta(seconds=2000) > handed + sweep  # stale by its hand-over time
    assert delivery.stale_deliveries(claimed + timedelta(seconds=2000)) == []  # but leased
    assert delivery.stale_deliveries(claimed + timedelta(seconds=3010)) == [row_id]


def test_a_url_that_turns_private_is_refused_at_delivery(app, setup, receiver):
    """The SSRF guard checks again before each attempt: with private URLs no longer allowed,
    the attempt fails naming why and nothing reaches the address."""
    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    assert deliver_all() == ["failed"]
    assert receiver.received == []
    assert "must use https" in only_delivery().last_error


def _count(name: str, **labels) -> float:
    from core.metrics import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_attempts_the_outbox_and_task_failures_are_measured(app, setup, receiver, monkeypatch):
    """channels_webhook_deliveries_total{outcome} counts recorded attempts; the outbox probe
    reports due rows not yet handed over and the oldest one's age; a task that raises counts
    in channels_task_failures_total{task}."""
    from core import tasks

    factories.make_webhook_endpoint(setup.tenant, receiver.url, CREATED)
    factories.make_channel(setup, "email", name="Support")
    state = delivery.outbox_state(now=utcnow() + timedelta(seconds=90))
    assert state.depth == 1 and 89 <= state.oldest_age_seconds <= 91
    retry = _count("channels_webhook_deliveries_total", outcome="retry")
    delivered = _count("channels_webhook_deliveries_total", outcome="delivered")
    receiver.status = 503
    assert deliver_all() == ["failed"]
    assert _count("channels_webhook_deliveries_total", outcome="retry") == retry + 1
    assert delivery.outbox_state().depth == 0  # the retry is not due yet
    receiver.status = 200
    with time_machine.travel(only_delivery().next_attempt_at + timedelta(seconds=1), tick=False):
        assert deliver_all() == ["delivered"]
    assert _count("channels_webhook_deliveries_total", outcome="delivered") == delivered + 1

    failures = _count("channels_task_failures_total", task=tasks.DISPATCH)

    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setattr(delivery, "due_deliveries", broken)
    with pytest.raises(RuntimeError):
        tasks.dispatch_outbox.apply(throw=True)
    assert _count("channels_task_failures_total", task=tasks.DISPATCH) == failures + 1
