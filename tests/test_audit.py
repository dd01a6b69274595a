"""The audit log: every API write is recorded with its actor and diff, in the same transaction;
nothing is recorded for rolled-back work; secrets never appear; /api/audit_events filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey, AuditEvent
from core.providers import SECRET_MASK
from core.services import accounts
from core.services import email_domains as email_domain_service
from core.services.audit import Actor
from tests import factories

SECRET = "SG.very-secret-sendgrid-key-0123456789"


def events(tenant_id: str, **filters) -> list[AuditEvent]:
    """The tenant's events matching column filters, oldest first."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    for name, value in filters.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(db.session.scalars(query.order_by(AuditEvent.created_at, AuditEvent.id)))


def api_key_of(tenant) -> ApiKey:
    return db.session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant.id, ApiKey.name == "Test key")
    )


def only(tenant_id: str, action: str) -> AuditEvent:
    """The one event of ``action``."""
    found = events(tenant_id, action=action)
    assert len(found) == 1, [e.action for e in events(tenant_id)]
    return found[0]


def assert_by_api_key(event: AuditEvent, tenant) -> None:
    key = api_key_of(tenant)
    assert (event.actor_type, event.actor_id, event.actor_name) == ("api_key", key.id, "Test key")
    assert event.request_id and event.ip == "127.0.0.1"


# --- channels ---------------------------------------------------------------------------------


def test_channel_create_is_recorded_with_the_key_and_every_field(api, setup):
    """POST /api/channels: channel.create by the API key, before empty, after every field."""
    body = api.post("/api/channels", json=setup.email_payload(name="Support")).get_json()
    event = only(setup.tenant.id, "channel.create")
    assert_by_api_key(event, setup.tenant)
    assert (event.resource_type, event.resource_id) == ("channel", body["id"])
    assert event.changes["name"] == {"before": None, "after": "Support"}
    assert event.changes["send_from_email"] == {"before": None, "after": "support@example.com"}
    assert event.changes["is_default"] == {"before": None, "after": True}
    assert event.changes["status"] == {"before": None, "after": "available"}


def test_channel_update_records_only_changed_fields(api, setup):
    """PATCH name: channel.update whose diff holds the name and nothing else."""
    channel = factories.make_channel(setup, name="Before")
    response = api.patch(f"/api/channels/{channel.id}", json={"name": "After", "metadata": {}})
    assert response.status_code == 200
    event = only(setup.tenant.id, "channel.update")
    assert_by_api_key(event, setup.tenant)
    assert event.resource_id == channel.id
    assert event.changes == {"name": {"before": "Before", "after": "After"}}


def test_default_change_records_both_channels(api, setup):
    """Making a channel default records default_set on it and default_cleared on the old one."""
    first = factories.make_channel(setup)
    second = factories.make_channel(setup, is_default=False)
    assert api.patch(f"/api/channels/{second.id}", json={"is_default": True}).status_code == 200
    assert only(setup.tenant.id, "channel.default_set").resource_id == second.id
    cleared = [
        e
        for e in events(setup.tenant.id, action="channel.default_cleared")
        if e.actor_type == "api_key"
    ]
    assert [e.resource_id for e in cleared] == [first.id]
    assert cleared[0].changes == {"is_default": {"before": True, "after": False}}


def test_disable_and_enable_are_recorded_with_the_handover(api, setup):
    """Disabling the default records channel.disable and the successor's default_handover."""
    default = factories.make_channel(setup)
    other = factories.make_channel(setup, is_default=False)
    assert api.patch(f"/api/channels/{default.id}", json={"status": "disabled"}).status_code == 200
    disabled = only(setup.tenant.id, "channel.disable")
    assert disabled.changes["status"] == {"before": "available", "after": "disabled"}
    assert disabled.changes["is_default"] == {"before": True, "after": False}
    handover = only(setup.tenant.id, "channel.default_handover")
    assert handover.resource_id == other.id and handover.changes["replaces"] == default.id
    assert api.patch(f"/api/channels/{default.id}", json={"status": "available"}).status_code == 200
    enabled = only(setup.tenant.id, "channel.enable")
    assert enabled.changes == {"status": {"before": "disabled", "after": "available"}}
    assert_by_api_key(enabled, setup.tenant)


