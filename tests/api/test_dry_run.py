"""POST /api/channels?dry_run=true runs every rule and saves nothing."""

from __future__ import annotations

import pytest

from tests import factories
from tests.api.assertions import assert_fields, database_state


@pytest.mark.parametrize("flag", ["true", "1", "TRUE"])
def test_dry_run_returns_the_channel_it_would_create_and_saves_nothing(api, setup, flag):
    """200 with the would-be channel (no id, no timestamps); no row, no audit event."""
    api.get("/api/channels")  # the key's first use is recorded; do it before the snapshot
    before = database_state()
    response = api.post(
        f"/api/channels?dry_run={flag}", json=setup.email_payload(name=" Trial ", metadata={"a": 1})
    )
    assert response.status_code == 200
    body = response.get_json()
    assert "id" not in body and "created_at" not in body
    assert body["name"] == "Trial"
    assert body["tenant_id"] == setup.tenant.id
    assert body["status"] == "available" and body["is_default"] is True
    assert body["metadata"] == {"a": 1}
    assert "Location" not in response.headers
    assert database_state() == before


def test_dry_run_false_creates(api, setup):
    """dry_run=false is an ordinary create."""
    response = api.post("/api/channels?dry_run=false", json=setup.sms_payload())
    assert response.status_code == 201 and response.get_json()["id"]


def test_dry_run_reports_every_failing_field(api, setup):
    """Invalid input: the same 422 as a real create, and still nothing saved."""
    api.get("/api/channels")
    before = database_state()
    payload = setup.email_payload(send_from_email="x@example.org", colour="red")
    dry = api.post("/api/channels?dry_run=true", json=payload)
    assert_fields(dry, {"send_from_email", "colour"})
    assert database_state() == before
    real = api.post("/api/channels", json=payload)
    assert real.get_json() == dry.get_json()


def test_dry_run_applies_the_name_and_default_rules(api, setup):
    """A taken name fails; with a default present the would-be channel is not the default."""
    factories.make_channel(setup, "sms", name="Alerts")
    assert_fields(
        api.post("/api/channels?dry_run=true", json=setup.sms_payload(name="ALERTS")), {"name"}
    )
    body = api.post("/api/channels?dry_run=true", json=setup.sms_payload(name="Other")).get_json()
    assert body["is_default"] is False


def test_dry_run_with_is_default_leaves_the_current_default(api, setup):
    """is_default: true in a dry run does not clear the existing default."""
    current = factories.make_channel(setup, "email")
    body = api.post(
        "/api/channels?dry_run=true", json=setup.email_payload(is_default=True)
    ).get_json()
    assert body["is_default"] is True
    assert api.get(f"/api/channels/{current.id}").get_json()["is_default"] is True
