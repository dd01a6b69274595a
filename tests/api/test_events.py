"""The transactional outbox: every change writes its events in its own transaction (payload =
the resource as the API renders it, per-resource sequence), a rolled-back change writes none,
deliveries go only to the tenant's subscribed endpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.events import body_of
from core.extensions import db
from core.models import Event, WebhookDelivery
from core.services import audit as audit_module
from core.settings import Nameserver
from tests import factories
from tests.api.assertions import database_state
from tests.api.test_atomicity import Crash, crash_on_audit


def events(*types: str) -> list[dict]:
    """The committed events' payloads, oldest first (only ``types`` when given)."""
    db.session.rollback()
    query = select(Event).order_by(Event.created_at, Event.id)
    rows = [e for e in db.session.scalars(query) if not types or e.type in types]
    db.session.rollback()
    return [dict(body_of(e), id=e.id, resource_id=e.resource_id) for e in rows]


@pytest.fixture
def hook(setup):
    """An endpoint of the tenant subscribed to everything."""
    return factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/hook")[0]


def test_channel_changes_emit_created_updated_status_default_and_deleted(api, setup, hook):
    """Each API change of a channel writes its events; data is the API's own answer."""
    first = api.post("/api/channels", json=setup.email_payload(name="First")).get_json()
    second = api.post("/api/channels", json=setup.email_payload(name="Second")).get_json()
    created = events("channel.created")
    assert [e["data"] for e in created] == [first, second]
    assert [e["sequence"] for e in created] == [1, 1]
    assert created[0]["timestamp"].endswith("Z")

    renamed = api.patch(f"/api/channels/{second['id']}", json={"name": "Renamed"}).get_json()
    updated = events("channel.updated")[-1]
    assert updated["data"] == renamed and updated["sequence"] == 2
    assert updated["change"] == {"fields": {"name": {"before": "Second", "after": "Renamed"}}}

    # Disabling the default: status_changed (admin) and a handover to the other channel.
    api.patch(f"/api/channels/{first['id']}", json={"status": "disabled"})
    status = events("channel.status_changed")[-1]
    assert status["change"] == {"from": "available", "to": "disabled", "cause": "admin"}
    assert status["data"]["id"] == first["id"] and status["data"]["status"] == "disabled"
    moved = events("channel.default_changed")[-1]
    assert moved["change"] == {"cause": "handover"}
    assert moved["data"]["previous_default"]["id"] == first["id"]
    assert moved["data"]["new_default"]["id"] == second["id"]
    assert moved["data"]["new_default"]["is_default"] is True

    api.delete(f"/api/channels/{second['id']}")
    deleted = events("channel.deleted")[-1]
    assert deleted["data"]["id"] == second["id"] and deleted["data"]["name"] == "Renamed"
    assert deleted["sequence"] == 3  # created, updated, deleted
    last = events("channel.default_changed")[-1]
    assert last["data"]["previous_default"]["id"] == second["id"]
    assert last["data"]["new_default"] is None  # the other channel is disabled: nobody took over
    sequences = [e["sequence"] for e in events("channel.default_changed")]
    assert sequences == list(range(1, len(sequences) + 1))


def test_setting_the_default_names_the_previous_and_the_new_one(api, setup, hook):
    """channel.default_changed (admin): previous and new default, both as the API renders them."""
    first = factories.make_channel(setup, "email", name="First")
    second = factories.make_channel(setup, "email", name="Second")
    api.patch(f"/api/channels/{second.id}", json={"is_default": True})
    moved = events("channel.default_changed")[-1]
    assert moved["change"] == {"cause": "admin"}
    assert moved["data"]["channel_type"] == "email"
    assert moved["data"]["previous_default"]["id"] == first.id
    assert moved["data"]["previous_default"]["is_default"] is False
    assert moved["data"]["new_default"] == api.get(f"/api/channels/{second.id}").get_json()


def test_resource_changes_cascade_with_their_cause(api, setup, hook):
    """Disabling an integration, releasing a number: their own events, then each channel's
    status_changed naming the cause (integration, number)."""
    email = factories.make_channel(setup, "email", name="Mail")
    sms = factories.make_channel(setup, "sms", name="Text")
    api.patch(f"/api/integrations/{setup.email_integration.id}", json={"status": "disabled"})
    integration = events("integration.status_changed")[-1]
    assert integration["change"] == {"from": "active", "to": "disabled", "cause": "admin"}
    assert integration["data"]["status"] == "disabled"
    channel = events("channel.status_changed")[-1]
    assert channel["resource_id"] == email.id
    assert channel["change"] == {"from": "available", "to": "disabled", "cause": "integration"}

    api.post(f"/api/phone_numbers/{setup.number.id}/release")
    released = events("phone_number.released")[-1]
    assert released["data"]["status"] == "released"
    assert released["data"]["channel_id"] == sms.id
    channel = events("channel.status_changed")[-1]
    assert channel["resource_id"] == sms.id and channel["change"]["cause"] == "number"


