"""The console's audit log: every console write recorded with the signed-in user as actor; the
/audit page's filters, errors and pages; each channel's own history on its page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, Channel, PhoneNumber
from core.providers import SECRET_MASK
from core.services import audit_queries
from core.services import email_domains as email_domain_service
from tests import factories
from tests.conftest import base_config
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup

SECRET = "SG.console-secret-never-shown-0123456789"


@pytest.fixture
def app_config(database_url):
    """Small pages, so that paging shows with a handful of events."""
    config = base_config(database_url)
    config.update(PAGE_SIZE=3)
    return config


def events(tenant_id: str, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query.order_by(AuditEvent.created_at, AuditEvent.id)))


def by_admin(tenant_id: str, action: str, admin) -> AuditEvent:
    """The one event of ``action`` whose actor is the signed-in admin."""
    found = [e for e in events(tenant_id, action) if e.actor_id == admin.id]
    assert len(found) == 1, [(e.action, e.actor_name) for e in events(tenant_id)]
    event = found[0]
    assert (event.actor_type, event.actor_name) == ("user", admin.email)
    assert event.request_id and event.ip == "127.0.0.1"
    return event


def post(console, path, page="/channels", **data):
    """A no-JS form POST with the page's CSRF token."""
    return console.post(path, data={"csrf_token": csrf_token(console, page), **data})


# --- console writes are audited -----------------------------------------------------------------


def test_channel_writes_from_the_console(console, admin, setup):
    """New, edit, make default, disable, enable, delete: each recorded with the admin and diff."""
    tenant_id = setup.tenant.id
    payload = setup.email_payload(name="Console Mail")
    assert post(console, "/channels/new", page="/channels/new", **payload).status_code == 303
    created = by_admin(tenant_id, "channel.create", admin)
    assert created.changes["name"] == {"before": None, "after": "Console Mail"}
    channel_id = created.resource_id
    edit = f"/channels/{channel_id}/edit"
    form = dict(payload, name="Console Mail 2")
    assert post(console, edit, page=edit, **form).status_code == 303
    assert by_admin(tenant_id, "channel.update", admin).changes == {
        "name": {"before": "Console Mail", "after": "Console Mail 2"}
    }
    other = factories.make_channel(setup, is_default=False)
    assert post(console, f"/channels/{other.id}/default").status_code == 303
    assert by_admin(tenant_id, "channel.default_set", admin).resource_id == other.id
    assert post(console, f"/channels/{channel_id}/disable").status_code == 303
    assert by_admin(tenant_id, "channel.disable", admin).resource_id == channel_id
    assert post(console, f"/channels/{channel_id}/enable").status_code == 303
    assert by_admin(tenant_id, "channel.enable", admin).resource_id == channel_id
    headers = htmx_headers(console, "/channels")
    assert console.delete(f"/channels/{channel_id}/delete", headers=headers).status_code == 200
    deleted = by_admin(tenant_id, "channel.delete", admin)
    assert deleted.changes["name"] == {"before": "Console Mail 2", "after": None}


def test_rejected_console_writes_record_nothing(console, setup):
    """A 422 form, a refused delete (in use) and a 404: no event."""
    factories.make_channel(setup)
    before = len(events(setup.tenant.id))
    response = post(console, "/channels/new", page="/channels/new", name="", channel_type="email")
    assert response.status_code == 422
    assert post(console, f"/integrations/{setup.email_integration.id}/delete").status_code == 303
    assert (
        post(console, "/channels/00000000-0000-4000-8000-000000000000/disable").status_code == 404
    )
    assert len(events(setup.tenant.id)) == before


def test_integration_writes_from_the_console(console, admin, tenant):
    """New (secret masked), edit, check, disable, enable, delete: recorded by the admin."""
    response = post(
        console,
        "/integrations/new",
        page="/integrations/new",
        name="SG",
        channel_type="email",
        provider="sendgrid",
        **{"credentials-api_key": SECRET},
    )
    assert response.status_code == 303
    created = by_admin(tenant.id, "integration.create", admin)
    assert created.changes["credentials.api_key"] == {"before": None, "after": SECRET_MASK}
    integration_id = created.resource_id
    edit = f"/integrations/{integration_id}/edit"
    assert (
        post(console, edit, page=edit, name="SG 2", **{"credentials-api_key": ""}).status_code
        == 303
    )
    assert by_admin(tenant.id, "integration.update", admin).changes == {
        "name": {"before": "SG", "after": "SG 2"}
    }
    assert post(console, f"/integrations/{integration_id}/disable").status_code == 303
    assert by_admin(tenant.id, "integration.disable", admin).resource_id == integration_id
    assert post(console, f"/integrations/{integration_id}/enable").status_code == 303
    assert by_admin(tenant.id, "integration.enable", admin).resource_id == integration_id
    local = factories.make_integration(tenant, "email", provider="console")
    assert post(console, f"/integrations/{local.id}/check").status_code in (200, 303)
    check = by_admin(tenant.id, "integration.check", admin)
    assert check.resource_id == local.id and check.changes["last_check_ok"]["after"] is True
    assert post(console, f"/integrations/{integration_id}/delete").status_code == 303
    assert by_admin(tenant.id, "integration.delete", admin).resource_id == integration_id
    assert SECRET not in json.dumps([e.changes for e in events(tenant.id)])


