"""DESIGN §3 defaults and statuses through the API: one default per type, never silently none,
handover named in ``Default-Handover`` and the audit log; statuses follow domains, integrations
and numbers; phone numbers create their SMS channel; resources in use cannot be deleted."""

from __future__ import annotations

import pytest

from core.models import Channel, PhoneNumber
from tests import factories
from tests.api.assertions import assert_error, count_rows


def channel_of(api, channel_id) -> dict:
    return api.get(f"/api/channels/{channel_id}").get_json()


def defaults(api, channel_type) -> list[str]:
    """The ids of the tenant's default channels of a type, as the list endpoint shows them."""
    body = api.get(f"/api/channels?channel_type={channel_type}&is_default=true").get_json()
    return [c["id"] for c in body["data"]]


def audit(api, action) -> list[dict]:
    return api.get(f"/api/audit_events?action={action}").get_json()["data"]


# --- the default flag -----------------------------------------------------------------------------


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_first_channel_of_a_type_becomes_the_default(api, setup, channel_type):
    """is_default omitted and no default of that type yet: the new channel is the default."""
    payload = setup.email_payload() if channel_type == "email" else setup.sms_payload()
    first = api.post("/api/channels", json=payload).get_json()
    second_payload = setup.email_payload() if channel_type == "email" else setup.sms_payload()
    second = api.post("/api/channels", json=second_payload).get_json()
    assert first["is_default"] is True
    assert second["is_default"] is False
    assert defaults(api, channel_type) == [first["id"]]


def test_defaults_are_per_channel_type(api, setup):
    """The first email and the first SMS channel are both defaults, one of each type."""
    email = api.post("/api/channels", json=setup.email_payload()).get_json()
    sms = api.post("/api/channels", json=setup.sms_payload()).get_json()
    assert email["is_default"] and sms["is_default"]


def test_explicit_false_is_respected_even_without_a_default(api, setup):
    """is_default: false on the first channel: it is not the default; no default exists."""
    body = api.post("/api/channels", json=setup.email_payload(is_default=False)).get_json()
    assert body["is_default"] is False
    assert defaults(api, "email") == []


def test_making_another_channel_default_clears_the_previous_one(api, setup):
    """POST with is_default: true takes the default over; the previous default is cleared."""
    first = api.post("/api/channels", json=setup.email_payload()).get_json()
    second = api.post("/api/channels", json=setup.email_payload(is_default=True)).get_json()
    assert second["is_default"] is True
    assert channel_of(api, first["id"])["is_default"] is False
    assert defaults(api, "email") == [second["id"]]
    cleared = audit(api, "channel.default_cleared")
    assert [e["resource_id"] for e in cleared] == [first["id"]]


def test_patch_is_default_moves_the_default(api, setup):
    """PATCH is_default: true on another channel: exactly one default, the new one; both audited."""
    first = factories.make_channel(setup, "sms")
    second = factories.make_channel(setup, "sms")
    response = api.patch(f"/api/channels/{second.id}", json={"is_default": True})
    assert response.status_code == 200 and response.get_json()["is_default"] is True
    assert "Default-Handover" not in response.headers
    assert defaults(api, "sms") == [second.id]
    assert [e["resource_id"] for e in audit(api, "channel.default_cleared")] == [first.id]
    assert [e["resource_id"] for e in audit(api, "channel.default_set")] == [second.id]


def test_patch_is_default_true_on_the_default_changes_nothing(api, setup):
    """Making the default the default again: 200, still the one default, no audit event."""
    channel = factories.make_channel(setup, "email")
    events = len(api.get("/api/audit_events").get_json()["data"])
    response = api.patch(f"/api/channels/{channel.id}", json={"is_default": True})
    assert response.status_code == 200
    assert defaults(api, "email") == [channel.id]
    assert len(api.get("/api/audit_events").get_json()["data"]) == events


