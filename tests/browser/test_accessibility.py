"""axe-core on every console page: no violation of impact serious or critical.

axe is injected with ``page.add_script_tag``, an inline script that the pages' CSP refuses, so
these pages are opened with ``bypass_csp=True``; the CSP itself is exercised by the other
browser tests. Console pages without path arguments are found in the URL map, so that the pages
of each new section are audited as soon as they exist.
"""

from __future__ import annotations

import pytest
from flask import current_app, url_for
from playwright.sync_api import Page, expect

from core.extensions import db
from core.services import channels as channel_service
from tests import factories
from tests.browser.conftest import end_test_transaction

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")
# Parameterless GET endpoints that are not pages of their own, or are audited below already.
NOT_PAGES = {
    "console.home",  # redirects to the channels table
    "console.channels_type_fields",  # an htmx fragment (redirects to the form otherwise)
    "console.channels_export",  # a CSV download (its link is on the channels page, audited)
    "console.login",  # audited signed out, below
}


def _audit(page: Page, axe_path, label: str) -> list[str]:
    """Run axe on the current page; return its serious/critical violations as readable lines."""
    page.add_script_tag(path=str(axe_path))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for violation in result["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        lines.append(
            f"{label} ({page.url}): [{violation['impact']}] {violation['id']}: "
            f"{violation['help']} — {violation['helpUrl']}"
        )
        for node in violation["nodes"][:5]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    at {' '.join(map(str, node['target']))}: {summary}")
            lines.append(f"       {node['html'][:200]}")
    return lines


def _assert_no_violations(found: list[str]) -> None:
    assert not found, "axe found serious/critical accessibility violations:\n" + "\n".join(found)


@pytest.fixture
def audit_page(open_page):
    """A page with JavaScript on and the CSP bypassed, so that axe can be injected."""
    return open_page(bypass_csp=True)


