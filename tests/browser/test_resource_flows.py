"""Integrations, email domains, phone numbers and API keys in a real browser (htmx on)."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from playwright.sync_api import expect
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey, EmailDomain
from core.services.email_domains import dns_records
from tests.conftest import base_config
from tests.services.fake_providers import GOOD, ProviderServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def provider_server():
    """The fake provider API that "Test connection" calls."""
    with ProviderServer() as server:
        yield server


@pytest.fixture
def app_config(database_url, provider_server, zone):
    """Providers and DNS point at the test's local servers."""
    config = base_config(database_url)
    config.update(
        PROVIDER_BASE_URLS=provider_server.base_urls(),
        PROVIDER_TIMEOUT=3.0,
        DNS_NAMESERVERS=f"127.0.0.1:{zone.port}",
        DNS_TIMEOUT=2.0,
    )
    return config


def test_create_an_integration_switching_provider_and_test_it(page, sign_in, admin, screenshot):
    """Type and provider switches swap the credential fields; the secret is never shown."""
    sign_in(page, admin)
    page.goto(url_for("console.integrations_new"))
    page.evaluate("window.__marker = 1")
    page.get_by_label("Name", exact=True).fill("Vonage main")
    page.get_by_label("Channel type").select_option(label="SMS")
    expect(page.locator("#credential-fields[data-provider=twilio]")).to_be_visible()
    page.get_by_label("Provider").select_option(label="Vonage")
    expect(page.locator("#credential-fields[data-provider=vonage]")).to_be_visible()
    assert page.evaluate("window.__marker") == 1, "the switch reloaded the page"
    page.get_by_label("API key", exact=True).fill(GOOD["vonage"]["api_key"])
    page.get_by_label("API secret").fill(GOOD["vonage"]["api_secret"])
    screenshot(page, "integration-new")
    page.get_by_role("button", name="Create integration").click()
    expect(page).to_have_url(re.compile(r"/integrations$"))
    row = page.locator("tr", has=page.get_by_role("link", name="Vonage main"))
    expect(row).to_contain_text("Vonage")
    row.get_by_role("button", name=re.compile("Test connection")).click()
    expect(row.locator(".check-result")).to_contain_text("Vonage accepted the API key and secret.")
    expect(row.locator(".check-result")).to_contain_text("Checked")
    screenshot(page, "integrations")
    assert GOOD["vonage"]["api_secret"] not in page.content()
    row.get_by_role("link", name=re.compile("^Edit")).click()
    expect(page.get_by_label("Replace api secret")).to_have_value("")
    screenshot(page, "integration-edit")


def test_verify_a_domain_against_local_dns(page, sign_in, admin, zone, screenshot):
    """Add a domain, publish its ownership record, Verify: statuses update in place."""
    sign_in(page, admin)
    page.goto(url_for("console.email_domains_index"))
    page.get_by_label("Domain", exact=True).fill("mail.example.net")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("heading", name="mail.example.net")).to_be_visible()
    expect(page.locator("#record-verification")).to_contain_text("Not checked")
    db.session.rollback()  # see what the server committed
    domain = db.session.scalar(select(EmailDomain).where(EmailDomain.domain == "mail.example.net"))
    record = dns_records(domain)[0]
    zone.publish(record["host"], record["type"], record["value"])
    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".domain-status")).to_contain_text("Verified")
    expect(page.locator("#record-verification")).to_contain_text("Found")
    expect(page.locator("#record-spf")).to_contain_text("Not found")
    assert page.evaluate("window.__marker") == 1
    screenshot(page, "email-domain")


def test_add_a_number_and_follow_the_link_to_its_channel(page, sign_in, admin, setup, screenshot):
    """A national number with its country becomes E.164; the created channel is one click away."""
    sign_in(page, admin)
    page.goto(url_for("console.phone_numbers_new"))
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Phone number").fill("(415) 555-0123")
    page.get_by_label("SMS integration").select_option(
        label=f"{setup.sms_integration.name} (console)"
    )
    screenshot(page, "phone-number-new")
    page.get_by_role("button", name="Add number").click()
    expect(page.get_by_role("heading", name="+14155550123")).to_be_visible()
    screenshot(page, "phone-number")
    page.get_by_role("link", name="SMS +14155550123").click()
    expect(page).to_have_url(re.compile(r"/channels/[0-9a-f-]{36}/edit$"))
    expect(page.get_by_role("heading", name="SMS +14155550123")).to_be_visible()
    page.goto(url_for("console.phone_numbers_index"))
    screenshot(page, "phone-numbers")


def test_create_an_api_key_and_revoke_it(app, page, sign_in, admin, screenshot):
    """The secret is shown once; after Revoke (confirmed) the API answers 401."""
    sign_in(page, admin)
    page.goto(url_for("console.api_keys_index"))
    page.get_by_label("Name", exact=True).fill("Billing service")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").inner_text().strip()
    expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    screenshot(page, "api-key-created")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/channels", headers=headers).status_code == 200
    page.goto(url_for("console.api_keys_index"))
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    row = page.locator("tr", has_text="Billing service")
    row.get_by_role("link", name=re.compile("^Revoke")).click()
    expect(row).to_contain_text("Revoked")
    expect(page.locator("#flash")).to_contain_text("is revoked")
    screenshot(page, "api-keys")
    db.session.rollback()
    assert db.session.scalar(select(ApiKey).where(ApiKey.name == "Billing service")).revoked_at
    assert api.get("/api/channels", headers=headers).status_code == 401