def test_patch_is_default_false_leaves_no_default(api, setup):
    """An explicit is_default: false on the default is respected (no silent replacement)."""
    channel = factories.make_channel(setup, "email")
    factories.make_channel(setup, "email")
    response = api.patch(f"/api/channels/{channel.id}", json={"is_default": False})
    assert response.status_code == 200 and response.get_json()["is_default"] is False
    assert "Default-Handover" not in response.headers
    assert defaults(api, "email") == []


# --- handover -------------------------------------------------------------------------------------


def _three_email_channels(setup):
    """The default (created first), then the oldest candidate, then a newer one."""
    default = factories.make_channel(setup, "email", name="Default")
    oldest = factories.make_channel(setup, "email", name="Oldest")
    newer = factories.make_channel(setup, "email", name="Newer")
    return default, oldest, newer


def test_deleting_the_default_hands_over_to_the_oldest_available(api, setup):
    """DELETE the default: 204, Default-Handover names the oldest other available channel."""
    default, oldest, newer = _three_email_channels(setup)
    response = api.delete(f"/api/channels/{default.id}")
    assert response.status_code == 204
    assert response.headers["Default-Handover"] == oldest.id
    assert defaults(api, "email") == [oldest.id]
    handover = audit(api, "channel.default_handover")
    assert [e["resource_id"] for e in handover] == [oldest.id]
    assert handover[0]["changes"]["replaces"] == default.id
    assert [e["resource_id"] for e in audit(api, "channel.delete")] == [default.id]
    assert api.get(f"/api/channels/{default.id}").status_code == 404


def test_handover_skips_channels_that_are_not_available(api, setup):
    """Oldest disabled, next pending: the next available one takes over."""
    default = factories.make_channel(setup, "email", name="Default")
    disabled = factories.make_channel(setup, "email", name="Disabled")
    api.patch(f"/api/channels/{disabled.id}", json={"status": "disabled"})
    pending_domain = factories.make_domain(setup.tenant, "example.org", verified=False)
    factories.make_channel(
        setup,
        "email",
        name="Pending",
        email_domain_id=pending_domain.id,
        send_from_email="a@example.org",
    )
    available = factories.make_channel(setup, "email", name="Available")
    response = api.delete(f"/api/channels/{default.id}")
    assert response.headers["Default-Handover"] == available.id
    assert defaults(api, "email") == [available.id]


def test_deleting_the_only_channel_says_none(api, setup):
    """Nothing can take over: Default-Handover: none, and no default remains."""
    channel = factories.make_channel(setup, "sms")
    response = api.delete(f"/api/channels/{channel.id}")
    assert response.status_code == 204
    assert response.headers["Default-Handover"] == "none"
    assert audit(api, "channel.default_handover") == []


def test_deleting_a_channel_that_is_not_default_moves_nothing(api, setup):
    """No handover header when the deleted channel was not the default."""
    default, oldest, _ = _three_email_channels(setup)
    response = api.delete(f"/api/channels/{oldest.id}")
    assert response.status_code == 204
    assert "Default-Handover" not in response.headers
    assert defaults(api, "email") == [default.id]