def test_login_page_has_no_serious_violations(audit_page, axe_path, admin):
    """The sign-in page, empty and after a failed attempt (with its error message)."""
    page = audit_page
    page.goto(url_for("console.login"))
    found = _audit(page, axe_path, "login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("wrong-password-here")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    found += _audit(page, axe_path, "login with an error")
    _assert_no_violations(found)


def test_channel_pages_have_no_serious_violations(audit_page, axe_path, sign_in, admin, setup):
    """Table (empty and filled), new form of each type (also with errors), edit, delete."""
    page = audit_page
    sign_in(page, admin)
    found = _audit(page, axe_path, "channels, empty")

    end_test_transaction()
    channel = factories.make_channel(setup, "email", name="Support Email")
    factories.make_channel(setup, "sms", name="Alerts SMS")
    page.goto(url_for("console.channels_index"))
    expect(page.locator("#channel-rows > tr")).to_have_count(2)
    found += _audit(page, axe_path, "channels")

    page.goto(url_for("console.channels_index", q="nothing-matches"))
    found += _audit(page, axe_path, "channels, no match")

    page.goto(url_for("console.channels_new"))
    found += _audit(page, axe_path, "new email channel")
    page.get_by_role("button", name="Create channel").click()
    expect(page.locator(".field-errors").first).to_be_visible()
    found += _audit(page, axe_path, "new email channel with errors")

    page.goto(url_for("console.channels_new", channel_type="sms"))
    expect(page.locator("#type-fields[data-channel-type=sms]")).to_be_visible()
    found += _audit(page, axe_path, "new SMS channel")

    page.goto(url_for("console.channels_edit", channel_id=channel.id))
    found += _audit(page, axe_path, "edit channel")
    end_test_transaction()
    channel_service.update_channel(
        setup.tenant.id, channel.id, {"name": "Support Email (renamed)"}, factories.ACTOR
    )
    db.session.commit()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#stale-notice")).to_be_visible()
    found += _audit(page, axe_path, "edit channel, changed meanwhile")

    page.goto(url_for("console.channels_confirm_delete", channel_id=channel.id))
    found += _audit(page, axe_path, "delete channel")
    _assert_no_violations(found)


def _parameterless_pages() -> list[str]:
    return sorted(
        rule.endpoint
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and "GET" in rule.methods
        and not rule.arguments
        and rule.endpoint not in NOT_PAGES
    )


def _audit_endpoints(page, axe_path, screenshot, endpoints, seen: set[str]):
    """Audit each endpoint's page once; returns (violations, audited, refused with 403)."""
    found: list[str] = []
    audited, refused = [], []
    for endpoint in endpoints:
        response = page.goto(url_for(endpoint))
        assert response is not None and response.status < 500, (
            f"{endpoint}: {response and response.status}"
        )
        if response.status == 403:
            refused.append(endpoint)
            continue
        if "text/html" not in response.headers.get("content-type", "") or page.url in seen:
            continue  # a download, or a fragment route that redirected to a page seen already
        seen.add(page.url)
        found += _audit(page, axe_path, endpoint)
        screenshot(page, endpoint.removeprefix("console.").replace("_", "-"))
        audited.append(endpoint)
    return found, audited, refused


def test_every_console_page_has_no_serious_violations(
    open_page, axe_path, sign_in, admin, setup, screenshot
):
    """Each console GET page without path arguments (from the URL map), as admin or as support."""
    factories.make_channel(setup, "email", name="Support Email")
    support = factories.make_user(role="support", email="sam@support.example")
    page = open_page(bypass_csp=True)
    sign_in(page, admin)
    seen: set[str] = set()
    found, audited, refused = _audit_endpoints(
        page, axe_path, screenshot, _parameterless_pages(), seen
    )
    assert "console.channels_index" in audited, f"audited only {audited}"
    if refused:  # pages for support staff only (the tenant switcher)
        support_page = open_page(bypass_csp=True)
        sign_in(support_page, support)
        more, audited_by_support, refused_again = _audit_endpoints(
            support_page, axe_path, screenshot, refused, seen
        )
        assert not refused_again, f"refused to admin and support alike: {refused_again}"
        found += more
        audited += audited_by_support
    print("audited:", ", ".join(audited))
    _assert_no_violations(found)


def test_support_view_has_no_serious_violations(audit_page, axe_path, sign_in, setup, screenshot):
    """Support staff: the tenant switcher, then a tenant's pages read-only under the banner."""
    channel = factories.make_channel(setup, "email", name="Support Email")
    support = factories.make_user(role="support", email="sam@support.example")
    page = audit_page
    sign_in(page, support)
    page.goto(url_for("console.support_tenants"))
    found = _audit(page, axe_path, "tenant switcher")
    screenshot(page, "support-tenants")
    page.goto(url_for("console.support_confirm_open", tenant_id=setup.tenant.id))
    page.get_by_role("button", name="Open read-only").click()  # no reason: refused inline
    expect(page.locator("#reason-error")).to_be_visible()
    found += _audit(page, axe_path, "open a tenant (reason refused)")
    screenshot(page, "support-open-tenant-refused")
    page.get_by_label("Reason").fill("Ticket #4821: SMS not delivered")
    page.get_by_role("button", name="Open read-only").click()
    expect(page.get_by_role("note", name="Read-only access")).to_contain_text(setup.tenant.name)
    found += _audit(page, axe_path, "channels as support")
    screenshot(page, "support-channels")
    page.goto(url_for("console.channels_edit", channel_id=channel.id))
    expect(page.get_by_label("Name")).to_be_disabled()
    found += _audit(page, axe_path, "channel as support")
    _assert_no_violations(found)


def test_recheck_warnings_have_no_serious_violations(
    audit_page, axe_path, sign_in, admin, setup, screenshot
):
    """Issue 15's console pieces: the "Needs attention" banner (a domain at risk, an unhealthy
    integration), their badges on the channels, domains and integrations tables, and a domain's
    records with their hints, what was found and when."""
    from datetime import timedelta

    from core.db_types import rfc3339, utcnow
    from core.extensions import db

    factories.make_channel(setup, "email", name="Support Email")
    now = utcnow()
    domain = setup.domain
    domain.status = "at_risk"
    domain.at_risk_since = now
    domain.failed_checks = 1
    domain.last_checked_at = now
    domain.record_statuses = {"verification": "missing", "spf": "mismatch", "dkim": "error"}
    earlier = rfc3339(now - timedelta(days=1))
    domain.record_details = {
        "verification": {"found": [], "last_checked_at": rfc3339(now), "last_verified_at": earlier},
        "spf": {"found": ["v=spf1 include:other.example -all"], "last_checked_at": rfc3339(now)},
        "dkim": {"found": None, "last_checked_at": rfc3339(now), "last_verified_at": earlier},
    }
    integration = setup.email_integration
    integration.unhealthy_since = now
    integration.failed_checks = 3
    integration.last_checked_at = now
    integration.last_check_ok = False
    integration.last_check_message = "The provider refused the credentials (401)."
    db.session.commit()
    end_test_transaction()

    page = audit_page
    sign_in(page, admin)
    found = []
    for endpoint, kwargs, notice in (
        ("console.channels_index", {}, "Needs attention"),
        ("console.email_domains_index", {}, "Needs attention"),
        ("console.email_domains_show", {"domain_id": domain.id}, "At risk since"),
        ("console.integrations_index", {}, "Needs attention"),
    ):
        page.goto(url_for(endpoint, **kwargs))
        expect(page.get_by_text(notice)).to_be_visible()
        found += _audit(page, axe_path, f"{endpoint} with warnings")
        screenshot(page, endpoint.removeprefix("console.").replace("_", "-") + "-warnings")
    _assert_no_violations(found)