def test_domain_number_and_key_writes_from_the_console(console, admin, tenant, monkeypatch):
    """Domains (add, verify, delete), numbers (add, release, delete), keys (create, revoke)."""
    assert (
        post(
            console, "/email-domains", page="/email-domains", domain="mail.example.net"
        ).status_code
        == 303
    )
    domain_id = by_admin(tenant.id, "email_domain.create", admin).resource_id
    monkeypatch.setattr(
        email_domain_service,
        "check_records",
        lambda domain: {
            "verification": email_domain_service.RecordCheck("verified", ["x"]),
            "spf": email_domain_service.RecordCheck("missing", []),
            "dkim": email_domain_service.RecordCheck("missing", []),
        },
    )
    assert post(console, f"/email-domains/{domain_id}/verify").status_code == 303
    verify = by_admin(tenant.id, "email_domain.verify", admin)
    assert verify.changes["status"] == {"before": "pending", "after": "verified"}
    assert post(console, f"/email-domains/{domain_id}/delete").status_code == 303
    assert by_admin(tenant.id, "email_domain.delete", admin).resource_id == domain_id

    sms = factories.make_integration(tenant, "sms")
    response = post(
        console,
        "/phone-numbers/new",
        page="/phone-numbers/new",
        country="US",
        phone_number="(415) 555-0177",
        integration_id=sms.id,
        capabilities="sms",
    )
    assert response.status_code == 303
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.tenant_id == tenant.id))
    assert by_admin(tenant.id, "phone_number.create", admin).resource_id == number.id
    assert post(console, f"/phone-numbers/{number.id}/release").status_code == 303
    assert by_admin(tenant.id, "phone_number.release", admin).resource_id == number.id
    for channel in db.session.scalars(select(Channel).where(Channel.phone_number_id == number.id)):
        db.session.delete(channel)
    db.session.commit()
    assert post(console, f"/phone-numbers/{number.id}/delete").status_code == 303
    assert by_admin(tenant.id, "phone_number.delete", admin).resource_id == number.id

    page = post(console, "/api-keys", page="/api-keys", name="CI", scope="read")
    secret = soup(page).find(id="new-key-secret").get_text()
    key_id = by_admin(tenant.id, "api_key.create", admin).resource_id
    assert post(console, f"/api-keys/{key_id}/revoke").status_code == 303
    assert by_admin(tenant.id, "api_key.revoke", admin).resource_id == key_id
    assert secret not in json.dumps([e.changes for e in events(tenant.id)])


# --- the /audit page --------------------------------------------------------------------------


@pytest.fixture
def history(api, setup):
    """Channels written through the API (by the key) on top of the set-up's system events."""
    first = api.post("/api/channels", json=setup.email_payload(name="First")).get_json()
    api.patch(f"/api/channels/{first['id']}", json={"name": "First renamed"})
    second = api.post("/api/channels", json=setup.sms_payload(name="Second")).get_json()
    return first, second


def rows(response) -> list[tuple[str, str]]:
    """(action, actor cell) of each row of the log."""
    page = soup(response)
    return [
        (row.th.get_text(strip=True), row.find_all("td")[1].get_text(" ", strip=True))
        for row in page.select("#audit-results tbody tr")
    ]


def test_log_lists_newest_first_with_who_what_and_request(console, history):
    """Rows: newest first, actor with its kind, action, changes before → after, request id."""
    response = console.get("/audit")
    assert response.status_code == 200
    listed = rows(response)
    assert listed[0] == ("channel.create", "Test key (API key)")
    assert listed[1][0] == "channel.update"
    page = soup(response)
    update = page.select("#audit-results tbody tr")[1].get_text(" ", strip=True)
    assert "First → First renamed" in update
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "channel.update"))
    assert event.request_id in update


def test_filters_narrow_the_log(console, history, setup):
    """Resource, actor, action and resource id filters; the actor list offers the log's actors."""
    first, _ = history
    assert {a for a, _ in rows(console.get("/audit?resource_type=integration"))} <= {
        "integration.create"
    }
    assert rows(console.get("/audit?action=channel.update")) == [
        ("channel.update", "Test key (API key)")
    ]
    page = soup(console.get("/audit"))
    options = {o.get_text(): o["value"] for o in page.select("#actor option")}
    key_value = options["Test key (API key)"]
    assert all(
        actor == "Test key (API key)" for _, actor in rows(console.get(f"/audit?actor={key_value}"))
    )
    system = options["System (command line, automatic changes)"]
    assert rows(console.get(f"/audit?actor={system}"))
    assert all(
        actor == "tests (System)" for _, actor in rows(console.get(f"/audit?actor={system}"))
    )
    by_resource = rows(console.get(f"/audit?resource_id={first['id']}"))
    assert [a for a, _ in by_resource] == ["channel.update", "channel.create"]