def test_disabling_the_default_hands_over(api, setup):
    """PATCH status disabled on the default: the response names the successor; audit says so."""
    default, oldest, _ = _three_email_channels(setup)
    response = api.patch(f"/api/channels/{default.id}", json={"status": "disabled"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "disabled" and body["is_default"] is False
    assert response.headers["Default-Handover"] == oldest.id
    assert defaults(api, "email") == [oldest.id]
    assert [e["resource_id"] for e in audit(api, "channel.default_handover")] == [oldest.id]
    disable = audit(api, "channel.disable")
    assert disable[0]["resource_id"] == default.id
    assert disable[0]["changes"]["is_default"] == {"before": True, "after": False}


def test_enabling_a_channel_again_does_not_take_the_default_back(api, setup):
    """Re-enabled, the former default stays a normal channel: the successor keeps the default."""
    default, oldest, _ = _three_email_channels(setup)
    api.patch(f"/api/channels/{default.id}", json={"status": "disabled"})
    body = api.patch(f"/api/channels/{default.id}", json={"status": "available"}).get_json()
    assert body["status"] == "available" and body["is_default"] is False
    assert defaults(api, "email") == [oldest.id]


# --- statuses follow their resources --------------------------------------------------------------


def test_a_channel_on_a_pending_domain_is_pending_verification(api, setup):
    """An email channel on a domain not yet verified: status pending_verification."""
    domain = factories.make_domain(setup.tenant, "example.org", verified=False)
    response = api.post(
        "/api/channels",
        json=setup.email_payload(email_domain_id=domain.id, send_from_email="hi@example.org"),
    )
    assert response.status_code == 201
    assert response.get_json()["status"] == "pending_verification"


def test_disabling_an_integration_disables_its_channels_and_hands_over(api, setup):
    """Integration disabled: its channels are disabled, the default moves elsewhere."""
    default = factories.make_channel(setup, "email", name="On the first integration")
    sibling = factories.make_channel(setup, "email", name="Also on the first")
    second_integration = factories.make_integration(setup.tenant, "email")
    other = factories.make_channel(
        setup, "email", name="Elsewhere", integration_id=second_integration.id
    )

    response = api.patch(
        f"/api/integrations/{setup.email_integration.id}", json={"status": "disabled"}
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "disabled"
    assert response.headers["Default-Handover"] == other.id
    assert channel_of(api, default.id)["status"] == "disabled"
    assert channel_of(api, sibling.id)["status"] == "disabled"
    assert channel_of(api, other.id)["status"] == "available"
    assert defaults(api, "email") == [other.id]
    changed = audit(api, "channel.status_changed")
    assert {e["resource_id"] for e in changed} == {default.id, sibling.id}


def test_enabling_the_integration_again_makes_its_channels_available(api, setup):
    """Integration active again: channels that nobody disabled are available again."""
    channel = factories.make_channel(setup, "sms")
    switched_off = factories.make_channel(setup, "sms")
    api.patch(f"/api/channels/{switched_off.id}", json={"status": "disabled"})
    factories.set_integration_status(setup.tenant, setup.sms_integration, "disabled")
    assert channel_of(api, channel.id)["status"] == "disabled"
    response = api.patch(f"/api/integrations/{setup.sms_integration.id}", json={"status": "active"})
    assert response.status_code == 200
    assert channel_of(api, channel.id)["status"] == "available"
    assert channel_of(api, switched_off.id)["status"] == "disabled"


def test_disabling_the_integration_of_the_only_channel_says_none(api, setup):
    """No successor available: Default-Handover: none."""
    factories.make_channel(setup, "sms")
    response = api.patch(
        f"/api/integrations/{setup.sms_integration.id}", json={"status": "disabled"}
    )
    assert response.headers["Default-Handover"] == "none"
    assert defaults(api, "sms") == []


def test_releasing_a_number_disables_its_channel(api, setup):
    """POST .../release: number released, its channel disabled, default handed over."""
    on_number = factories.make_channel(setup, "sms", name="On the number")
    other_number = factories.make_phone_number(setup.tenant, setup.sms_integration).phone_number
    elsewhere = factories.make_channel(
        setup,
        "sms",
        name="Elsewhere",
        phone_number_id=other_number.id,
        send_from_phone_number=other_number.phone_number,
    )
    response = api.post(f"/api/phone_numbers/{setup.number.id}/release")
    assert response.status_code == 200
    assert response.get_json()["status"] == "released"
    assert response.get_json()["released_at"]
    assert response.headers["Default-Handover"] == elsewhere.id
    assert channel_of(api, on_number.id)["status"] == "disabled"
    assert channel_of(api, on_number.id)["is_default"] is False
    assert [e["resource_id"] for e in audit(api, "phone_number.release")] == [setup.number.id]


def test_releasing_twice_is_harmless(api, setup):
    """Releasing a released number again: 200, still released, nothing else happens."""
    api.post(f"/api/phone_numbers/{setup.number.id}/release")
    response = api.post(f"/api/phone_numbers/{setup.number.id}/release")
    assert response.status_code == 200 and response.get_json()["status"] == "released"
    assert len(audit(api, "phone_number.release")) == 1


# --- phone numbers create their SMS channel -------------------------------------------------------


def test_adding_a_number_creates_its_sms_channel(api, setup):
    """POST /api/phone_numbers: `SMS <number>` channel on the number's integration, the default."""
    response = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+14155550199", "integration_id": setup.sms_integration.id},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["phone_number"] == "+14155550199" and body["capabilities"] == ["sms"]
    channel = channel_of(api, body["channel_id"])
    assert channel["name"] == "SMS +14155550199"
    assert channel["channel_type"] == "sms"
    assert channel["integration_id"] == setup.sms_integration.id
    assert channel["phone_number_id"] == body["id"]
    assert channel["send_from_phone_number"] == "+14155550199"
    assert channel["status"] == "available" and channel["is_default"] is True
    assert api.get(f"/api/phone_numbers/{body['id']}").get_json()["channel_id"] == channel["id"]


def test_an_auto_created_channel_is_not_default_when_one_exists(api, setup):
    """A default SMS channel exists: the new number's channel is not the default."""
    existing = factories.make_channel(setup, "sms")
    body = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+14155550198", "integration_id": setup.sms_integration.id},
    ).get_json()
    assert channel_of(api, body["channel_id"])["is_default"] is False
    assert defaults(api, "sms") == [existing.id]


def test_create_channel_false_creates_no_channel(api, setup):
    """create_channel: false is respected: channel_id null, no channel row."""
    before = count_rows(Channel)
    response = api.post(
        "/api/phone_numbers",
        json={
            "phone_number": "+14155550197",
            "integration_id": setup.sms_integration.id,
            "create_channel": False,
        },
    )
    assert response.status_code == 201
    assert response.get_json()["channel_id"] is None
    assert count_rows(Channel) == before


def test_a_voice_only_number_gets_no_channel(api, setup):
    """A number that cannot send SMS gets no SMS channel."""
    response = api.post(
        "/api/phone_numbers",
        json={
            "phone_number": "+14155550196",
            "integration_id": setup.sms_integration.id,
            "capabilities": ["voice"],
        },
    )
    assert response.status_code == 201
    assert response.get_json()["channel_id"] is None


def test_the_auto_channel_name_avoids_a_taken_name(api, setup):
    """A channel already named `SMS <number>`: the new one gets a suffix instead of failing."""
    factories.make_channel(setup, "sms", name="sms +14155550195")
    body = api.post(
        "/api/phone_numbers",
        json={"phone_number": "+14155550195", "integration_id": setup.sms_integration.id},
    ).get_json()
    assert channel_of(api, body["channel_id"])["name"] == "SMS +14155550195 (2)"


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"phone_number": "not a number"}, {"phone_number"}),
        ({"create_channel": "no"}, {"create_channel"}),
        ({"capabilities": []}, {"capabilities"}),
        ({"capabilities": ["fax"]}, {"capabilities"}),
        ({"channel_id": "x"}, {"channel_id"}),
    ],
    ids=[
        "bad number",
        "create_channel not bool",
        "no capabilities",
        "unknown capability",
        "read-only",
    ],
)
def test_phone_number_input_is_validated(api, setup, body, fields):
    """Bad phone number bodies: 422 naming the field; nothing is created."""
    payload = {"phone_number": "+14155550194", "integration_id": setup.sms_integration.id}
    payload.update(body)
    before = count_rows(PhoneNumber)
    response = api.post("/api/phone_numbers", json=payload)
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == fields
    assert count_rows(PhoneNumber) == before


