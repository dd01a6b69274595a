"""Support access with a reason (DESIGN §7): opening a tenant asks why, the reason is recorded in
that tenant's audit log and in the platform log; the access lasts SUPPORT_ACCESS_MINUTES, then
the tenant must be opened again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.db_types import rfc3339
from core.extensions import db
from core.models import AuditEvent, PlatformEvent
from core.services.accounts import SUPPORT_REASON_MAX, SUPPORT_REASON_REQUIRED
from tests.conftest import base_config
from tests.console.helpers import csrf_token, field_errors, sign_in, soup

REASON = "Ticket #4821: SMS not delivered"


@pytest.fixture
def app_config(database_url):
    """Sessions outlive the travels in time of these tests (the cookie's signature refuses a
    clock that went back, so the clock only goes forward, from now)."""
    return base_config(database_url) | {"SESSION_IDLE_MINUTES": 24 * 60, "SESSION_MAX_HOURS": 48}


@pytest.fixture
def start():
    """Now, to the second: where the tests' clock starts (after the fixtures signed in)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)


def open_tenant(client, tenant, reason=REASON, next_url=None):
    """The reason form's POST."""
    data = {"csrf_token": csrf_token(client, "/support/tenants"), "reason": reason}
    if next_url:
        data["next"] = next_url
    return client.post(f"/support/tenants/{tenant.id}/open", data=data)


def tenant_events(tenant_id: str, action: str) -> list[AuditEvent]:
    db.session.rollback()
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
    return list(db.session.scalars(query))


def platform_events(action: str) -> list[PlatformEvent]:
    db.session.rollback()
    query = select(PlatformEvent).where(PlatformEvent.action == action)
    return list(db.session.scalars(query.order_by(PlatformEvent.created_at)))


def test_the_switcher_leads_to_a_reason_form(support_console, tenant):
    """ "Open" is a link to the reason form (a page with the tenant's name, a required reason
    field, the next page kept)."""
    switcher = soup(support_console.get("/support/tenants?next=/integrations"))
    link = switcher.find("a", href=lambda h: h and h.startswith(f"/support/tenants/{tenant.id}/"))
    assert link["href"] == f"/support/tenants/{tenant.id}/open?next=/integrations"
    page = support_console.get(link["href"])
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    form = soup(page).find("form", action=f"/support/tenants/{tenant.id}/open")
    assert tenant.name in soup(page).find("h1").get_text()
    reason = form.find("input", attrs={"name": "reason"})
    assert reason.has_attr("required") and reason["maxlength"] == "200"
    assert form.find("input", attrs={"name": "next"})["value"] == "/integrations"
    assert tenant_events(tenant.id, "support.tenant_opened") == []  # asking records nothing


def test_the_reason_is_recorded_in_the_tenants_log_and_the_platform_log(
    support_console, support_user, tenant, other_tenant
):
    """Opening with a reason: the tenant's audit event and the platform event carry it."""
    response = open_tenant(support_console, tenant, reason="  " + REASON + " ")
    assert response.status_code == 303 and response.headers["Location"] == "/channels"
    [event] = tenant_events(tenant.id, "support.tenant_opened")
    assert event.changes == {"reason": REASON}
    assert (event.actor_id, event.resource_id) == (support_user.id, tenant.id)
    [platform] = platform_events("support.tenant_opened")
    assert platform.changes == {"reason": REASON, "tenant": tenant.slug}
    assert (platform.actor_id, platform.resource_type, platform.resource_id) == (
        support_user.id,
        "tenant",
        tenant.id,
    )
    assert platform.request_id == event.request_id and platform.ip
    assert tenant_events(other_tenant.id, "support.tenant_opened") == []
    assert support_console.get("/channels").status_code == 200


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", SUPPORT_REASON_REQUIRED),
        (" \t ", SUPPORT_REASON_REQUIRED),
        ("   ", SUPPORT_REASON_REQUIRED),
        ("x" * (SUPPORT_REASON_MAX + 1), f"at most {SUPPORT_REASON_MAX} characters"),
        ("Ticket 12\nforged line", "control characters"),
        ("Ticket 12\x00", "control characters"),
        ("Ticket \x1b[31m12", "control characters"),
        ("Ticket \u008512", "control characters"),
    ],
)
def test_a_reason_is_required_short_and_printable(support_console, tenant, reason, message):
    """No reason, a blank or too long one, control characters: 422 with the message next to
    the field, the text kept; the tenant stays closed and nothing is recorded."""
    response = open_tenant(support_console, tenant, reason=reason)
    assert response.status_code == 422
    assert message in " ".join(field_errors(response)["reason"])
    assert soup(response).find("input", attrs={"name": "reason"}).get("value", "") == reason
    assert tenant_events(tenant.id, "support.tenant_opened") == []
    assert platform_events("support.tenant_opened") == []
    assert support_console.get("/channels").headers["Location"].startswith("/support/tenants")


