"""Idempotency-Key on POST: the same key and body replay the first response and create nothing
more; another body is 409 idempotency_conflict; 4xx responses replay too; keys are per tenant."""

from __future__ import annotations

import pytest

from core.models import AuditEvent, Channel, PhoneNumber
from tests.api.assertions import assert_error, count_rows


def key(value):
    return {"Idempotency-Key": value}


def test_same_key_and_body_replays_the_first_response(api, setup):
    """The second call: same status and body, Idempotent-Replayed: true, one row."""
    payload = setup.email_payload(name="Receipts")
    first = api.post("/api/channels", json=payload, headers=key("create-receipts"))
    events = count_rows(AuditEvent)
    second = api.post("/api/channels", json=payload, headers=key("create-receipts"))
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Location"] == first.headers["Location"]
    assert count_rows(Channel) == 1
    assert count_rows(AuditEvent) == events


def test_the_same_json_in_another_key_order_is_the_same_body(api, setup):
    """Bodies compare as JSON: whitespace and key order do not matter."""
    payload = setup.sms_payload(name="Alerts")
    api.post("/api/channels", json=payload, headers=key("k1"))
    reordered = dict(reversed(list(payload.items())))
    again = api.post("/api/channels", json=reordered, headers=key("k1"))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_another_body_is_409(api, setup):
    """Another body under a used key: 409 idempotency_conflict, nothing created."""
    api.post("/api/channels", json=setup.email_payload(name="One"), headers=key("k2"))
    response = api.post("/api/channels", json=setup.email_payload(name="Two"), headers=key("k2"))
    assert_error(response, 409, "idempotency_conflict")
    assert count_rows(Channel) == 1


def test_same_key_on_another_path_is_409(api, setup):
    """A key belongs to one request: reused on another endpoint it conflicts."""
    body = {"phone_number": "+14155550180", "integration_id": setup.sms_integration.id}
    api.post("/api/phone_numbers", json=body, headers=key("k3"))
    response = api.post("/api/channels?dry_run=true", json=body, headers=key("k3"))
    assert_error(response, 409, "idempotency_conflict")


def test_a_422_is_replayed_too(api, setup):
    """A rejected request is stored: the retry gets the same 422, even once it would pass."""
    payload = setup.email_payload(name="Taken")
    first = api.post("/api/channels", json=setup.email_payload(name="Taken"))
    assert first.status_code == 201
    rejected = api.post("/api/channels", json=payload, headers=key("k4"))
    assert rejected.status_code == 422
    api.delete(f"/api/channels/{first.get_json()['id']}")
    replay = api.post("/api/channels", json=payload, headers=key("k4"))
    assert replay.status_code == 422
    assert replay.get_json() == rejected.get_json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert count_rows(Channel) == 0


def test_keys_are_per_tenant(api, other_api, setup, other_setup):
    """Another tenant using the same key gets its own first response and its own row."""
    mine = api.post(
        "/api/channels", json=setup.email_payload(name="Shared"), headers=key("same-key")
    )
    theirs = other_api.post(
        "/api/channels", json=other_setup.email_payload(name="Shared"), headers=key("same-key")
    )
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert theirs.get_json()["tenant_id"] == other_setup.tenant.id
    assert count_rows(Channel) == 2


def test_phone_number_creation_is_idempotent_with_its_channel(api, setup):
    """Replaying POST /api/phone_numbers: the same channel_id, no second channel."""
    body = {"phone_number": "+14155550181", "integration_id": setup.sms_integration.id}
    first = api.post("/api/phone_numbers", json=body, headers=key("number-1"))
    second = api.post("/api/phone_numbers", json=body, headers=key("number-1"))
    assert first.get_json() == second.get_json()
    assert count_rows(PhoneNumber) == 2  # the setup's number and this one
    assert count_rows(Channel) == 1


def test_without_a_key_every_post_creates(api, setup):
    """No key, no deduplication: the second identical POST is judged on its own (a name clash)."""
    payload = setup.email_payload(name="Twice")
    assert api.post("/api/channels", json=payload).status_code == 201
    assert api.post("/api/channels", json=payload).status_code == 422


@pytest.mark.parametrize(
    "value",
    ["", "x" * 256, "tab\there", "with space", "caf\u00e9"],
    ids=["empty", "too long", "control", "space", "non-ASCII"],
)
def test_a_malformed_key_is_400(api, setup, value):
    """Idempotency-Key must be 1–255 visible ASCII characters, as the OpenAPI pattern says."""
    response = api.post("/api/channels", json=setup.email_payload(), headers=key(value))
    assert_error(response, 400, "bad_request")
    assert count_rows(Channel) == 0
