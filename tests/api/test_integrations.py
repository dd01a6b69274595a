"""/api/integrations: provider credentials are write-only (masked in every response and in the
audit log), validated per provider, and kept when a masked value is sent back."""

from __future__ import annotations

import json

import pytest

from core.extensions import db
from core.models import Integration
from core.services.integrations import credentials_of
from tests.api.assertions import assert_error

SECRET = "SG.very-secret-value-123"


@pytest.fixture
def sendgrid(api, tenant):
    response = api.post(
        "/api/integrations",
        json={
            "name": "SendGrid",
            "channel_type": "email",
            "provider": "sendgrid",
            "credentials": {"api_key": SECRET},
        },
    )
    assert response.status_code == 201
    return response.get_json()


def test_secrets_are_masked_in_every_response(api, sendgrid):
    """Create, get and list show the secret masked; the plain secret appears nowhere."""
    assert sendgrid["credentials"] == {"api_key": "********"}
    assert sendgrid["status"] == "active"
    for path in (f"/api/integrations/{sendgrid['id']}", "/api/integrations", "/api/audit_events"):
        assert SECRET not in api.get(path).get_data(as_text=True)


def test_the_secret_is_stored_encrypted(api, sendgrid):
    """At rest the credentials are a Fernet token; decrypted they are what was sent."""
    row = db.session.get(Integration, sendgrid["id"])
    assert SECRET not in row.credentials_encrypted
    assert credentials_of(row) == {"api_key": SECRET}


def test_sending_the_mask_back_keeps_the_secret(api, sendgrid):
    """PATCH with the masked value (as a form would send it back): the stored secret stays."""
    response = api.patch(
        f"/api/integrations/{sendgrid['id']}",
        json={"name": "SendGrid EU", "credentials": {"api_key": "********"}},
    )
    assert response.status_code == 200 and response.get_json()["name"] == "SendGrid EU"
    assert credentials_of(db.session.get(Integration, sendgrid["id"])) == {"api_key": SECRET}


def test_audit_events_mask_secret_changes(api, sendgrid):
    """Replacing the secret is audited as changed, with both values masked."""
    api.patch(f"/api/integrations/{sendgrid['id']}", json={"credentials": {"api_key": "SG.new"}})
    events = api.get("/api/audit_events?resource_type=integration").get_json()["data"]
    text = json.dumps(events)
    assert SECRET not in text and "SG.new" not in text
    update = next(e for e in events if e["action"] == "integration.update")
    assert update["changes"]["credentials.api_key"] == {"before": "********", "after": "********"}


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"provider": "twilio"}, {"provider"}),
        ({"provider": "carrier-pigeon"}, {"provider"}),
        ({"credentials": {}}, {"credentials.api_key"}),
        ({"credentials": {"api_key": "x", "region": "eu"}}, {"credentials.region"}),
        ({"channel_type": "fax"}, {"channel_type"}),
        ({"id": "x", "last_check": None}, {"id", "last_check"}),
    ],
    ids=[
        "provider of another type",
        "unknown provider",
        "missing secret",
        "unknown credential",
        "bad type",
        "read-only",
    ],
)
def test_integration_rules(api, tenant, body, fields):
    """Per-provider validation: 422 naming the failing fields."""
    payload = {
        "name": "Mail",
        "channel_type": "email",
        "provider": "sendgrid",
        "credentials": {"api_key": "k"},
    }
    payload.update(body)
    error = assert_error(api.post("/api/integrations", json=payload), 422, "validation_error")
    assert set(error["fields"]) == fields


def test_channel_type_and_provider_cannot_change(api, sendgrid):
    """PATCH channel_type or provider: 422 on each."""
    response = api.patch(
        f"/api/integrations/{sendgrid['id']}", json={"channel_type": "sms", "provider": "postmark"}
    )
    assert set(assert_error(response, 422, "validation_error")["fields"]) == {
        "channel_type",
        "provider",
    }