def test_a_reason_of_the_maximum_length_is_accepted(support_console, tenant):
    """200 characters, any script."""
    reason = ("Tické #42 ✓ " * 20)[:SUPPORT_REASON_MAX]
    assert open_tenant(support_console, tenant, reason=reason).status_code == 303
    [event] = tenant_events(tenant.id, "support.tenant_opened")
    assert event.changes == {"reason": reason.strip()}


def test_the_reason_shows_in_the_tenants_audit_log_page(app, support_console, tenant, admin):
    """The tenant's admins read why support opened their tenant."""
    open_tenant(support_console, tenant)
    page = app.test_client()
    sign_in(page, admin.email)
    log = soup(page.get("/audit?action=support.tenant_opened")).find(id="audit-results")
    assert REASON in log.get_text()


def test_access_lasts_support_access_minutes_then_must_be_opened_again(
    app, support_console, support_user, tenant, start
):
    """Within the 60 minutes: the tenant's pages (the banner says until when); at 60: back to
    the switcher with a message, the tenant forgotten and the expiry in the platform log;
    opening again (with a reason) gives another 60 minutes."""
    assert app.config["SUPPORT_ACCESS_MINUTES"] == 60
    with time_machine.travel(start, tick=False) as clock:
        assert open_tenant(support_console, tenant).status_code == 303
        clock.move_to(start + timedelta(minutes=59, seconds=59))
        page = support_console.get("/channels")
        assert page.status_code == 200
        banner = soup(page).select_one(".support-banner").get_text(" ", strip=True)
        ends = (start + timedelta(minutes=60)).strftime("%Y-%m-%d %H:%M UTC")
        assert f"until {ends}" in banner
        clock.move_to(start + timedelta(minutes=60))
        expired = support_console.get("/integrations?status=active")
        assert expired.status_code == 303
        assert expired.headers["Location"] == "/support/tenants?next=/integrations?status%3Dactive"
        switcher = soup(support_console.get(expired.headers["Location"]))
        flash = switcher.find(id="flash").get_text(" ", strip=True)
        assert f"Your access to {tenant.name} has ended (60 minutes)" in flash
        assert switcher.select_one(".support-banner") is None
        assert support_console.get("/channels").headers["Location"].startswith("/support/")
        [ended] = platform_events("support.tenant_access_expired")
        assert ended.resource_id == tenant.id
        assert ended.changes == {"user": support_user.email, "opened_at": rfc3339(start)}
        # Open again: another full period.
        assert open_tenant(support_console, tenant, reason="Ticket #4821 again").status_code == 303
        clock.move_to(start + timedelta(minutes=119))
        assert support_console.get("/channels").status_code == 200
    assert len(tenant_events(tenant.id, "support.tenant_opened")) == 2
    assert len(platform_events("support.tenant_access_expired")) == 1


def test_an_expired_access_answers_htmx_with_a_redirect(support_console, tenant, start):
    """htmx requests after the end: 403 with HX-Redirect to the switcher, never the fragment."""
    with time_machine.travel(start, tick=False) as clock:
        open_tenant(support_console, tenant)
        clock.move_to(start + timedelta(hours=2))
        headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/channels"}
        response = support_console.get("/channels?q=a", headers=headers)
        assert response.status_code == 403
        assert response.headers["HX-Redirect"] == "/support/tenants?next=/channels?q%3Da"
        assert "<table" not in response.get_data(as_text=True)


def test_the_access_length_is_a_setting(app, support_console, tenant, start):
    """SUPPORT_ACCESS_MINUTES = 5: the access ends after five minutes."""
    app.config["SUPPORT_ACCESS_MINUTES"] = 5
    with time_machine.travel(start, tick=False) as clock:
        open_tenant(support_console, tenant)
        clock.move_to(start + timedelta(minutes=4, seconds=59))
        assert support_console.get("/channels").status_code == 200
        clock.move_to(start + timedelta(minutes=5))
        assert support_console.get("/channels").status_code == 303


def test_an_opening_without_its_time_counts_as_ended(app, support_console, tenant):
    """A browser session naming a tenant but no (readable) opening time — e.g. one from before
    this rule — has no access: the switcher, and the tenant is forgotten."""
    open_tenant(support_console, tenant)
    for stale in (None, "yesterday", 12):
        with support_console.session_transaction() as stored:
            stored["support_tenant_id"] = tenant.id
            if stale is None:
                stored.pop("support_opened_at", None)
            else:
                stored["support_opened_at"] = stale
        assert support_console.get("/channels").headers["Location"].startswith("/support/")
        with support_console.session_transaction() as stored:
            assert "support_tenant_id" not in stored


def test_read_only_rules_stay(support_console, tenant):
    """An opened tenant is still read-only: writes are 403."""
    open_tenant(support_console, tenant)
    token = csrf_token(support_console, "/channels")
    assert support_console.post("/api-keys", data={"csrf_token": token}).status_code == 403
