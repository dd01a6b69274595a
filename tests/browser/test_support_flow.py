"""Support staff in a real browser: switch tenants, see the read-only banner, find no write
control on any page of the tenant."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from playwright.sync_api import Page, expect

from tests import factories

pytestmark = pytest.mark.browser

# Every usable write control: a POST form (other than sign-out) with an enabled control, or an
# element that would send an htmx write.
WRITE_CONTROLS_JS = """
() => {
  const found = [];
  for (const form of document.querySelectorAll("form")) {
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") continue;
    if (new URL(form.action).pathname === "/logout") continue;
    const usable = form.querySelectorAll(
      "input:not([type=hidden]):enabled, select:enabled, textarea:enabled, button:enabled");
    if (usable.length) found.push("form " + form.getAttribute("action"));
  }
  for (const el of document.querySelectorAll("[hx-post], [hx-put], [hx-patch], [hx-delete]")) {
    found.push(el.outerHTML.slice(0, 120));
  }
  return found;
}
"""
WRITE_LABELS = re.compile(
    r"^(New channel|Add|Create|Save|Make default|Disable|Enable|Delete|Revoke|Release|Verify|"
    r"Remove|Test connection|Send test)",
    re.I,
)


@pytest.fixture
def tenants(app):
    """Two tenants with channels, and a support user."""
    acme = factories.make_ready_tenant(factories.make_tenant(name="Acme Corp", slug="acme"))
    factories.make_channel(acme, name="Acme Support Email")
    factories.make_channel(acme, "sms", name="Acme Alerts")
    globex = factories.make_ready_tenant(
        factories.make_tenant(name="Globex", slug="globex"), domain="globex.example"
    )
    factories.make_channel(globex, name="Globex Newsletter")
    support = factories.make_user(role="support", email="sam@platform.example", name="Sam")
    return acme, globex, support


def assert_read_only(page: Page, tenant_name: str) -> None:
    """The banner names the tenant; no usable write control and no write button or link."""
    expect(page.locator(".support-banner")).to_contain_text(
        f"Viewing {tenant_name} as support — read-only"
    )
    assert page.evaluate(WRITE_CONTROLS_JS) == [], page.url
    for control in page.locator("main a.button, main button").all():
        if control.is_visible() and control.is_enabled():
            label = control.inner_text().strip()
            assert not WRITE_LABELS.match(label), f"{label!r} on {page.url}"


def open_with_reason(page: Page, tenant_name: str, reason: str = "Ticket #4821") -> None:
    """In the switcher: "Open" on the tenant's row, then the reason form."""
    page.locator("#tenant-results tr", has_text=tenant_name).get_by_role(
        "link", name=re.compile("Open")
    ).click()
    expect(page.locator("h1")).to_have_text(f"Open {tenant_name}")
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Open read-only").click()


def test_support_switches_tenants_read_only(page, sign_in, tenants, screenshot):
    """Sign in → switcher (live search) → open Acme → every page read-only with the banner →
    switch to Globex → its data, its banner; both openings are in each tenant's audit log."""
    acme, globex, support = tenants
    sign_in(page, support)
    expect(page).to_have_url(re.compile(r"/support/tenants"))
    expect(page.locator(".support-banner")).to_have_count(0)
    results = page.locator("#tenant-results tbody tr")
    expect(results).to_have_count(2)
    search = page.get_by_role("searchbox", name="Search")
    search.press_sequentially("glob")  # live search as you type (keyup)
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Globex")
    expect(page).to_have_url(re.compile(r"q=glob"))
    search.press("Control+a")
    search.press("Backspace")
    expect(results).to_have_count(2)
    screenshot(page, "support-tenant-switcher")

    open_with_reason(page, "Acme Corp")
    expect(page).to_have_url(re.compile(r"/channels$"))
    expect(page.locator("main")).to_contain_text("Acme Support Email")
    expect(page.locator("main")).not_to_contain_text("Globex Newsletter")
    assert_read_only(page, "Acme Corp")
    screenshot(page, "support-channels-read-only")

    channel = page.get_by_role("link", name="Acme Support Email")
    channel.click()
    expect(page.locator("h1")).to_have_text("Acme Support Email")
    assert_read_only(page, "Acme Corp")
    expect(page.locator(".resource-history")).to_contain_text("channel.create")

    for endpoint in (
        "console.integrations_index",
        "console.email_domains_index",
        "console.phone_numbers_index",
        "console.api_keys_index",
        "console.team_index",
        "console.audit_index",
    ):
        page.goto(url_for(endpoint))
        assert_read_only(page, "Acme Corp")
    expect(page.locator("#audit-results")).to_contain_text("support.tenant_opened")
    expect(page.locator("#audit-results")).to_contain_text("sam@platform.example")

    page.get_by_role("link", name="Switch tenant").click()
    expect(page).to_have_url(re.compile(r"/support/tenants"))
    open_with_reason(page, "Globex", "Ticket #4822")
    expect(page.locator("main")).to_contain_text("Globex Newsletter")
    expect(page.locator("main")).not_to_contain_text("Acme Support Email")
    assert_read_only(page, "Globex")


def test_support_without_javascript_still_switches(open_page, sign_in, tenants):
    """With JavaScript off the search is a plain GET form and opening is a plain POST."""
    _, _, support = tenants
    page = open_page(java_script_enabled=False)
    sign_in(page, support)
    page.get_by_role("searchbox", name="Search").fill("acme")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#tenant-results tbody tr")).to_have_count(1)
    open_with_reason(page, "Acme Corp")
    expect(page.locator(".support-banner")).to_contain_text("Viewing Acme Corp as support")