def test_a_number_in_use_is_refused(api, setup):
    """An active number is unique platform-wide."""
    response = api.post(
        "/api/phone_numbers",
        json={
            "phone_number": setup.number.phone_number,
            "integration_id": setup.sms_integration.id,
        },
    )
    assert set(assert_error(response, 422, "validation_error")["fields"]) == {"phone_number"}


# --- resources in use cannot be deleted -----------------------------------------------------------


def test_deleting_an_integration_in_use_is_refused_naming_the_channels(api, setup):
    """409 conflict whose message lists the channels; the integration remains."""
    factories.make_channel(setup, "email", name="Receipts")
    factories.make_channel(setup, "email", name="Alerts")
    response = api.delete(f"/api/integrations/{setup.email_integration.id}")
    error = assert_error(response, 409, "conflict")
    assert "Receipts" in error["message"] and "Alerts" in error["message"]
    assert api.get(f"/api/integrations/{setup.email_integration.id}").status_code == 200


def test_deleting_an_integration_used_by_a_number_is_refused(api, setup):
    """An SMS integration still carrying a number: 409 naming the number."""
    response = api.delete(f"/api/integrations/{setup.sms_integration.id}")
    error = assert_error(response, 409, "conflict")
    assert setup.number.phone_number in error["message"]