def test_integration_domain_and_number_lifecycles(app, api, setup, hook, zone):
    """created/updated/deleted integrations (secrets masked), domains created/verification
    failed/verified/deleted, numbers added (with their channel)/deleted."""
    made = api.post(
        "/api/integrations",
        json={
            "name": "SendGrid",
            "channel_type": "email",
            "provider": "sendgrid",
            "credentials": {"api_key": "SG.very-secret"},
        },
    ).get_json()
    api.patch(f"/api/integrations/{made['id']}", json={"credentials": {"api_key": "SG.other"}})
    api.delete(f"/api/integrations/{made['id']}")
    assert events("integration.created")[-1]["data"] == made
    assert events("integration.updated")[-1]["change"]["fields"] == {
        "credentials.api_key": {"before": "********", "after": "********"}
    }
    assert events("integration.deleted")[-1]["data"]["id"] == made["id"]
    assert "SG." not in str(events())

    app.config.update(DNS_NAMESERVERS=(Nameserver("127.0.0.1", zone.port),), DNS_TIMEOUT=2.0)
    domain = api.post("/api/email_domains", json={"domain": "mail.example.org"}).get_json()
    assert events("email_domain.created")[-1]["data"] == domain
    api.post(f"/api/email_domains/{domain['id']}/verify")
    failed = events("email_domain.verification_failed")[-1]
    assert failed["data"]["status"] == "failed"
    assert failed["change"]["records"]["verification"] == "missing"
    token = domain["dns_records"][0]
    zone.publish(token["host"], "TXT", token["value"])
    api.post(f"/api/email_domains/{domain['id']}/verify")
    assert events("email_domain.verified")[-1]["data"]["status"] == "verified"
    api.delete(f"/api/email_domains/{domain['id']}")
    assert events("email_domain.deleted")[-1]["resource_id"] == domain["id"]

    number = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+15005550006", "integration_id": setup.sms_integration.id},
    ).get_json()
    added = events("phone_number.added")[-1]
    assert added["data"] == number and added["data"]["channel_id"] == number["channel_id"]
    api.delete(f"/api/channels/{number['channel_id']}")
    api.delete(f"/api/phone_numbers/{number['id']}")
    assert events("phone_number.deleted")[-1]["data"]["id"] == number["id"]


def test_every_event_of_a_change_is_delivered_to_subscribed_endpoints_only(api, setup):
    """["*"] gets every event; a narrower list only its types; other tenants' endpoints none;
    disabled endpoints none."""
    everything, _ = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/all")
    narrow, _ = factories.make_webhook_endpoint(
        setup.tenant, "http://127.0.0.1:9/narrow", ["channel.deleted"]
    )
    off, _ = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/off")
    from core.schemas.webhooks import WebhookEndpointUpdate
    from core.services import webhooks

    webhooks.update_endpoint(
        setup.tenant.id, off.id, WebhookEndpointUpdate(status="disabled"), factories.ACTOR
    )
    db.session.commit()
    other = factories.make_tenant()
    foreign, _ = factories.make_webhook_endpoint(other, "http://127.0.0.1:9/other")

    api.post("/api/channels", json=setup.email_payload(name="Mine"))
    db.session.rollback()
    rows = db.session.execute(
        select(WebhookDelivery.endpoint_id, Event.type, Event.tenant_id).join(Event)
    ).all()
    assert {(r.endpoint_id, r.type) for r in rows} == {
        (everything.id, "channel.created"),
        (everything.id, "channel.default_changed"),
    }
    assert {r.tenant_id for r in rows} == {setup.tenant.id}
    assert narrow.id not in {r.endpoint_id for r in rows}
    assert {foreign.id, off.id}.isdisjoint({r.endpoint_id for r in rows})


def test_a_refused_change_emits_nothing(api, setup, hook):
    """A 422 writes no event and no delivery."""
    api.get("/api/channels")  # the key's first use is written now, not during the test
    before = database_state()
    response = api.post("/api/channels", json=setup.email_payload(name=""))
    assert response.status_code == 422
    assert database_state() == before


def test_a_change_that_fails_after_writing_its_events_leaves_none(api, setup, hook, monkeypatch):
    """The failure comes after the channel's events were written (the handover's audit): 500,
    and neither the channel nor any event nor any delivery exists."""
    first = factories.make_channel(setup, "email", name="First")
    factories.make_channel(setup, "email", name="Second")
    api.get("/api/channels")
    before = database_state()
    recorded = crash_on_audit(monkeypatch, "channel.default_handover")
    response = api.delete(f"/api/channels/{first.id}")
    assert response.status_code == 500
    assert "channel.delete" in recorded  # the deletion and its events were written first
    monkeypatch.setattr(audit_module, "record", audit_module.record)
    assert database_state() == before
    assert Crash  # the simulated failure of tests/api/test_atomicity.py


def test_cli_changes_emit_too(app, hook):
    """seed-demo creates integrations, a domain, a number and channels: all announced (to the
    demo tenant's endpoints; here, the events themselves)."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    types = {e["type"] for e in events()}
    assert {"integration.created", "phone_number.added", "channel.created"} <= types