def test_channel_delete_records_the_last_values(api, setup):
    """DELETE: channel.delete whose diff keeps what the channel was."""
    channel = factories.make_channel(setup, name="Gone")
    assert api.delete(f"/api/channels/{channel.id}").status_code == 204
    event = only(setup.tenant.id, "channel.delete")
    assert_by_api_key(event, setup.tenant)
    assert event.changes["name"] == {"before": "Gone", "after": None}


# --- integrations, domains, numbers ------------------------------------------------------------


def test_integration_writes_are_recorded_with_secrets_masked(api, tenant):
    """Create, update (new secret) and delete an integration: recorded, the secret masked."""
    created = api.post(
        "/api/integrations",
        json={
            "name": "SendGrid",
            "channel_type": "email",
            "provider": "sendgrid",
            "credentials": {"api_key": SECRET},
        },
    ).get_json()
    event = only(tenant.id, "integration.create")
    assert_by_api_key(event, tenant)
    assert event.changes["credentials.api_key"] == {"before": None, "after": SECRET_MASK}
    assert event.changes["provider"] == {"before": None, "after": "sendgrid"}

    response = api.patch(
        f"/api/integrations/{created['id']}",
        json={"name": "SendGrid 2", "credentials": {"api_key": SECRET + "-rotated"}},
    )
    assert response.status_code == 200
    update = only(tenant.id, "integration.update")
    assert update.changes["name"] == {"before": "SendGrid", "after": "SendGrid 2"}
    assert update.changes["credentials.api_key"] == {"before": SECRET_MASK, "after": SECRET_MASK}

    assert (
        api.patch(f"/api/integrations/{created['id']}", json={"status": "disabled"}).status_code
        == 200
    )
    assert only(tenant.id, "integration.disable").changes == {
        "status": {"before": "active", "after": "disabled"}
    }
    assert api.delete(f"/api/integrations/{created['id']}").status_code == 204
    assert (
        only(tenant.id, "integration.delete").changes["credentials.api_key"]["before"]
        == SECRET_MASK
    )
    everything = json.dumps([e.changes for e in events(tenant.id)])
    assert SECRET not in everything and "very-secret" not in everything


def test_email_domain_writes_are_recorded(api, tenant, monkeypatch):
    """Create, verify and delete a domain: recorded with the status change of the check."""
    created = api.post("/api/email_domains", json={"domain": "mail.example.net"}).get_json()
    assert only(tenant.id, "email_domain.create").changes == {
        "domain": {"before": None, "after": "mail.example.net"}
    }
    monkeypatch.setattr(
        email_domain_service,
        "check_records",
        lambda domain: {
            "verification": email_domain_service.RecordCheck("verified", ["x"]),
            "spf": email_domain_service.RecordCheck("missing", []),
            "dkim": email_domain_service.RecordCheck("missing", []),
        },
    )
    assert api.post(f"/api/email_domains/{created['id']}/verify").status_code == 200
    verify = only(tenant.id, "email_domain.verify")
    assert_by_api_key(verify, tenant)
    assert verify.changes["status"] == {"before": "pending", "after": "verified"}
    assert api.delete(f"/api/email_domains/{created['id']}").status_code == 204
    assert only(tenant.id, "email_domain.delete").changes == {
        "domain": {"before": "mail.example.net", "after": None}
    }


def test_phone_number_writes_are_recorded(api, tenant):
    """Adding a number records it and its auto-created channel; release and delete too."""
    integration = factories.make_integration(tenant, "sms")
    body = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+14155550999", "integration_id": integration.id},
    ).get_json()
    created = only(tenant.id, "phone_number.create")
    assert_by_api_key(created, tenant)
    assert created.changes["phone_number"] == {"before": None, "after": "+14155550999"}
    assert only(tenant.id, "channel.create").resource_id == body["channel_id"]
    assert api.post(f"/api/phone_numbers/{body['id']}/release").status_code == 200
    assert only(tenant.id, "phone_number.release").resource_id == body["id"]
    assert only(tenant.id, "channel.status_changed").changes["status"]["after"] == "disabled"
    assert api.delete(f"/api/channels/{body['channel_id']}").status_code == 204
    assert api.delete(f"/api/phone_numbers/{body['id']}").status_code == 204
    assert only(tenant.id, "phone_number.delete").resource_id == body["id"]


