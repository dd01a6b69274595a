"""Accounts in a real browser: the forced change of a password an admin chose (first sign-in →
the change page → then the console works), and the platform log of support staff."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import end_test_transaction
from tests.browser.test_accessibility import _assert_no_violations, _audit

pytestmark = pytest.mark.browser

GIVEN = "a-long-initial-password"
OWN = "mauve pelican outgrows tuesday"


def test_a_password_set_by_an_admin_is_changed_at_first_sign_in(
    open_page, sign_in, admin, axe_path, screenshot
):
    """Ada adds Grace on the team page with a password she chose; Grace signs in with it and
    lands on the change page (nothing else reachable, axe-clean); a weak choice is refused
    inline; her own password set, she is where she was going and the console works (live
    search included)."""
    page = open_page()
    sign_in(page, admin)
    page.goto(url_for("console.team_index"))
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("Initial password").fill(GIVEN)
    page.get_by_role("button", name=re.compile("Add")).click()
    expect(page.locator("#flash")).to_contain_text("then choose their own")

    grace = open_page(bypass_csp=True)  # axe is injected as an inline script
    grace.goto(url_for("console.integrations_index"))  # where she means to go
    grace.get_by_label("Email").fill("grace@example.com")
    grace.get_by_label("Password").fill(GIVEN)
    grace.get_by_role("button", name="Sign in", exact=True).click()
    expect(grace).to_have_url(re.compile(r"/account/password/required\?next=/integrations$"))
    expect(grace.locator("h1")).to_have_text("Choose your own password")
    expect(grace.get_by_role("navigation", name="Main")).to_have_count(0)
    found = _audit(grace, axe_path, "choose your own password")
    screenshot(grace, "account-password-required")

    grace.goto(url_for("console.channels_index"))  # still nothing else
    expect(grace).to_have_url(re.compile(r"/account/password/required"))
    grace.get_by_label("Current password", exact=True).fill(GIVEN)
    grace.get_by_label("New password", exact=True).fill("password123")
    grace.get_by_label("Repeat the new password").fill("password123")
    grace.get_by_role("button", name="Set my password and continue").click()
    expect(grace.locator("#new_password-error")).to_contain_text("too easy to guess")
    found += _audit(grace, axe_path, "choose your own password (refused)")
    screenshot(grace, "account-password-required-refused")

    grace.get_by_label("Current password", exact=True).fill(GIVEN)
    grace.get_by_label("New password", exact=True).fill(OWN)
    grace.get_by_label("Repeat the new password").fill(OWN)
    grace.get_by_role("button", name="Set my password and continue").click()
    expect(grace).to_have_url(re.compile(r"/channels$"))
    expect(grace.locator("#flash")).to_contain_text("Your password is changed")
    grace.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    expect(grace.locator("h1")).to_have_text("Integrations")
    grace.get_by_role("navigation", name="Main").get_by_role("link", name="Channels").click()
    search = grace.get_by_role("searchbox")
    search.press_sequentially("zz-nothing")
    expect(grace).to_have_url(re.compile(r"q=zz-nothing"))
    expect(grace.locator("main")).to_contain_text("No channels match")
    _assert_no_violations(found)


def test_support_staff_read_the_platform_log(open_page, sign_in, setup, axe_path, screenshot):
    """A support user opens a tenant with a reason; the platform log page lists their
    account's creation, the second factor, the sign-in and the opening with its reason, newest
    first, and passes axe. (Support staff sign in with an authenticator app: the fixture
    enrolls one.)"""
    support = factories.make_user(role="support", email="sam@support.example", name="Sam")
    page = open_page(bypass_csp=True)
    sign_in(page, support)
    page.locator("#tenant-results tr", has_text=setup.tenant.name).get_by_role(
        "link", name=re.compile("Open")
    ).click()
    page.get_by_label("Reason").fill("Ticket #4821: SMS not delivered")
    page.get_by_role("button", name="Open read-only").click()
    expect(page.locator(".support-banner")).to_contain_text("until")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Platform log").click()
    rows = page.locator("#platform-log-results tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("support.tenant_opened")
    expect(rows.first).to_contain_text("Ticket #4821: SMS not delivered")
    expect(rows.nth(1)).to_contain_text("user.signed_in")
    expect(rows.nth(2)).to_contain_text("user.mfa_verified")
    expect(rows.nth(3)).to_contain_text("user.create")
    found = _audit(page, axe_path, "platform log")
    screenshot(page, "platform-log")
    end_test_transaction()
    _assert_no_violations(found)
