"""Real concurrency on PostgreSQL: threads, each with its own test client, app context and
database connection, released together by a barrier. SQLite serialises writers, so these run on
PostgreSQL only (skipped with the reason elsewhere)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.models import AuditEvent, Channel
from tests import factories

pytestmark = pytest.mark.postgres_only

THREADS = 12


def run_together(app, request_of) -> list:
    """Run ``request_of(client, i)`` in THREADS threads started at once; the responses, in order."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    errors: list = []

    def worker(i):
        try:
            client = app.test_client()
            barrier.wait(timeout=30)
            response = request_of(client, i)
            results[i] = (response.status_code, response.get_json())
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)

    db.session.commit()  # the test's own transaction must not hold anything the threads need
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all(result is not None for result in results)
    return results


def _defaults(tenant_id, channel_type) -> list[str]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(Channel.id).where(
                Channel.tenant_id == tenant_id,
                Channel.channel_type == channel_type,
                Channel.is_default.is_(True),
            )
        )
    )


def test_concurrent_make_default_leaves_exactly_one_default(app, api, setup):
    """Each thread makes another channel the default: all succeed, exactly one default remains."""
    channels = [
        factories.make_channel(setup, "email", name=f"Candidate {i}") for i in range(THREADS)
    ]
    ids = [c.id for c in channels]
    headers = {"Authorization": f"Bearer {api.key}"}
    api.get("/api/channels")  # record the key's use now, not in every thread

    results = run_together(
        app,
        lambda client, i: client.patch(
            f"/api/channels/{ids[i]}", json={"is_default": True}, headers=headers
        ),
    )

    assert [status for status, _ in results] == [200] * THREADS
    assert all(body["is_default"] is True for _, body in results)
    defaults = _defaults(setup.tenant.id, "email")
    assert len(defaults) == 1 and defaults[0] in ids
    set_events = db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "channel.default_set")
    )
    # Candidate 0 was the default already, so its own request may change nothing.
    assert set_events in (THREADS - 1, THREADS)


def test_concurrent_creates_with_one_name_create_exactly_one(app, api, setup):
    """The same name from every thread: one 201, every other one 422 on ``name``; no 500."""
    headers = {"Authorization": f"Bearer {api.key}"}
    payloads = [
        setup.email_payload(name="Launch", send_from_email=f"l{i}@example.com")
        for i in range(THREADS)
    ]
    api.get("/api/channels")

    results = run_together(
        app, lambda client, i: client.post("/api/channels", json=payloads[i], headers=headers)
    )

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [422] * (THREADS - 1)
    for status, body in results:
        if status == 422:
            assert list(body["error"]["fields"]) == ["name"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Channel)) == 1
    assert len(_defaults(setup.tenant.id, "email")) == 1


def test_concurrent_first_channels_leave_one_default(app, api, setup):
    """Many first channels at once, is_default omitted: exactly one becomes default."""
    headers = {"Authorization": f"Bearer {api.key}"}
    payloads = [setup.sms_payload(name=f"Parallel {i}") for i in range(THREADS)]
    api.get("/api/channels")

    results = run_together(
        app, lambda client, i: client.post("/api/channels", json=payloads[i], headers=headers)
    )

    assert [status for status, _ in results] == [201] * THREADS
    assert sum(body["is_default"] for _, body in results) == 1
    assert len(_defaults(setup.tenant.id, "sms")) == 1


def test_concurrent_adds_of_one_number_by_two_tenants_create_one(
    app, api, other_api, setup, other_setup
):
    """A number is unique platform-wide: tenants racing for it get one 201 and 422s, never a 500."""
    callers = [(api.key, setup.sms_integration.id), (other_api.key, other_setup.sms_integration.id)]
    api.get("/api/channels")
    other_api.get("/api/channels")

    def add(client, i):
        key, integration_id = callers[i % 2]
        body = {"phone_number": "+14155550160", "integration_id": integration_id}
        return client.post(
            "/api/phone_numbers", json=body, headers={"Authorization": f"Bearer {key}"}
        )

    results = run_together(app, add)

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [422] * (THREADS - 1)
    for status, body in results:
        if status == 422:
            assert list(body["error"]["fields"]) == ["phone_number"]


def test_concurrent_adds_of_one_domain_create_one(app, api, setup):
    """The same domain from every thread of one tenant: one 201, the rest 422; never a 500."""
    headers = {"Authorization": f"Bearer {api.key}"}
    api.get("/api/channels")

    results = run_together(
        app,
        lambda client, i: client.post(
            "/api/email_domains", json={"domain": "example.net"}, headers=headers
        ),
    )

    assert sorted(status for status, _ in results) == [201] + [422] * (THREADS - 1)
