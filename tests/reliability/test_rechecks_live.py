"""The re-checks on real processes (DESIGN §9): a ``flask scheduler`` and a ``flask worker`` on
Redis (db 7, a queue of the test's own), short intervals, the test's DNS server and a webhook
receiver. Nobody calls a job by hand: the scheduler's tick claims the due domain, the worker
checks it, and the events reach the receiver.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, Channel
from tests import factories
from tests.reliability.test_webhooks_live import Processes, redis_answers, wait_until
from tests.webhook_receiver import Receiver, verify

REDIS_URL = "redis://127.0.0.1:6379/7"
# Seconds-long schedules: a verified domain every ~0.7 s, a pending one every ~0.6 s.
FAST = {
    "OUTBOX_POLL_SECONDS": "0.5",
    "OUTBOX_SWEEP_SECONDS": "3",
    "WEBHOOK_TIMEOUT": "2",
    "RECHECK_TICK_SECONDS": "0.5",
    "DOMAIN_RECHECK_HOURS": "0.0002",
    "DOMAIN_PENDING_CHECK_MINUTES": "0.01",
    "DOMAIN_GRACE_CHECKS": "2",
    "RECHECK_LEASE_SECONDS": "30",
    "DNS_TIMEOUT": "1",
}
WATCHED = [
    "email_domain.at_risk",
    "email_domain.verification_failed",
    "email_domain.verified",
    "channel.status_changed",
]


@pytest.fixture
def queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_config(app_config, queue, zone):
    """The test's app publishes to the same broker, resolves through the test's DNS and
    schedules with the same short intervals as the processes."""
    return {
        **app_config,
        **{key: float(value) for key, value in FAST.items() if key != "DOMAIN_GRACE_CHECKS"},
        "DOMAIN_GRACE_CHECKS": int(FAST["DOMAIN_GRACE_CHECKS"]),
        "BROKER_URL": REDIS_URL,
        "TASK_QUEUE": queue,
        "DNS_NAMESERVERS": f"127.0.0.1:{zone.port}",
    }


@pytest.fixture
def processes(app, database_url, tmp_path, queue, zone):
    env = {
        "CHANNELS_ENV": "testing",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "TASK_QUEUE": queue,
        "LOG_LEVEL": "INFO",
        "DNS_NAMESERVERS": f"127.0.0.1:{zone.port}",
        **FAST,
    }
    running = Processes(tmp_path, env)
    yield running
    running.stop_all()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def received(receiver: Receiver, secret: str, resource_id: str) -> list[dict]:
    """The payloads about one resource (signatures verified), in its own order (``sequence``:
    deliveries run in parallel, so arrival order is not the events' order)."""
    with receiver.lock:
        requests = list(receiver.received)
    payloads = [verify(secret, request) for request in requests]
    mine = [p for p in payloads if p["data"]["id"] == resource_id]
    return sorted(mine, key=lambda p: p["sequence"])


@pytest.mark.skipif(not redis_answers(REDIS_URL), reason=f"Redis does not answer at {REDIS_URL}")
def test_the_scheduler_rechecks_domains_on_a_live_worker(api, setup, zone, processes, receiver):
    """Record removed → at_risk → failed (channel pending) → record back → verified (channel
    available): each step by the scheduler and a worker alone, each event at the receiver."""
    body = api.post("/api/email_domains", json={"domain": "live.example.net"}).get_json()
    records = {r["purpose"]: r for r in body["dns_records"]}
    for record in records.values():
        zone.publish(record["host"], record["type"], record["value"])
    assert api.post(f"/api/email_domains/{body['id']}/verify").get_json()["status"] == "verified"
    channel = factories.make_channel(
        setup, "email", email_domain_id=body["id"], send_from_email="hi@live.example.net"
    )
    _, secret = factories.make_webhook_endpoint(setup.tenant, receiver.url, WATCHED)
    domain_id, channel_id = body["id"], channel.id
    db.session.rollback()  # the test holds no SQLite transaction while the processes work
    ownership = records["verification"]
    zone.unpublish(ownership["host"], "TXT")

    processes.scheduler()
    processes.worker()

    def seen() -> list[str]:
        return [p["type"] for p in received(receiver, secret, domain_id)]

    wait_until(
        lambda: "email_domain.verification_failed" in seen(),
        90,
        "at_risk then verification_failed from the scheduler",
        processes,
    )
    db.session.rollback()
    assert db.session.get(Channel, channel_id).status == "pending_verification"
    db.session.rollback()

    zone.publish(ownership["host"], "TXT", ownership["value"])
    wait_until(
        lambda: "email_domain.verified" in seen(), 90, "verified again by the scheduler", processes
    )
    wait_until(
        lambda: len(received(receiver, secret, channel_id)) == 2,
        30,
        "both channel events",
        processes,
    )
    assert seen() == [
        "email_domain.at_risk",
        "email_domain.verification_failed",
        "email_domain.verified",
    ]
    moves = [p["change"] for p in received(receiver, secret, channel_id)]
    assert [(m["from"], m["to"], m["cause"]) for m in moves] == [
        ("available", "pending_verification", "domain"),
        ("pending_verification", "available", "domain"),
    ]
    db.session.rollback()
    assert db.session.get(Channel, channel_id).status == "available"
    actors = {
        (row.actor_type, row.actor_name)
        for row in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "email_domain.recheck")
        )
    }
    assert ("system", "scheduled DNS check") in actors
    changes = [
        json.dumps(row.changes)
        for row in db.session.scalars(
            select(AuditEvent).where(AuditEvent.resource_id == channel_id)
        )
    ]
    assert any("domain failed" in c for c in changes) and any(
        "domain verified" in c for c in changes
    )
    db.session.rollback()
