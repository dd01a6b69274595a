"""The phone number rule through the API: channels' ``send_from_phone_number`` and
``POST /api/phone_numbers`` accept and refuse the same numbers (tests/phone_number_table.py)."""

from __future__ import annotations

from tests import factories
from tests.phone_number_table import accepted, refused_e164


@accepted()
def test_a_channel_sends_from_a_possible_number(api, setup, number):
    """An SMS channel on a number of the table is created and keeps the number as sent."""
    added = factories.make_phone_number(setup.tenant, setup.sms_integration, phone_number=number)
    response = api.post(
        "/api/channels",
        json=setup.sms_payload(
            send_from_phone_number=number, phone_number_id=added.phone_number.id
        ),
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["send_from_phone_number"] == number


@refused_e164()
def test_a_channel_refuses_the_number(api, setup, number, message):
    """Each refusal class answers 422 with its message on send_from_phone_number."""
    response = api.post("/api/channels", json=setup.sms_payload(send_from_phone_number=number))
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"send_from_phone_number": [message]}


@accepted()
def test_a_possible_number_is_added(api, setup, number):
    """POST /api/phone_numbers takes the number in E.164 and creates its SMS channel."""
    response = api.post(
        "/api/phone_numbers",
        json={
            "phone_number": number,
            "integration_id": setup.sms_integration.id,
            "create_channel": True,
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["phone_number"] == number and body["channel_id"]
    channel = api.get(f"/api/channels/{body['channel_id']}").get_json()
    assert channel["send_from_phone_number"] == number


@refused_e164()
def test_adding_the_number_is_refused(api, setup, number, message):
    """Without a country the number is E.164: each refusal class answers 422 with its message."""
    response = api.post(
        "/api/phone_numbers",
        json={"phone_number": number, "integration_id": setup.sms_integration.id},
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"phone_number": [message]}