# --- nothing for rolled-back work --------------------------------------------------------------


def test_rejected_writes_record_nothing(api, setup):
    """422s, 404s, 409s and dry runs leave no event behind."""
    before = len(events(setup.tenant.id))
    assert api.post("/api/channels", json={"name": "x", "channel_type": "email"}).status_code == 422
    assert api.post("/api/channels?dry_run=true", json=setup.email_payload()).status_code == 200
    assert api.patch("/api/channels/nope", json={"name": "x"}).status_code == 404
    channel = factories.make_channel(setup)
    before = len(events(setup.tenant.id))
    assert api.delete(f"/api/integrations/{setup.email_integration.id}").status_code == 409
    assert api.patch(f"/api/channels/{channel.id}", json={"name": ""}).status_code == 422
    assert len(events(setup.tenant.id)) == before


def test_a_failure_after_the_write_rolls_the_event_back(api, setup, monkeypatch):
    """A crash after the service recorded the event (500) leaves neither channel nor event.

    The crash is in the view's own work after the service returned (the response's ETag; the
    body was rendered by the service, once, with the events)."""
    import blueprints.api.channels as channel_views

    def broken(channel, *derived, model=None):
        raise RuntimeError("ETag crashed")

    monkeypatch.setattr(channel_views, "etag_header", broken)
    before = len(events(setup.tenant.id))
    response = api.post("/api/channels", json=setup.email_payload())
    assert response.status_code == 500
    assert len(events(setup.tenant.id)) == before
    assert events(setup.tenant.id, action="channel.create") == []


