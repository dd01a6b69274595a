"""Console webhooks: add an endpoint (secret shown once), edit, rotate, send a test event, the
delivery log with its payload viewer, retry, the disabled-endpoint notice, delete; support staff
read only; console changes emit events like the API's."""

from __future__ import annotations

import json

from sqlalchemy import select

from core import delivery as deliverer
from core.extensions import db
from core.models import Event, WebhookDelivery, WebhookEndpoint
from tests import factories
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup
from tests.webhook_receiver import Receiver, verify


def _create(console, url="http://127.0.0.1:9/hooks", events=("*",), description="CRM"):
    token = csrf_token(console, "/webhooks")
    data = {"csrf_token": token, "url": url, "description": description, "events": list(events)}
    return console.post("/webhooks", data=data)


def test_the_secret_is_shown_once_and_the_endpoint_is_listed(console, tenant):
    """The POST's answer shows the whsec_ secret (no-store); the list and the endpoint's page
    never show it again; the nav has Webhooks."""
    response = _create(console, events=["channel.created", "channel.deleted"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = soup(response)
    secret = page.find(id="webhook-secret").get_text()
    assert secret.startswith("whsec_")
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    assert endpoint.events == ["channel.created", "channel.deleted"]
    listing = console.get("/webhooks")
    assert secret not in listing.get_data(as_text=True)
    assert soup(listing).find("a", attrs={"aria-current": "page"}).get_text() == "Webhooks"
    assert soup(listing).find("tr", id=f"endpoint-{endpoint.id}") is not None
    assert secret not in console.get(f"/webhooks/{endpoint.id}").get_data(as_text=True)


def test_bad_input_is_shown_next_to_the_fields(app, console):
    """422: the SSRF guard's reason on url, the events rule on events; nothing saved."""
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    response = _create(console, url="https://169.254.169.254/latest")
    assert response.status_code == 422
    assert any("link-local address" in m for m in field_errors(response)["url"])
    response = _create(console, url="https://example.com/hooks", events=[])
    assert response.status_code == 422
    assert field_errors(response)["events"]
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_test_event_log_payload_viewer_and_retry(console, tenant):
    """Send test event → a delivery in the log, delivered to a real receiver, its payload
    shown; Retry sends it again with the same webhook-id."""
    with Receiver() as receiver:
        endpoint, secret = factories.make_webhook_endpoint(tenant, receiver.url)
        page_path = f"/webhooks/{endpoint.id}"
        token = csrf_token(console, page_path)
        sent = console.post(f"{page_path}/test", data={"csrf_token": token})
        assert sent.status_code == 303
        row = db.session.scalars(select(WebhookDelivery)).one()
        assert deliverer.deliver(row.id) == "delivered"
        page = soup(console.get(page_path))
        line = page.find("tr", id=f"delivery-{row.id}")
        assert "webhook.test" in line.get_text() and "Delivered" in line.get_text()
        viewer = page.find("tr", id=f"payload-{row.id}")
        shown = json.loads(viewer.find("pre", class_="payload-json").get_text())
        assert shown == verify(secret, receiver.received[0])
        retried = console.post(f"/webhooks/deliveries/{row.id}/retry", data={"csrf_token": token})
        assert retried.status_code == 303
        assert deliverer.deliver(row.id) == "delivered"
        ids = {r["headers"]["webhook-id"] for r in receiver.received}
        assert len(receiver.received) == 2 and ids == {row.event_id}


def test_edit_rotate_and_the_disabled_notice(console, tenant):
    """Saving settings; rotating shows the new secret once; a failing endpoint says so."""
    endpoint, _ = factories.make_webhook_endpoint(tenant, "http://127.0.0.1:9/a")
    path = f"/webhooks/{endpoint.id}"
    token = csrf_token(console, path)
    saved = console.post(
        path,
        data={
            "csrf_token": token,
            "url": "http://127.0.0.1:9/b",
            "description": "New",
            "events": ["channel.updated"],
            "status": "enabled",
        },
    )
    assert saved.status_code == 303
    db.session.refresh(endpoint)
    assert (endpoint.url, endpoint.events) == ("http://127.0.0.1:9/b", ["channel.updated"])
    rotated = console.post(f"{path}/rotate", data={"csrf_token": token})
    assert rotated.headers["Cache-Control"] == "no-store"
    assert soup(rotated).find(id="webhook-secret").get_text().startswith("whsec_")

    endpoint.status, endpoint.disabled_reason = "disabled", "failing"
    endpoint.failing_since = endpoint.created_at
    db.session.commit()
    notice = soup(console.get(path)).find(class_="notice-warning").get_text()
    assert "no delivery succeeded for three days" in notice


def test_delete_confirms_then_redirects(console, tenant, other_tenant):
    endpoint, _ = factories.make_webhook_endpoint(tenant, "http://127.0.0.1:9/a")
    theirs, _ = factories.make_webhook_endpoint(other_tenant, "http://127.0.0.1:9/b")
    page = soup(console.get(f"/webhooks/{endpoint.id}/delete"))
    form = page.find("form", action=f"/webhooks/{endpoint.id}/delete")
    data = {field["name"]: field["value"] for field in form.find_all("input")}
    response = console.post(form["action"], data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/webhooks"
    assert db.session.get(WebhookEndpoint, endpoint.id) is None
    assert console.get(f"/webhooks/{theirs.id}").status_code == 404


def test_support_staff_read_without_write_controls(support_console, tenant):
    """Support sees the endpoints and the log, no form and no button."""
    endpoint, _ = factories.make_webhook_endpoint(tenant, "http://127.0.0.1:9/a")
    token = csrf_token(support_console, "/support/tenants")
    support_console.post(f"/support/tenants/{tenant.id}/open", data={"csrf_token": token})
    page = soup(support_console.get(f"/webhooks/{endpoint.id}"))
    assert page.find("form", attrs={"method": "post", "action": f"/webhooks/{endpoint.id}"}) is None
    assert page.find("button", string="Send test event") is None


def test_console_changes_emit_events(console, setup):
    """Making a channel the default from the console writes channel.default_changed."""
    factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/a")
    factories.make_channel(setup, "email", name="First")
    second = factories.make_channel(setup, "email", name="Second")
    response = console.post(
        f"/channels/{second.id}/default", headers=htmx_headers(console, "/channels")
    )
    assert response.status_code == 200
    db.session.rollback()
    moved = db.session.scalars(
        select(Event).where(Event.type == "channel.default_changed").order_by(Event.sequence.desc())
    ).first()
    assert moved.payload["data"]["new_default"]["id"] == second.id
    assert db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == moved.id)
    ).one()