def test_deleting_a_domain_in_use_is_refused_naming_the_channels(api, setup):
    """409 naming the channel; the domain remains."""
    factories.make_channel(setup, "email", name="Receipts")
    response = api.delete(f"/api/email_domains/{setup.domain.id}")
    assert "Receipts" in assert_error(response, 409, "conflict")["message"]
    assert api.get(f"/api/email_domains/{setup.domain.id}").status_code == 200


def test_deleting_a_number_in_use_is_refused_naming_the_channels(api, setup):
    """409 naming the channel (even once released: the channel still points at it)."""
    factories.make_channel(setup, "sms", name="Texts")
    response = api.delete(f"/api/phone_numbers/{setup.number.id}")
    assert "Texts" in assert_error(response, 409, "conflict")["message"]
    api.post(f"/api/phone_numbers/{setup.number.id}/release")
    response = api.delete(f"/api/phone_numbers/{setup.number.id}")
    assert "Texts" in assert_error(response, 409, "conflict")["message"]


def test_unused_resources_can_be_deleted(api, setup):
    """Once no channel uses them: domain, number and integration delete with 204."""
    channel = factories.make_channel(setup, "email")
    assert api.delete(f"/api/channels/{channel.id}").status_code == 204
    assert api.delete(f"/api/email_domains/{setup.domain.id}").status_code == 204
    assert api.delete(f"/api/integrations/{setup.email_integration.id}").status_code == 204
    assert api.delete(f"/api/phone_numbers/{setup.number.id}").status_code == 204
    assert api.delete(f"/api/integrations/{setup.sms_integration.id}").status_code == 204
    for path in (
        f"/api/email_domains/{setup.domain.id}",
        f"/api/integrations/{setup.email_integration.id}",
        f"/api/phone_numbers/{setup.number.id}",
    ):
        assert_error(api.get(path), 404, "not_found")


def test_a_channel_disabled_by_its_integration_cannot_be_made_default(api, setup):
    """Disabled through its integration: is_default true is refused."""
    other_integration = factories.make_integration(setup.tenant, "email")
    default = factories.make_channel(
        setup, "email", name="Default", integration_id=other_integration.id
    )
    channel = factories.make_channel(setup, "email", name="Follows its integration")
    factories.set_integration_status(setup.tenant, setup.email_integration, "disabled")
    response = api.patch(f"/api/channels/{channel.id}", json={"is_default": True})
    assert list(assert_error(response, 422, "validation_error")["fields"]) == ["is_default"]
    assert defaults(api, "email") == [default.id]


def test_a_channel_whose_number_was_released_cannot_be_made_default(api, setup):
    """Status disabled because its number was released: is_default true is refused."""
    channel = factories.make_channel(setup, "sms", is_default=False)
    factories.release_number(setup.tenant, setup.number)
    response = api.patch(f"/api/channels/{channel.id}", json={"is_default": True})
    assert list(assert_error(response, 422, "validation_error")["fields"]) == ["is_default"]


def test_moving_a_disabled_channel_to_an_active_integration_may_make_it_default(api, setup):
    """The same PATCH that gives it an active integration may make it the default."""
    channel = factories.make_channel(setup, "email", is_default=False)
    factories.set_integration_status(setup.tenant, setup.email_integration, "disabled")
    active = factories.make_integration(setup.tenant, "email")
    response = api.patch(
        f"/api/channels/{channel.id}", json={"integration_id": active.id, "is_default": True}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "available" and body["is_default"] is True
