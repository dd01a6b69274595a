"""/api/webhook_endpoints and /api/webhook_deliveries: the contract (issue 14 point 3)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from core.schemas.webhooks import ENDPOINTS_MAX
from tests import factories
from tests.api.assertions import assert_error

URL = "http://127.0.0.1:9/hooks"


def create(api, **overrides):
    body = {"url": URL, "events": ["*"], **overrides}
    return api.post("/api/webhook_endpoints", json=body)


def test_create_answers_the_secret_once_and_stores_it_encrypted(api):
    """201 with Location and a whsec_ secret; GET and the list never show it; the database
    holds it encrypted only."""
    response = create(api, events=["channel.created", "channel.deleted"], description="CRM")
    assert response.status_code == 201
    body = response.get_json()
    assert body["secret"].startswith("whsec_")
    assert response.headers["Location"] == f"/api/webhook_endpoints/{body['id']}"
    assert body["status"] == "enabled" and body["events"] == ["channel.created", "channel.deleted"]
    shown = api.get(f"/api/webhook_endpoints/{body['id']}").get_json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in body.items() if k != "secret"}
    listed = api.get("/api/webhook_endpoints").get_json()
    assert listed == {"data": [shown], "next_cursor": None}
    row = db.session.get(WebhookEndpoint, body["id"])
    assert body["secret"] not in row.secret_encrypted
    audit = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.create")
    ).one()
    assert audit.changes["secret"] == {"before": None, "after": "********"}


def test_patch_delete_and_rotate(api):
    """PATCH url/events/description/status, rotate (a new secret, the old one signing 24 h),
    DELETE (204, then 404); each audited."""
    made = create(api).get_json()
    path = f"/api/webhook_endpoints/{made['id']}"
    changed = api.patch(
        path, json={"url": URL + "/v2", "events": ["channel.updated"], "description": "v2"}
    ).get_json()
    assert (changed["url"], changed["events"], changed["description"]) == (
        URL + "/v2",
        ["channel.updated"],
        "v2",
    )
    disabled = api.patch(path, json={"status": "disabled"}).get_json()
    assert disabled["status"] == "disabled" and disabled["disabled_reason"] == "manual"
    rotated = api.post(f"{path}/rotate_secret")
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["secret"].startswith("whsec_") and new["secret"] != made["secret"]
    assert new["previous_secret_expires_at"] is not None
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.disable",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.delete",
    } <= actions


def test_test_event_deliveries_and_retry(api):
    """test → 202 with the queued delivery; it is in the deliveries list; retry → 202 pending."""
    made = create(api, events=["channel.created"]).get_json()
    queued = api.post(f"/api/webhook_endpoints/{made['id']}/test")
    assert queued.status_code == 202
    delivery = queued.get_json()
    assert delivery["event_type"] == "webhook.test" and delivery["status"] == "pending"
    assert delivery["attempts"] == 0 and delivery["endpoint_id"] == made["id"]
    page = api.get(f"/api/webhook_endpoints/{made['id']}/deliveries").get_json()
    assert page == {"data": [delivery], "next_cursor": None}
    assert api.get(
        f"/api/webhook_endpoints/{made['id']}/deliveries?status=delivered"
    ).get_json() == {"data": [], "next_cursor": None}
    db.session.get(WebhookDelivery, delivery["id"]).status = "failed"
    db.session.commit()
    retried = api.post(f"/api/webhook_deliveries/{delivery['id']}/retry")
    assert retried.status_code == 202 and retried.get_json()["status"] == "pending"
    api.patch(f"/api/webhook_endpoints/{made['id']}", json={"status": "disabled"})
    assert_error(api.post(f"/api/webhook_deliveries/{delivery['id']}/retry"), 409, "conflict")
    assert_error(api.post(f"/api/webhook_endpoints/{made['id']}/test"), 409, "conflict")


def test_deliveries_paginate_with_a_cursor(api):
    made = create(api).get_json()
    for _ in range(3):
        api.post(f"/api/webhook_endpoints/{made['id']}/test")
    path = f"/api/webhook_endpoints/{made['id']}/deliveries?limit=2"
    first = api.get(path).get_json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = api.get(path + f"&cursor={first['next_cursor']}").get_json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    ids = [d["id"] for d in first["data"] + second["data"]]
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"events": ["*"]}, "url", "This field is required."),
        ({"url": URL}, "events", "This field is required."),
        ({"url": URL, "events": []}, "events", None),
        ({"url": URL, "events": ["channel.exploded"]}, "events.0", None),
        ({"url": URL, "events": ["*", "channel.created"]}, "events", "send it alone"),
        ({"url": URL, "events": ["channel.created"] * 2}, "events", "List each event type once."),
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url", "https://"),
        ({"url": "http://user:pw@127.0.0.1/", "events": ["*"]}, "url", "user name or password"),
        ({"url": URL, "events": ["*"], "description": "x" * 501}, "description", None),
        ({"url": URL, "events": ["*"], "colour": "red"}, "colour", "Unknown field."),
    ],
)
def test_bad_bodies_are_422_naming_the_field(api, body, field, message):
    response = api.post("/api/webhook_endpoints", json=body)
    fields = assert_error(response, 422, "validation_error")["fields"]
    assert field in fields, fields
    if message:
        assert any(message in m for m in fields[field]), fields[field]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "must use https"),
        ("https://127.0.0.1/hook", "a loopback address (127.0.0.1)"),
        ("https://[::1]/hook", "a loopback address (::1)"),
        ("https://10.1.2.3/hook", "a private address"),
        ("https://192.168.1.1/hook", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://100.64.0.1/hook", "a shared (carrier-grade NAT) address"),
        ("https://224.0.0.1/hook", "a multicast address"),
        ("https://240.0.0.1/hook", "a reserved address"),
        ("https://[fc00::1]/hook", "a unique local address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://[::ffff:10.0.0.1]/hook", "a private address"),
        ("https://localhost/hook", "resolves to a loopback address"),
    ],
)
def test_the_ssrf_guard_refuses_non_public_urls_when_saving(app, api, url, why):
    """Outside development and tests (WEBHOOK_ALLOW_PRIVATE_URLS false) every non-public
    address class is refused at save time, 422 on url naming why; PATCH too."""
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    fields = assert_error(create(api, url=url), 422, "validation_error")["fields"]
    assert any(why in m for m in fields["url"]), fields["url"]
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True
    made = create(api).get_json()
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False
    response = api.patch(f"/api/webhook_endpoints/{made['id']}", json={"url": url})
    assert any(why in m for m in assert_error(response, 422, "validation_error")["fields"]["url"])


def test_at_most_twenty_endpoints_per_tenant(api, tenant):
    for n in range(ENDPOINTS_MAX):
        assert create(api, url=f"{URL}/{n}").status_code == 201
    error = assert_error(create(api), 409, "conflict")
    assert f"at most {ENDPOINTS_MAX} webhook endpoints" in error["message"]


def test_read_keys_read_and_write_keys_write(client, tenant, api):
    """A read key lists and gets, and is 403 on every write."""
    made = create(api).get_json()
    reader = factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))
    path = f"/api/webhook_endpoints/{made['id']}"
    assert reader.get("/api/webhook_endpoints").status_code == 200
    assert reader.get(path).status_code == 200
    assert reader.get(f"{path}/deliveries").status_code == 200
    for response in (
        reader.post("/api/webhook_endpoints", json={"url": URL, "events": ["*"]}),
        reader.patch(path, json={"description": "x"}),
        reader.delete(path),
        reader.post(f"{path}/rotate_secret"),
        reader.post(f"{path}/test"),
    ):
        assert_error(response, 403, "forbidden")


def test_other_tenants_endpoints_and_deliveries_are_404(client, api, other_tenant):
    """Another tenant's endpoint and delivery ids answer exactly like unknown ones."""
    theirs = factories.ApiClient(client, factories.make_api_key(other_tenant))
    made = create(theirs).get_json()
    delivery = theirs.post(f"/api/webhook_endpoints/{made['id']}/test").get_json()
    path = f"/api/webhook_endpoints/{made['id']}"
    for response in (
        api.get(path),
        api.patch(path, json={"description": "x"}),
        api.delete(path),
        api.post(f"{path}/rotate_secret"),
        api.post(f"{path}/test"),
        api.get(f"{path}/deliveries"),
        api.post(f"/api/webhook_deliveries/{delivery['id']}/retry"),
    ):
        assert assert_error(response, 404, "not_found")["message"].startswith("Webhook")
    assert api.get("/api/webhook_endpoints").get_json()["data"] == []
