"""Webhooks in a real browser: add an endpoint (the secret shown once), send a test event, open
its payload, a failing endpoint's notice; axe on each page; screenshots."""

from __future__ import annotations

import pytest
from flask import url_for
from playwright.sync_api import expect

from core import delivery as deliverer
from core.extensions import db
from core.models import WebhookDelivery, WebhookEndpoint
from tests.browser.conftest import end_test_transaction
from tests.browser.test_accessibility import _assert_no_violations, _audit
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.browser


def test_webhook_pages_flow_and_accessibility(open_page, axe_path, sign_in, admin, screenshot):
    """Add → secret card; errors inline; endpoint page → Send test event → delivered in the log
    with its payload; failing notice; delete confirmation. No serious axe violation."""
    page = open_page(bypass_csp=True)
    sign_in(page, admin)
    with Receiver() as receiver:
        page.goto(url_for("console.webhooks_index"))
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#url-error")).to_be_visible()
        found = _audit(page, axe_path, "webhooks with errors")
        page.get_by_label("URL").fill(receiver.url + "/hooks")
        page.get_by_label("Description").fill("Our CRM")
        expect(page.get_by_label("Every event (*)")).to_be_checked()
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
        found += _audit(page, axe_path, "webhooks with a new secret")
        screenshot(page, "webhooks-created")

        page.get_by_role("link", name=receiver.url + "/hooks").click()
        page.get_by_role("button", name="Send test event").click()
        expect(page.locator(".flash-success")).to_contain_text("test event")
        end_test_transaction()
        row = db.session.scalars(db.select(WebhookDelivery)).one()
        assert deliverer.deliver(row.id) == "delivered"
        end_test_transaction()
        page.reload()
        page.locator("details.payload summary").first.click()
        expect(page.locator(".payload-json")).to_contain_text('"type": "webhook.test"')
        found += _audit(page, axe_path, "webhook endpoint with its log")
        screenshot(page, "webhook-endpoint")

    endpoint = db.session.scalars(db.select(WebhookEndpoint)).one()
    endpoint.status, endpoint.disabled_reason = "disabled", "failing"
    endpoint.failing_since = endpoint.created_at
    db.session.commit()
    page.reload()
    expect(page.locator(".notice-warning")).to_contain_text("three days")
    found += _audit(page, axe_path, "failing webhook endpoint")
    screenshot(page, "webhook-endpoint-failing")
    page.get_by_role("link", name="Delete").click()
    found += _audit(page, axe_path, "delete webhook endpoint")
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.locator(".empty-state")).to_contain_text("No webhook endpoints yet")
    _assert_no_violations(found)
