"""Support staff: the tenant switcher, the read-only banner, audited opening, no write controls."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent
from tests import factories
from tests.console.helpers import csrf_token, htmx_headers, soup

BANNER = "as support — read-only"


def open_tenant(client, tenant, next_url=None, reason="Ticket #4821: SMS not delivered"):
    """Open ``tenant`` from the switcher, with a reason (the POST of its reason form)."""
    data = {"csrf_token": csrf_token(client, "/support/tenants"), "reason": reason}
    if next_url:
        data["next"] = next_url
    return client.post(f"/support/tenants/{tenant.id}/open", data=data)


def opened_events(tenant_id: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.tenant_id == tenant_id, AuditEvent.action == "support.tenant_opened"
            )
        )
    )


def banner_text(response) -> str:
    banner = soup(response).select_one(".support-banner")
    return " ".join(banner.get_text().split()) if banner else ""


@pytest.fixture
def viewed(app, support_console, tenant):
    """A support user who opened ``tenant`` (Ready: integrations, domain, number, channels)."""
    ready = factories.make_ready_tenant(tenant)
    factories.make_channel(ready, name="Support Email")
    factories.make_channel(ready, "sms", name="Alerts SMS")
    assert open_tenant(support_console, tenant).status_code == 303
    return ready


def test_without_a_tenant_support_goes_to_the_switcher(support_console):
    """Tenant pages send a support user who chose no tenant to the switcher, keeping ``next``."""
    response = support_console.get("/channels?status=available")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/support/tenants?next=")
    assert support_console.get("/").status_code == 302  # home → channels → switcher
    assert banner_text(support_console.get("/support/tenants")) == ""


def test_switcher_lists_and_searches_every_tenant(support_console, tenant, other_tenant):
    """Every tenant is listed; the search narrows by name or slug; htmx gets only the results."""
    factories.make_tenant(name="Zebra Logistics", slug="zebra")
    page = soup(support_console.get("/support/tenants"))
    names = [row.th.get_text(" ", strip=True) for row in page.select("#tenant-results tbody tr")]
    assert {tenant.name, "Other Co", "Zebra Logistics"} <= set(names)
    found = soup(support_console.get("/support/tenants?q=ZEB"))
    assert [r.th.get_text(strip=True) for r in found.select("#tenant-results tbody tr")] == [
        "Zebra Logistics"
    ]
    assert "No tenant matches" in support_console.get("/support/tenants?q=100%_").get_data(
        as_text=True
    )
    fragment = support_console.get("/support/tenants?q=other", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert "<html" not in html and 'id="tenant-results"' in html and "Other Co" in html


def test_switcher_search_ignores_case_in_every_script(support_console, tenant):
    """Non-ASCII names match whatever their case (casefold: "STRASSE" finds "Straße")."""
    factories.make_tenant(name="Émile Ünal SARL", slug="emile")
    factories.make_tenant(name="Straße Logistik", slug="logistik")

    def found(q):
        page = soup(support_console.get("/support/tenants", query_string={"q": q}))
        return [r.th.get_text(strip=True) for r in page.select("#tenant-results tbody tr")]

    assert found("émile") == ["Émile Ünal SARL"]
    assert found("ÉMILE ÜNAL") == ["Émile Ünal SARL"]
    assert found("STRASSE") == ["Straße Logistik"]
    assert found("straße") == ["Straße Logistik"]
    assert found("logistik") == ["Straße Logistik"]  # the name, and the slug too


def test_opening_a_tenant_is_audited_in_its_log_and_shows_the_banner(
    support_console, support_user, tenant, other_tenant
):
    """Open: 303 to the channels; support.tenant_opened in that tenant's log; the banner."""
    response = open_tenant(support_console, tenant)
    assert response.status_code == 303 and response.headers["Location"] == "/channels"
    [event] = opened_events(tenant.id)
    assert (event.actor_type, event.actor_id, event.actor_name) == (
        "user",
        support_user.id,
        support_user.email,
    )
    assert (event.resource_type, event.resource_id) == ("tenant", tenant.id)
    assert event.request_id and event.ip
    assert opened_events(other_tenant.id) == []
    assert event.changes == {"reason": "Ticket #4821: SMS not delivered"}
    page = support_console.get("/channels")
    assert re.fullmatch(
        rf"Viewing {tenant.name} as support — read-only, until \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\."
        r" Switch tenant",
        banner_text(page),
    )


def test_open_returns_to_next_and_switching_changes_the_tenant(
    support_console, tenant, other_tenant
):
    """``next`` is honoured (when local); opening another tenant switches the data and banner."""
    response = open_tenant(support_console, tenant, next_url="/integrations")
    assert response.headers["Location"] == "/integrations"
    assert (
        open_tenant(support_console, tenant, next_url="https://evil.example/").headers["Location"]
        == "/channels"
    )
    assert len(opened_events(tenant.id)) == 2  # every opening is recorded
    open_tenant(support_console, other_tenant)
    assert "Other Co" in banner_text(support_console.get("/channels"))
    assert len(opened_events(other_tenant.id)) == 1