def test_idempotent_replay_records_once(api, setup):
    """The same Idempotency-Key twice: one channel, one event."""
    headers = {"Idempotency-Key": "audit-once"}
    payload = setup.email_payload()
    first = api.post("/api/channels", json=payload, headers=headers)
    second = api.post("/api/channels", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert len(events(setup.tenant.id, action="channel.create")) == 1


# --- accounts (service level: CLI and console callers) -----------------------------------------


def test_api_key_create_and_revoke_are_recorded(app, tenant):
    """Creating and revoking a key are recorded with the acting user; the secret never is."""
    admin = factories.make_user(tenant)
    actor = Actor("user", admin.id, admin.email)
    new = accounts.create_api_key(tenant.id, "CI", "read", actor)
    accounts.revoke_api_key(tenant.id, new.api_key.id, actor)
    db.session.commit()
    created = only(tenant.id, "api_key.create")
    assert (created.actor_type, created.actor_id) == ("user", admin.id)
    assert created.changes["scope"] == {"before": None, "after": "read"}
    revoked = only(tenant.id, "api_key.revoke")
    assert revoked.resource_id == new.api_key.id
    assert new.secret not in json.dumps([e.changes for e in events(tenant.id)])


def test_user_creation_is_recorded_without_the_password(app, tenant):
    """A new admin is recorded (email, role); the password and its hash never are."""
    user = factories.make_user(tenant, password="a-very-long-password-1")
    event = only(tenant.id, "user.create")
    assert event.resource_id == user.id
    assert event.changes["email"]["after"] == user.email
    dumped = json.dumps(event.changes)
    assert "a-very-long-password-1" not in dumped and user.password_hash not in dumped


def test_unknown_resource_types_are_refused(app, tenant):
    """A typo in a resource type fails loudly instead of writing an unfilterable event."""
    from core.services import audit

    with pytest.raises(ValueError):
        audit.record(tenant.id, Actor.system(), "thing.create", "thing", None)


# --- GET /api/audit_events ---------------------------------------------------------------------


@pytest.fixture
def logged(api, setup):
    """Two channels written through the API: events of several actions and resources."""
    first = api.post("/api/channels", json=setup.email_payload(name="One")).get_json()
    second = api.post("/api/channels", json=setup.sms_payload(name="Two")).get_json()
    api.patch(f"/api/channels/{first['id']}", json={"name": "One renamed"})
    return first, second


def test_list_is_newest_first_and_shaped(api, logged):
    """Events come newest first with actor, action, resource, changes, request id and time."""
    data = api.get("/api/audit_events").get_json()["data"]
    assert data[0]["action"] == "channel.update"
    assert set(data[0]) == {
        "id",
        "tenant_id",
        "actor",
        "action",
        "resource_type",
        "resource_id",
        "changes",
        "request_id",
        "ip",
        "created_at",
    }
    assert data[0]["actor"]["type"] == "api_key" and data[0]["actor"]["name"] == "Test key"
    assert data[0]["created_at"].endswith("Z")


def test_filters_by_resource_action_and_actor(api, setup, logged):
    """resource_type, resource_id, action, actor_type and actor_id narrow the list."""
    first, second = logged
    key = api_key_of(setup.tenant)

    def ids(query):
        response = api.get(f"/api/audit_events?{query}")
        assert response.status_code == 200, response.get_json()
        return [(e["action"], e["resource_id"]) for e in response.get_json()["data"]]

    assert ids(f"resource_id={first['id']}") == [
        ("channel.update", first["id"]),
        ("channel.create", first["id"]),
    ]
    assert ids("action=channel.update") == [("channel.update", first["id"])]
    assert ("channel.create", second["id"]) in ids("resource_type=channel")
    assert all(r[0].startswith("integration.") for r in ids("resource_type=integration"))
    by_key = ids(f"actor_id={key.id}")
    assert len(by_key) == 3 and ids("actor_type=api_key") == by_key
    system = api.get("/api/audit_events?actor_type=system").get_json()["data"]
    assert system and all(e["actor"]["type"] == "system" for e in system)
    assert ids(f"actor_id={key.id}&action=channel.create&resource_id={second['id']}") == [
        ("channel.create", second["id"])
    ]


def test_since_and_until_bound_the_time_range(api, setup, logged):
    """since is inclusive, until exclusive, with Z or a numeric offset."""
    now = datetime.now(UTC)
    past = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S%%2B00:00")  # +00:00
    everything = api.get("/api/audit_events?limit=200").get_json()["data"]
    assert api.get(f"/api/audit_events?since={past}&limit=200").get_json()["data"] == everything
    assert api.get(f"/api/audit_events?until={future}&limit=200").get_json()["data"] == everything
    assert api.get(f"/api/audit_events?since={future}").get_json()["data"] == []
    assert api.get(f"/api/audit_events?until={past}").get_json()["data"] == []
    old = AuditEvent(
        tenant_id=setup.tenant.id,
        actor_type="system",
        actor_name="tests",
        action="channel.update",
        resource_type="channel",
        changes={},
        created_at=datetime(2024, 10, 3, 12, 0, tzinfo=UTC),
    )
    db.session.add(old)
    db.session.commit()
    window = "since=2024-10-03T13:00:00%2B01:00&until=2024-10-03T12:00:01Z"
    assert [e["id"] for e in api.get(f"/api/audit_events?{window}").get_json()["data"]] == [old.id]
    assert api.get("/api/audit_events?until=2024-10-03T12:00:00Z").get_json()["data"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("resource_type=widget", "resource_type"),
        ("resource_id=not-a-uuid", "resource_id"),
        ("actor_id=123", "actor_id"),
        ("actor_type=robot", "actor_type"),
        ("action=DROP%20TABLE", "action"),
        ("action=channel", "action"),
        ("since=yesterday", "since"),
        ("since=2024-10-03", "since"),
        ("since=2024-10-03T12:00:00", "since"),
        ("until=2024-13-03T12:00:00Z", "until"),
        ("since=2024-10-04T00:00:00Z&until=2024-10-03T00:00:00Z", "until"),
    ],
)
def test_bad_filter_values_are_400(api, query, field):
    """Each malformed filter answers 400 bad_request naming the parameter."""
    response = api.get(f"/api/audit_events?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and field in error["fields"]


def test_bad_cursor_and_limit_are_400(api):
    """The paging parameters are checked too."""
    assert api.get("/api/audit_events?cursor=%%%").status_code == 400
    assert api.get("/api/audit_events?limit=0").status_code == 400


def test_pagination_walks_every_event_once(api, setup, logged):
    """limit + next_cursor visit every event exactly once, newest first."""
    expected = [e["id"] for e in api.get("/api/audit_events?limit=200").get_json()["data"]]
    seen, cursor = [], None
    while True:
        page = api.get(
            "/api/audit_events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        ).get_json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(seen) > 2


def test_read_keys_may_read_the_log(client, setup, logged):
    """A read key lists the log (it is a GET)."""
    reader = factories.ApiClient(client, factories.make_api_key(setup.tenant, scope="read"))
    assert reader.get("/api/audit_events").status_code == 200


def test_other_tenants_events_are_invisible(api, client, setup, other_tenant, logged):
    """Another tenant's key sees none of these events, even filtering by their resource id."""
    first, _ = logged
    stranger = factories.ApiClient(client, factories.make_api_key(other_tenant))
    data = stranger.get("/api/audit_events?limit=200").get_json()["data"]
    assert all(e["tenant_id"] == other_tenant.id for e in data)
    assert stranger.get(f"/api/audit_events?resource_id={first['id']}").get_json()["data"] == []


def test_tenant_creation_is_recorded_in_its_own_log(app):
    """A new tenant's log starts with tenant.create (name and slug)."""
    tenant = factories.make_tenant(name="Fresh Co", slug="fresh-co")
    event = only(tenant.id, "tenant.create")
    assert (event.resource_type, event.resource_id) == ("tenant", tenant.id)
    assert event.changes == {
        "name": {"before": None, "after": "Fresh Co"},
        "slug": {"before": None, "after": "fresh-co"},
    }


def test_admin_removal_is_recorded_by_the_acting_admin(app, tenant):
    """remove_admin records user.delete with what the user was, by the admin who removed them."""
    boss = factories.make_user(tenant, name="Boss")
    leaving = factories.make_user(tenant, name="Leaving")
    accounts.remove_admin(tenant.id, leaving.id, Actor("user", boss.id, boss.email))
    db.session.commit()
    event = only(tenant.id, "user.delete")
    assert (event.actor_id, event.resource_id) == (boss.id, leaving.id)
    assert event.changes["name"] == {"before": "Leaving", "after": None}
    assert event.changes["role"] == {"before": "admin", "after": None}


def test_support_opening_a_tenant_is_recorded_in_that_tenants_log(app, tenant, other_tenant):
    """support.tenant_opened lands in the opened tenant's log only, by the support user, with
    the reason."""
    staff = factories.make_user(role="support")
    accounts.open_tenant_as_support(tenant.id, staff, "Ticket 7")
    db.session.commit()
    event = only(tenant.id, "support.tenant_opened")
    assert (event.actor_type, event.actor_id, event.actor_name) == ("user", staff.id, staff.email)
    assert (event.resource_type, event.resource_id) == ("tenant", tenant.id)
    assert event.changes == {"reason": "Ticket 7"}
    assert events(other_tenant.id, action="support.tenant_opened") == []


def test_provider_check_and_test_send_are_recorded(api, setup):
    """POST /integrations/{id}/check and /channels/{id}/test: recorded by the key with outcome."""
    response = api.post(f"/api/integrations/{setup.email_integration.id}/check")
    assert response.status_code == 200
    check = only(setup.tenant.id, "integration.check")
    assert_by_api_key(check, setup.tenant)
    assert check.changes["last_check_ok"] == {"before": None, "after": True}
    channel = factories.make_channel(setup)
    sent = api.post(f"/api/channels/{channel.id}/test", json={"to": "someone@example.org"})
    assert sent.status_code == 200 and sent.get_json()["ok"] is True
    test_send = only(setup.tenant.id, "channel.test_send")
    assert_by_api_key(test_send, setup.tenant)
    assert test_send.resource_id == channel.id
    assert test_send.changes["to"] == "someone@example.org" and test_send.changes["ok"] is True


@pytest.mark.parametrize(
    "after",
    [
        {"name": "A", "is_default": False, "metadata": {}, "phone_number_id": None, "n": 0},
        {"b": "", "a": None, "c": [1], "d": True},
        {},
    ],
)
def test_a_creations_diff_is_the_general_diff(after):
    """``audit.diff({}, after)`` takes a shortcut (a batch makes 1,000): the same changes, in
    the same key order, as the general comparison of every field."""
    from core.services.audit import diff

    general = {}
    for key in sorted(after):
        if after[key] is not None:
            general[key] = {"before": None, "after": after[key]}
    assert diff({}, after) == general
    assert list(diff({}, after)) == list(general)
    masked = diff({}, {"api_key": "k", "none": None}, secret_keys=("api_key",))
    assert masked == {"api_key": {"before": None, "after": SECRET_MASK}}
