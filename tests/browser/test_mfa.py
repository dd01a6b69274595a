"""MFA and step-up in Chromium (issue 13): setting up an authenticator app and signing in with
its code (codes computed with pyotp), a recovery code working once, passkeys registered and
used with the DevTools protocol's virtual authenticator (as a second factor and to sign in
alone), the step-up prompt completing the pending action, and support staff without a factor
refused at the tenant switcher. The new pages are audited with axe and screenshotted.

Passkeys need a real domain as relying party id (not an IP address), so the passkey test
browses the test server as ``localhost``. The server runs in this process: time-machine moves
its clock too (``tick=True``: time keeps flowing from the moved moment).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from flask import url_for
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey, Passkey
from tests import factories
from tests.browser.conftest import PASSWORD, end_test_transaction
from tests.browser.test_accessibility import _assert_no_violations, _audit

pytestmark = pytest.mark.browser


@pytest.fixture
def clock():
    """A clock the test can move forward (server included); time keeps flowing."""
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login"))


def password_step(page: Page, email: str, base: str = "") -> None:
    page.goto(base + url_for("console.login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_authenticator_app_enrollment_sign_in_and_a_recovery_code_working_once(
    clock, open_page, sign_in, admin, axe_path, screenshot
):
    """Account page → "Set up an app": QR code drawn as SVG and the key as text; the key's
    current code turns it on and the ten recovery codes are shown once. Signing in again asks
    for the code after the password; a recovery code signs in once and is refused the second
    time."""
    page = open_page(bypass_csp=False)
    sign_in(page, admin)
    page.goto(url_for("console.account_index"))
    page.get_by_role("button", name="Set up an app").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator(".qr-code svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    screenshot(page, "totp-setup")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    recovery = codes.nth(0).inner_text()
    screenshot(page, "recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#factors")).to_contain_text("On")
    expect(page.locator("#factors")).to_contain_text("10 of 10 unused")
    assert recovery not in page.content()
    sign_out(page)

    clock.shift(timedelta(seconds=30))  # the enrollment's code was used: the next one
    password_step(page, admin.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/channels$"))
    sign_out(page)

    password_step(page, admin.email)
    page.get_by_label("Authentication code").fill(recovery)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/channels$"))
    sign_out(page)

    password_step(page, admin.email)
    page.get_by_label("Authentication code").fill(recovery)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#code-error")).to_contain_text("used already")
    screenshot(page, "second-factor")
    audit = open_page(bypass_csp=True)
    password_step(audit, admin.email)
    found = _audit(audit, axe_path, "second factor")
    audit.get_by_label("Authentication code").fill("000000")
    audit.get_by_role("button", name="Verify").click()
    expect(audit.locator("#code-error")).to_be_visible()
    found += _audit(audit, axe_path, "second factor with an error")
    _assert_no_violations(found)


def add_virtual_authenticator(page: Page) -> None:
    """A platform authenticator with resident keys and user verification (CDP WebAuthn)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_passkey_registration_second_factor_and_sign_in(
    open_page, server, admin, axe_path, screenshot
):
    """Register a passkey on the account page (virtual authenticator) → recovery codes; the
    passkey then serves as second factor after the password, and signs in alone from the
    sign-in page ("Sign in with a passkey"). Nothing of the credential is shown."""
    base = server.replace("127.0.0.1", "localhost")
    page = open_page()  # the CSP enforced: webauthn.js works without inline script
    add_virtual_authenticator(page)
    end_test_transaction()
    password_step(page, admin.email, base)
    expect(page).to_have_url(re.compile(r"/channels$"))
    page.goto(base + url_for("console.account_index"))
    page.get_by_label("Passkey name").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator(".passkeys-table")).to_contain_text("Test laptop")
    screenshot(page, "account-factors")
    end_test_transaction()
    [passkey] = db.session.scalars(select(Passkey)).all()
    assert passkey.name == "Test laptop" and passkey.credential_id not in page.content()
    sign_out(page)

    password_step(page, admin.email, base)
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/channels$"))
    sign_out(page)

    page.goto(base + url_for("console.login"))
    screenshot(page, "login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/channels$"))
    expect(page.locator(".user-email")).to_have_text(admin.email)
    end_test_transaction()
    used = db.session.scalars(select(Passkey)).one()
    assert used.last_used_at is not None

    # axe (it needs the CSP bypassed): the sign-in page with its passkey button, and the
    # account page with the passkey listed.
    audit = open_page(bypass_csp=True)
    audit.goto(base + url_for("console.login"))
    expect(audit.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    found = _audit(audit, axe_path, "login with passkey button")
    page.goto(base + url_for("console.account_index"))
    page.wait_for_load_state()
    found += _audit_here(open_page, page, axe_path, "account with a passkey")
    _assert_no_violations(found)


def _audit_here(open_page, page: Page, axe_path, label: str) -> list[str]:
    """axe on the page ``page`` shows, in a CSP-bypassing page sharing its cookies."""
    audit = open_page(bypass_csp=True, storage_state=page.context.storage_state())
    audit.goto(page.url)
    return _audit(audit, axe_path, label)


def test_the_step_up_prompt_completes_the_pending_action(
    clock, open_page, sign_in, admin, axe_path, screenshot
):
    """Eleven minutes after signing in, creating an API key asks to confirm it's you; the
    password completes the creation as it was typed (the key is shown once)."""
    page = open_page(bypass_csp=True)
    sign_in(page, admin)
    clock.shift(timedelta(minutes=11))
    page.goto(url_for("console.api_keys_index"))
    page.get_by_label("Name").fill("Step-up key")
    page.get_by_role("button", name=re.compile("Create", re.I)).click()
    expect(page.get_by_role("heading", name="Confirm it’s you")).to_be_visible()
    expect(page.locator(".auth-card")).to_contain_text("create an API key")
    found = _audit(page, axe_path, "confirm")
    screenshot(page, "confirm")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#password-error")).to_contain_text("not your password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Step-up key").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("chk_")
    end_test_transaction()
    assert db.session.scalars(select(ApiKey.name)).all() == ["Step-up key"]
    _assert_no_violations(found)


def test_support_staff_without_a_factor_are_refused_at_the_switcher(
    open_page, sign_in, setup, screenshot
):
    """Support staff without a factor: the switcher sends them to the account page with the
    reason; after setting up an app, the switcher opens tenants."""
    support = factories.make_user(role="support", email="sam@platform.example")
    page = open_page()
    sign_in(page, support, give_factor=False)
    page.goto(url_for("console.support_tenants"))
    expect(page).to_have_url(re.compile(r"/account"))
    expect(page.locator("#flash")).to_contain_text("need two-factor authentication")
    screenshot(page, "support-enroll")
    page.get_by_role("button", name="Set up an app").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("link", name="I have saved them").click()
    page.goto(url_for("console.support_tenants"))
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()


def test_the_team_page_policy_in_the_browser(open_page, sign_in, admin, axe_path, screenshot):
    """The policy card: refused inline without one's own factor; with one, it turns on."""
    page = open_page(bypass_csp=True)
    sign_in(page, admin)
    page.goto(url_for("console.team_index"))
    page.get_by_label("Require two-factor authentication for every admin").check()
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#require_mfa-error")).to_contain_text("your own account first")
    found = _audit(page, axe_path, "team with a policy error")
    end_test_transaction()
    factories.enroll_totp(admin)
    end_test_transaction()
    page.goto(url_for("console.team_index"))
    page.get_by_label("Require two-factor authentication for every admin").check()
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#flash")).to_contain_text("now needs two-factor authentication")
    expect(page.locator(".team-table")).to_contain_text("On")
    screenshot(page, "team-policy")
    found += _audit(page, axe_path, "team with the policy on")
    _assert_no_violations(found)