def test_opening_needs_csrf_and_a_real_tenant(support_console, tenant):
    """No CSRF token: 400; an unknown or malformed id: 404; neither records anything."""
    assert support_console.post(f"/support/tenants/{tenant.id}/open").status_code == 400
    token = csrf_token(support_console, "/support/tenants")
    for bad in ("00000000-0000-4000-8000-000000000000", "nope", "x" * 80):
        response = support_console.post(f"/support/tenants/{bad}/open", data={"csrf_token": token})
        assert response.status_code == 404
    assert opened_events(tenant.id) == []


def test_admins_cannot_use_the_switcher(console, tenant, other_tenant):
    """A tenant admin gets 403 from the switcher and from opening another tenant."""
    assert console.get("/support/tenants").status_code == 403
    token = csrf_token(console, "/channels")
    response = console.post(f"/support/tenants/{other_tenant.id}/open", data={"csrf_token": token})
    assert response.status_code == 403
    assert opened_events(other_tenant.id) == []
    assert banner_text(console.get("/channels")) == ""


READABLE_PAGES = [
    "/channels",
    "/integrations",
    "/email-domains",
    "/phone-numbers",
    "/api-keys",
    "/team",
    "/audit",
]


@pytest.mark.parametrize("path", READABLE_PAGES)
def test_every_page_is_readable_with_the_banner_and_no_write_control(viewed, support_console, path):
    """Each section: 200, the banner names the tenant, and no control that would write."""
    response = support_console.get(path)
    assert response.status_code == 200
    assert banner_text(response).startswith(f"Viewing {viewed.tenant.name} {BANNER}")
    assert_no_write_controls(response)


def test_resource_pages_are_readable_without_write_controls(viewed, support_console):
    """A channel's edit page, an integration, a domain and a number: read-only views."""
    channel = db.session.scalar(
        select(AuditEvent.resource_id).where(
            AuditEvent.tenant_id == viewed.tenant.id, AuditEvent.action == "channel.create"
        )
    )
    for path in (
        f"/channels/{channel}/edit",
        f"/integrations/{viewed.email_integration.id}/edit",
        f"/email-domains/{viewed.domain.id}",
        f"/phone-numbers/{viewed.number.id}",
    ):
        response = support_console.get(path)
        assert response.status_code == 200, path
        assert BANNER in banner_text(response)
        assert_no_write_controls(response)
    page = soup(support_console.get(f"/channels/{channel}/edit"))
    assert all(fieldset.has_attr("disabled") for fieldset in page.select("#channel-form fieldset"))


def test_support_sees_the_tenants_data(viewed, support_console):
    """The pages show the opened tenant's own rows."""
    html = support_console.get("/channels").get_data(as_text=True)
    assert "Support Email" in html and "Alerts SMS" in html
    log = support_console.get("/audit").get_data(as_text=True)
    assert "support.tenant_opened" in log and "channel.create" in log


def test_htmx_writes_are_refused_too(viewed, support_console):
    """Fragment write routes answer 403 to a support user even with a valid CSRF token."""
    channel = db.session.scalar(
        select(AuditEvent.resource_id).where(
            AuditEvent.tenant_id == viewed.tenant.id, AuditEvent.action == "channel.create"
        )
    )
    headers = htmx_headers(support_console, "/channels")
    for path in (
        f"/channels/{channel}/default",
        f"/channels/{channel}/disable",
        "/channels/new/check-address",
        "/team",
    ):
        assert support_console.post(path, headers=headers).status_code == 403, path
    assert support_console.delete(f"/channels/{channel}/delete", headers=headers).status_code == 403


def assert_no_write_controls(response) -> None:
    """No usable POST form but sign-out, no hx write attributes, no links to pages that exist
    only to write (new, delete, revoke, release, remove)."""
    page = soup(response)
    for form in page.find_all("form"):
        method = (form.get("method") or "get").lower()
        if method == "post" and form.get("action") != "/logout":
            # A read-only view may keep its form's markup, but inert: every field and button
            # disabled (itself or by a disabled fieldset), so nothing can be submitted.
            for control in form.find_all(["input", "select", "textarea", "button"]):
                if control.get("type") == "hidden":
                    continue
                fieldset = control.find_parent("fieldset")
                assert control.has_attr("disabled") or (
                    fieldset is not None and fieldset.has_attr("disabled")
                ), control
    for attribute in ("hx-post", "hx-put", "hx-patch", "hx-delete"):
        assert page.find(attrs={attribute: True}) is None, attribute
    for link in page.find_all("a", href=True):
        href = link["href"]
        assert not href.endswith(("/new", "/delete", "/revoke", "/release", "/remove")), href
        assert "/delete?" not in href and "/revoke?" not in href and "/remove?" not in href
        assert "/release?" not in href, href