def test_actor_choices_are_a_bounded_read_with_every_current_actor(
    console, history, setup, monkeypatch
):
    """The actor list reads only the latest events (plus the tenant's admins and keys, acted or
    not): an actor seen only in older events is not offered, yet a link filtering by it still
    filters and shows it as the chosen actor."""
    gone_id = "5f0c7e1a-0000-4000-8000-000000000001"
    db.session.add(
        AuditEvent(
            tenant_id=setup.tenant.id,
            actor_type="user",
            actor_id=gone_id,
            actor_name="removed-admin@example.com",
            action="channel.update",
            resource_type="channel",
            changes={},
            created_at=datetime(2024, 10, 3, 12, 0, 0, tzinfo=UTC),
        )
    )
    db.session.commit()
    factories.make_api_key(setup.tenant, name="Never used key")

    def offered() -> dict[str, str]:
        page = soup(console.get("/audit"))
        return {o.get_text(): o["value"] for o in page.select("#actor option")}

    assert "removed-admin@example.com (User)" in offered()  # within the latest events
    monkeypatch.setattr(audit_queries, "AUDIT_ACTORS_RECENT", 3)
    choices = offered()
    assert "removed-admin@example.com (User)" not in choices  # only in an old event
    assert "Never used key (API key)" in choices  # current keys are always offered
    assert "Test key (API key)" in choices

    page = soup(console.get(f"/audit?actor=user:{gone_id}"))
    selected = page.select_one("#actor option[selected]")
    assert selected["value"] == f"user:{gone_id}" and gone_id in selected.get_text()
    assert [r[1] for r in rows(console.get(f"/audit?actor=user:{gone_id}"))] == [
        "removed-admin@example.com (User)"
    ]


def test_date_range_is_whole_utc_days(console, history, setup):
    """From/To are inclusive days: today finds everything, yesterday nothing, an old event alone."""
    today = datetime.now(UTC).date().isoformat()
    assert rows(console.get(f"/audit?since={today}&until={today}"))
    old = AuditEvent(
        tenant_id=setup.tenant.id,
        actor_type="system",
        actor_name="migration",
        action="channel.update",
        resource_type="channel",
        changes={},
        created_at=datetime(2024, 10, 3, 23, 59, 59, tzinfo=UTC),
    )
    db.session.add(old)
    db.session.commit()
    assert rows(console.get("/audit?since=2024-10-03&until=2024-10-03")) == [
        ("channel.update", "migration (System)")
    ]
    assert rows(console.get("/audit?since=2024-10-04&until=2024-10-05")) == []
    assert "No event matches" in console.get("/audit?until=2024-10-02").get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("resource_type=widget", "resource_type"),
        ("action=not+an+action", "action"),
        ("resource_id=123", "resource_id"),
        ("actor=robot:1", "actor"),
        ("since=03/10/2024", "since"),
        ("since=2024-10-05&until=2024-10-04", "until"),
    ],
)
def test_bad_filters_are_shown_next_to_their_field(console, history, query, field):
    """A bad value: 400, the message next to its field, what was typed kept, no rows."""
    response = console.get(f"/audit?{query}")
    assert response.status_code == 400
    assert field in field_errors(response)
    assert rows(response) == []
    assert "Check the filters" in response.get_data(as_text=True)


def test_pages_step_both_ways(console, history):
    """With 3 per page: Next goes to older events, Newer back, without repeats or gaps."""
    everything = [e.id for e in reversed(events(history[0]["tenant_id"]))]
    seen, url = [], "/audit"
    while url:
        page = soup(console.get(url))
        seen += [row["id"].removeprefix("event-") for row in page.select("#audit-results tbody tr")]
        link = page.find("a", rel="next")
        url = link["href"] if link else None
    assert seen == everything and len(everything) > 3
    second = soup(console.get(soup(console.get("/audit")).find("a", rel="next")["href"]))
    back = soup(console.get(second.find("a", rel="prev")["href"]))
    assert [r["id"] for r in back.select("#audit-results tbody tr")] == [
        f"event-{e}" for e in everything[:3]
    ]


def test_htmx_gets_only_the_results(console, history):
    """The filter form's htmx request gets the results fragment, not the layout."""
    response = console.get("/audit?action=channel.create", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and 'id="audit-results"' in html


def test_other_tenants_events_never_show(console, history, other_tenant):
    """Another tenant's events are absent, even when filtering by their resource id."""
    theirs = factories.make_ready_tenant(other_tenant, domain="other.example")
    channel = factories.make_channel(theirs, name="Their channel")
    assert "Their channel" not in console.get("/audit").get_data(as_text=True)
    assert rows(console.get(f"/audit?resource_id={channel.id}")) == []


def test_channel_page_shows_its_own_history(console, history):
    """The edit page lists this channel's events (newest first) and links to the full log."""
    first, second = history
    page = soup(console.get(f"/channels/{first['id']}/edit"))
    section = page.find("section", class_="resource-history")
    actions = [row.th.get_text(strip=True) for row in section.select("tbody tr")]
    assert actions == ["channel.update", "channel.create"]
    link = section.find("a", string="All events in the audit log")
    assert link["href"] == f"/audit?resource_type=channel&resource_id={first['id']}"
    assert second["id"] not in section.get_text()
