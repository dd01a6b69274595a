"""Request bodies read by the declared models (core.schemas) keep the API's behaviour: every
value error and every cross-row error in one 422, unknown and read-only fields by name, and a
missing id still answered before the body's values."""

from __future__ import annotations

from tests import factories


def test_value_and_cross_row_errors_come_back_together(api, setup):
    """A model's value errors and the rules' row errors (unknown integration) in one 422."""
    payload = setup.email_payload(
        name="x" * 101,
        integration_id="00000000-0000-4000-8000-000000000000",
        send_from_phone_number="+15551234567",
        status="available",
        colour="red",
        metadata={"k": ["not", "a", "scalar"]},
    )
    response = api.post("/api/channels", json=payload)
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "validation_error",
        "message": "The channel could not be created.",
        "fields": {
            "send_from_phone_number": ["Not allowed for email channels."],
            "name": ["Must be at most 100 characters."],
            "metadata": ["Values must be strings, numbers, booleans or null."],
            "status": ["This field is read-only."],
            "colour": ["Unknown field."],
            "integration_id": ["Integration not found."],
        },
    }


def test_a_test_message_to_an_unknown_channel_is_404_before_its_body(api, setup):
    """The channel is looked up before ``to`` is read; unknown fields are refused by name."""
    assert api.post("/api/channels/nope/test", json={}).status_code == 404
    channel = factories.make_channel(setup, "email")
    refused = api.post(f"/api/channels/{channel.id}/test", json={"colour": 1})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"] == {"colour": ["Unknown field."]}
    missing = api.post(f"/api/channels/{channel.id}/test", json={})
    assert missing.get_json()["error"]["fields"] == {"to": ["This field is required."]}
