"""The seed's sample calls: the responses have exactly the documented fields and formats."""

import re
import uuid

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EMAIL_FIELDS = {
    "id",
    "tenant_id",
    "name",
    "channel_type",
    "integration_id",
    "send_from_email",
    "email_domain_id",
    "status",
    "is_default",
    "metadata",
    "created_at",
    "updated_at",
}
SMS_FIELDS = EMAIL_FIELDS - {"send_from_email", "email_domain_id"} | {
    "send_from_phone_number",
    "phone_number_id",
}


def _is_uuid4(value):
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def test_create_email_channel_matches_the_sample(api, setup):
    """POST /api/channels for an email channel on a verified domain: the sample's shape."""
    response = api.post("/api/channels", json=setup.email_payload(name="Support Email"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == EMAIL_FIELDS
    assert _is_uuid4(body["id"]) and body["tenant_id"] == setup.tenant.id
    assert body["name"] == "Support Email"
    assert body["send_from_email"] == "support@example.com"
    assert body["status"] == "available" and body["is_default"] is True
    assert body["metadata"] == {}
    assert RFC3339.match(body["created_at"])
    assert response.headers["Location"].endswith(body["id"])


def test_create_sms_channel_matches_the_sample(api, setup):
    """POST /api/channels for an SMS channel: the sms fields, never the email ones."""
    response = api.post("/api/channels", json=setup.sms_payload(name="Support SMS"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == SMS_FIELDS
    assert body["send_from_phone_number"] == setup.number.phone_number
    assert body["status"] == "available" and body["is_default"] is True
    assert _is_uuid4(body["id"]) and RFC3339.match(body["created_at"])
