"""Concurrent writes against gunicorn with 4 workers: defaults, idempotency and unique names hold.

50 clients, each on its own connection, released together by a barrier. On SQLite this is
what BEGIN IMMEDIATE plus the busy timeout (core/database.py) must hold up; on PostgreSQL the
tenant row lock, the partial unique index and the idempotency unique key.
"""

from __future__ import annotations

from sqlalchemy import func, select

from core.extensions import db
from core.models import AuditEvent, Channel, IdempotencyRecord
from tests import factories
from tests.reliability.live import in_parallel, statuses

CLIENTS = 50


def _ready(live):
    """A fresh tenant with everything channels need, and a write key."""
    with live.context():
        ready = factories.make_ready_tenant(factories.make_tenant())
        key = factories.make_api_key(ready.tenant)
        ids = {
            "tenant": ready.tenant.id,
            "email_integration": ready.email_integration.id,
            "domain": ready.domain.id,
        }
    return ids, key


def _email_payload(ids: dict, name: str, **extra) -> dict:
    return {
        "name": name,
        "channel_type": "email",
        "integration_id": ids["email_integration"],
        "send_from_email": "support@example.com",
        "email_domain_id": ids["domain"],
        **extra,
    }


def test_concurrent_make_default_leaves_exactly_one_default(live):
    """50 parallel PATCH is_default=true on 50 email channels: all succeed, one default remains."""
    with live.context():
        ready = factories.make_ready_tenant(factories.make_tenant())
        key = factories.make_api_key(ready.tenant)
        ids = {"tenant": ready.tenant.id}
        channel_ids = [
            factories.make_channel(ready, "email", name=f"Mail {n}", is_default=False).id
            for n in range(CLIENTS)
        ]

    replies = in_parallel(
        [
            (
                lambda cid=cid: live.request(
                    "PATCH", f"/api/channels/{cid}", {"is_default": True}, key
                )
            )
            for cid in channel_ids
        ]
    )

    assert statuses(replies) == [200] * CLIENTS
    listed = live.request("GET", "/api/channels?channel_type=email&is_default=true", key=key).json()
    assert len(listed["data"]) == 1
    with live.context():
        defaults = db.session.scalar(
            select(func.count())
            .select_from(Channel)
            .where(Channel.tenant_id == ids["tenant"], Channel.is_default.is_(True))
        )
    assert defaults == 1


def test_concurrent_posts_with_one_idempotency_key_create_one_channel(live):
    """50 parallel identical POSTs with one Idempotency-Key: one channel, 50 identical answers."""
    ids, key = _ready(live)
    payload = _email_payload(ids, "Idempotent channel")
    headers = {"Idempotency-Key": "same-key-for-all"}

    replies = in_parallel(
        [lambda: live.request("POST", "/api/channels", payload, key, headers=headers)] * CLIENTS
    )

    assert statuses(replies) == [201] * CLIENTS
    assert len({r.body for r in replies}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in replies) == CLIENTS - 1
    with live.context():
        count = db.session.scalar(
            select(func.count()).select_from(Channel).where(Channel.tenant_id == ids["tenant"])
        )
        records = db.session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.tenant_id == ids["tenant"])
        )
    assert (count, records) == (1, 1)


def test_concurrent_creates_with_one_name_create_exactly_one(live):
    """50 parallel creates with the same name (no key): exactly one 201, 49 × 422 on name."""
    ids, key = _ready(live)
    payloads = [
        _email_payload(ids, "Contested name", metadata={"client": n}) for n in range(CLIENTS)
    ]

    replies = in_parallel(
        [(lambda p=p: live.request("POST", "/api/channels", p, key)) for p in payloads]
    )

    codes = statuses(replies)
    assert codes.count(201) == 1, codes
    assert codes.count(422) == CLIENTS - 1, codes
    for reply in replies:
        if reply.status == 422:
            assert reply.json()["error"]["fields"] == {
                "name": ["A channel with this name already exists."]
            }
    with live.context():
        channels = db.session.scalars(
            select(Channel).where(Channel.tenant_id == ids["tenant"])
        ).all()
        audits = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.tenant_id == ids["tenant"], AuditEvent.action == "channel.create")
        )
    assert len(channels) == 1 and channels[0].is_default
    assert audits == 1
