"""The account page in a real browser: reached from the header, it lists this browser and the
other one signed in, signs the other one out in place (htmx), and changes the password."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_account_page_signs_another_session_out_and_changes_the_password(
    open_page, sign_in, admin, screenshot
):
    """Header link → account page with both sessions (this one marked; screenshot) → "Sign
    out" on the phone's row removes it in place and the phone is signed out → the password
    form changes the password and this browser stays signed in."""
    phone = open_page(user_agent=PHONE_UA)
    sign_in(phone, admin)
    page = open_page()
    sign_in(page, admin)

    page.get_by_role("link", name=re.compile("Your account")).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="This session")).to_have_count(1)
    phone_row = rows.filter(has_text="Safari 17 on iOS")
    expect(phone_row).to_have_count(1)
    screenshot(page, "account")

    phone_row.get_by_role("button", name=re.compile("^Sign out")).click()
    expect(rows).to_have_count(1)
    expect(page.locator("#flash")).to_contain_text("Safari 17 on iOS is signed out")
    expect(page.get_by_role("button", name="Sign out everywhere else")).to_have_count(0)
    phone.goto(url_for("console.channels_index"))
    expect(phone).to_have_url(re.compile(r"/login"))
    expect(phone.locator("#flash")).to_contain_text("Your session has ended")

    page.get_by_label("Current password").fill("correct-horse-battery")
    page.get_by_label("New password", exact=True).fill("a-brand-new-passphrase")
    page.get_by_label("Repeat the new password").fill("a-brand-new-passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#flash")).to_contain_text("Your password is changed.")
    page.goto(url_for("console.channels_index"))
    expect(page).to_have_url(re.compile(r"/channels$"))
