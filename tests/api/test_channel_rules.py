"""DESIGN §3 rule by rule, through POST and PATCH /api/channels: each broken rule is a 422 that
names exactly the failing field(s), and one body with many problems lists them all at once."""

from __future__ import annotations

from functools import cached_property

import pytest

from core.extensions import db
from core.models import Channel, PhoneNumber
from core.services.channels import update_channel
from tests import factories
from tests.api.assertions import assert_fields, count_rows


class Scene:
    """The tenant under test plus resources a case may need, built only when a case asks."""

    def __init__(self, ready, other_tenant):
        self.ready = ready
        self._other_tenant = other_tenant

    @cached_property
    def other(self):
        return factories.make_ready_tenant(self._other_tenant)

    def disabled_integration(self, channel_type):
        integration = factories.make_integration(self.ready.tenant, channel_type)
        return factories.set_integration_status(self.ready.tenant, integration, "disabled")

    def released_number(self):
        number = factories.make_phone_number(
            self.ready.tenant, self.ready.sms_integration
        ).phone_number
        return factories.release_number(self.ready.tenant, number)

    def voice_number(self):
        return factories.make_phone_number(
            self.ready.tenant, self.ready.sms_integration, capabilities=["voice"]
        ).phone_number

    def channel(self, channel_type="email", **overrides):
        return factories.make_channel(self.ready, channel_type, **overrides)


@pytest.fixture
def scene(setup, other_tenant):
    return Scene(setup, other_tenant)


def put(**values):
    """A case step that sets fields (a callable value is called with the scene)."""

    def step(scene, payload):
        for key, value in values.items():
            payload[key] = value(scene) if callable(value) else value

    return step


def drop(*keys):
    """A case step that removes fields."""

    def step(scene, payload):
        for key in keys:
            payload.pop(key, None)

    return step


def use_number(number_of):
    """A case step that sends a number's id and its own E.164 value."""

    def step(scene, payload):
        number = number_of(scene)
        payload["phone_number_id"] = number.id
        payload["send_from_phone_number"] = number.phone_number

    return step


def name_taken_by(existing_name, sent_name):
    """A case step: a channel named ``existing_name`` exists; the body sends ``sent_name``."""

    def step(scene, payload):
        scene.channel("email", name=existing_name)
        payload["name"] = sent_name

    return step


FIFTY_ONE_KEYS = {f"k{i}": i for i in range(51)}

# (case id, channel type of the base body, step, the fields the 422 must name)
CREATE_CASES = [
    # required fields, per type
    ("name missing", "email", drop("name"), {"name"}),
    ("channel_type missing", "email", drop("channel_type"), {"channel_type"}),
    ("integration_id missing", "email", drop("integration_id"), {"integration_id"}),
    ("send_from_email missing", "email", drop("send_from_email"), {"send_from_email"}),
    ("email_domain_id missing", "email", drop("email_domain_id"), {"email_domain_id"}),
    (
        "send_from_phone_number missing",
        "sms",
        drop("send_from_phone_number"),
        {"send_from_phone_number"},
    ),
    ("phone_number_id missing", "sms", drop("phone_number_id"), {"phone_number_id"}),
    (
        "sms: both sms fields missing",
        "sms",
        drop("send_from_phone_number", "phone_number_id"),
        {"send_from_phone_number", "phone_number_id"},
    ),
    ("name null", "email", put(name=None), {"name"}),
    ("integration_id null", "sms", put(integration_id=None), {"integration_id"}),
    # channel_type
    ("channel_type fax", "email", put(channel_type="fax"), {"channel_type"}),
    ("channel_type upper-case", "email", put(channel_type="EMAIL"), {"channel_type"}),
    # name
    ("name blank", "email", put(name="   "), {"name"}),
    ("name 101 characters", "email", put(name="x" * 101), {"name"}),
    ("name not a string", "email", put(name=42), {"name"}),
    ("name with SOH", "email", put(name="Bad\x01name"), {"name"}),
    ("name with newline inside", "email", put(name="Bad\nname"), {"name"}),
    ("name with tab inside", "sms", put(name="Bad\tname"), {"name"}),
    ("name with C1 control", "email", put(name="Bad\x85name"), {"name"}),
    ("name taken, other case", "email", name_taken_by("Support", "SUPPORT"), {"name"}),
    ("name taken, padded", "sms", name_taken_by("Support", "  support "), {"name"}),
    ("name taken, casefold", "email", name_taken_by("Straße", "STRASSE"), {"name"}),
    # integration_id
    (
        "integration unknown",
        "email",
        put(integration_id="123e4567-e89b-42d3-a456-426614174000"),
        {"integration_id"},
    ),
    ("integration malformed", "email", put(integration_id="not-an-id" * 10), {"integration_id"}),
    ("integration not a string", "email", put(integration_id=7), {"integration_id"}),
    (
        "integration of another tenant",
        "email",
        put(integration_id=lambda s: s.other.email_integration.id),
        {"integration_id"},
    ),
    (
        "integration of the other type (email)",
        "email",
        put(integration_id=lambda s: s.ready.sms_integration.id),
        {"integration_id"},
    ),
    (
        "integration of the other type (sms)",
        "sms",
        put(integration_id=lambda s: s.ready.email_integration.id),
        {"integration_id"},
    ),
    (
        "integration disabled",
        "email",
        put(integration_id=lambda s: s.disabled_integration("email").id),
        {"integration_id"},
    ),
    (
        "sms integration disabled",
        "sms",
        put(integration_id=lambda s: s.disabled_integration("sms").id),
        {"integration_id"},
    ),
    # send_from_email and its domain
    ("email without @", "email", put(send_from_email="support"), {"send_from_email"}),
    ("email without local part", "email", put(send_from_email="@example.com"), {"send_from_email"}),
    (
        "email with a space",
        "email",
        put(send_from_email="sup port@example.com"),
        {"send_from_email"},
    ),
    (
        "email not a string",
        "email",
        put(send_from_email=["support@example.com"]),
        {"send_from_email"},
    ),
    (
        "email on another domain",
        "email",
        put(send_from_email="support@example.org"),
        {"send_from_email"},
    ),
    (
        "email on a subdomain",
        "email",
        put(send_from_email="support@mail.example.com"),
        {"send_from_email"},
    ),
    (
        "domain unknown",
        "email",
        put(email_domain_id="123e4567-e89b-42d3-a456-426614174000"),
        {"email_domain_id"},
    ),
    (
        "domain of another tenant",
        "email",
        put(email_domain_id=lambda s: s.other.domain.id),
        {"email_domain_id"},
    ),
    # send_from_phone_number and its number
    (
        "number without +",
        "sms",
        put(send_from_phone_number="14155550100"),
        {"send_from_phone_number"},
    ),
    (
        "number with spaces",
        "sms",
        put(send_from_phone_number="+1 415 555 0100"),
        {"send_from_phone_number"},
    ),
    ("number too short", "sms", put(send_from_phone_number="+1415"), {"send_from_phone_number"}),
    (
        "number not valid",
        "sms",
        put(send_from_phone_number="+19999999999"),
        {"send_from_phone_number"},
    ),
    (
        "number not a string",
        "sms",
        put(send_from_phone_number=14155550100),
        {"send_from_phone_number"},
    ),
    (
        "number differs from phone_number_id",
        "sms",
        put(send_from_phone_number="+14155559999"),
        {"send_from_phone_number"},
    ),
    (
        "phone number unknown",
        "sms",
        put(phone_number_id="123e4567-e89b-42d3-a456-426614174000"),
        {"phone_number_id"},
    ),
    ("phone number released", "sms", use_number(Scene.released_number), {"phone_number_id"}),
    ("phone number not SMS-capable", "sms", use_number(Scene.voice_number), {"phone_number_id"}),
    (
        "phone number of another tenant",
        "sms",
        use_number(lambda s: s.other.number),
        {"phone_number_id"},
    ),
    # the other type's fields
    (
        "email with send_from_phone_number",
        "email",
        put(send_from_phone_number="+14155550100"),
        {"send_from_phone_number"},
    ),
    (
        "email with phone_number_id",
        "email",
        put(phone_number_id=lambda s: s.ready.number.id),
        {"phone_number_id"},
    ),
    (
        "sms with send_from_email",
        "sms",
        put(send_from_email="support@example.com"),
        {"send_from_email"},
    ),
    (
        "sms with email_domain_id",
        "sms",
        put(email_domain_id=lambda s: s.ready.domain.id),
        {"email_domain_id"},
    ),
    # read-only and unknown fields
    ("read-only id", "email", put(id="123e4567-e89b-42d3-a456-426614174000"), {"id"}),
    ("read-only tenant_id", "email", put(tenant_id=lambda s: s.ready.tenant.id), {"tenant_id"}),
    ("read-only status", "sms", put(status="available"), {"status"}),
    ("read-only created_at", "email", put(created_at="2024-10-03T12:00:00Z"), {"created_at"}),
    ("read-only updated_at", "email", put(updated_at="2024-10-03T12:00:00Z"), {"updated_at"}),
    ("unknown field", "email", put(colour="blue"), {"colour"}),
    ("two unknown fields", "sms", put(sendFrom="x", priority=1), {"sendFrom", "priority"}),
    # metadata
    ("metadata with 51 keys", "email", put(metadata=FIFTY_ONE_KEYS), {"metadata"}),
    ("metadata key of 41 characters", "email", put(metadata={"k" * 41: "v"}), {"metadata"}),
    ("metadata empty key", "email", put(metadata={"": "v"}), {"metadata"}),
    ("metadata value of 501 characters", "sms", put(metadata={"note": "v" * 501}), {"metadata"}),
    (
        "metadata nested object value",
        "email",
        put(metadata={"team": {"name": "ops"}}),
        {"metadata"},
    ),
    ("metadata list value", "email", put(metadata={"tags": ["a", "b"]}), {"metadata"}),
    ("metadata not an object", "email", put(metadata=["team", "ops"]), {"metadata"}),
    ("metadata a string", "sms", put(metadata="team=ops"), {"metadata"}),
    # is_default
    ("is_default a string", "email", put(is_default="true"), {"is_default"}),
    ("is_default a number", "sms", put(is_default=1), {"is_default"}),
    ("is_default null", "email", put(is_default=None), {"is_default"}),
]


def _payload(scene, channel_type):
    if channel_type == "email":
        return scene.ready.email_payload()
    return scene.ready.sms_payload()


@pytest.mark.parametrize(
    "channel_type, step, expected",
    [case[1:] for case in CREATE_CASES],
    ids=[case[0] for case in CREATE_CASES],
)
def test_create_rejects_each_broken_rule(api, scene, channel_type, step, expected):
    """POST /api/channels: 422 validation_error naming exactly the failing field(s); no row."""
    payload = _payload(scene, channel_type)
    step(scene, payload)
    before = count_rows(Channel)
    response = api.post("/api/channels", json=payload)
    assert_fields(response, expected)
    assert count_rows(Channel) == before


@pytest.mark.parametrize(
    "channel_type, step",
    [
        ("email", put(name="x" * 100)),
        ("email", put(name="  Padded name  ")),
        ("email", put(send_from_email="Support@EXAMPLE.COM")),
        ("email", put(metadata={f"k{i}": "v" * 500 for i in range(50)})),
        ("email", put(metadata={"k" * 40: None, "n": 1.5, "b": False, "i": -3})),
        ("sms", put(metadata=None)),
        ("sms", put(is_default=False)),
    ],
    ids=[
        "name of 100",
        "name trimmed",
        "address case",
        "metadata at its limits",
        "metadata value kinds",
        "metadata null",
        "is_default false",
    ],
)
def test_create_accepts_values_at_the_limits(api, scene, channel_type, step):
    """Limits are inclusive: 100-char names, 50 keys, 40-char keys, 500-char values."""
    payload = _payload(scene, channel_type)
    step(scene, payload)
    response = api.post("/api/channels", json=payload)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["name"] == payload["name"].strip()
    assert body["metadata"] == (payload.get("metadata") or {})


def test_create_lists_every_failing_field_at_once(api, scene):
    """One body breaking many rules: every failing field in one 422."""
    payload = {
        "name": "",
        "channel_type": "email",
        "integration_id": scene.other.email_integration.id,
        "send_from_email": "not-an-address",
        "send_from_phone_number": "+14155550100",
        "id": "123e4567-e89b-42d3-a456-426614174000",
        "status": "available",
        "colour": "blue",
        "metadata": FIFTY_ONE_KEYS,
        "is_default": "yes",
    }
    response = api.post("/api/channels", json=payload)
    fields = assert_fields(
        response,
        {
            "name",
            "integration_id",
            "send_from_email",
            "email_domain_id",
            "send_from_phone_number",
            "id",
            "status",
            "colour",
            "metadata",
            "is_default",
        },
    )
    assert fields["email_domain_id"] == ["This field is required."]
    assert fields["id"] == ["This field is read-only."]
    assert fields["colour"] == ["Unknown field."]
    assert response.get_json()["error"]["message"] == "The channel could not be created."


def test_create_stores_the_trimmed_name_and_normalized_values(api, scene):
    """The name is stored trimmed; the address's domain is lower-cased."""
    response = api.post(
        "/api/channels",
        json=scene.ready.email_payload(name="  Billing  ", send_from_email="Billing@Example.COM"),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "Billing"
    assert body["send_from_email"] == "Billing@example.com"
    again = api.post("/api/channels", json=scene.ready.email_payload(name="billing"))
    assert_fields(again, {"name"})


# --- PATCH ----------------------------------------------------------------------------------------


def disabled_channel(scene, channel, payload):
    """The channel was disabled by an admin before the request."""
    update_channel(scene.ready.tenant.id, channel.id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()


def own_integration_disabled(scene, channel, payload):
    """The channel's own integration is disabled (the channel with it)."""
    integration = factories.make_integration(scene.ready.tenant, channel.channel_type)
    update_channel(
        scene.ready.tenant.id, channel.id, {"integration_id": integration.id}, factories.ACTOR
    )
    db.session.commit()
    factories.set_integration_status(scene.ready.tenant, integration, "disabled")


def patch(**values):
    """A PATCH case step that sends fields (a callable value is called with the scene)."""

    def step(scene, channel, payload):
        for key, value in values.items():
            payload[key] = value(scene) if callable(value) else value

    return step


def then(*steps):
    """Several PATCH case steps in order."""

    def step(scene, channel, payload):
        for each in steps:
            each(scene, channel, payload)

    return step


def patch_number(number_of):
    def step(scene, channel, payload):
        number = number_of(scene)
        payload["phone_number_id"] = number.id
        payload["send_from_phone_number"] = number.phone_number

    return step


def rename_to_sibling(sent_name):
    def step(scene, channel, payload):
        scene.channel(channel.channel_type, name="Sibling")
        payload["name"] = sent_name

    return step


def second_domain_without_address(scene, channel, payload):
    domain = factories.make_domain(scene.ready.tenant, "example.net")
    payload["email_domain_id"] = domain.id


UPDATE_CASES = [
    ("channel_type change email→sms", "email", patch(channel_type="sms"), {"channel_type"}),
    ("channel_type change sms→email", "sms", patch(channel_type="email"), {"channel_type"}),
    ("channel_type nonsense", "sms", patch(channel_type="fax"), {"channel_type"}),
    ("name blank", "email", patch(name=" "), {"name"}),
    ("name null", "email", patch(name=None), {"name"}),
    ("name 101 characters", "sms", patch(name="n" * 101), {"name"}),
    ("name with control character", "email", patch(name="a\x1bb"), {"name"}),
    ("name of a sibling, other case", "email", rename_to_sibling("SIBLING"), {"name"}),
    ("integration null", "email", patch(integration_id=None), {"integration_id"}),
    (
        "integration unknown",
        "email",
        patch(integration_id="123e4567-e89b-42d3-a456-426614174000"),
        {"integration_id"},
    ),
    (
        "integration of another tenant",
        "sms",
        patch(integration_id=lambda s: s.other.sms_integration.id),
        {"integration_id"},
    ),
    (
        "integration of the other type",
        "email",
        patch(integration_id=lambda s: s.ready.sms_integration.id),
        {"integration_id"},
    ),
    (
        "integration disabled",
        "sms",
        patch(integration_id=lambda s: s.disabled_integration("sms").id),
        {"integration_id"},
    ),
    ("address invalid", "email", patch(send_from_email="nope"), {"send_from_email"}),
    ("address null", "email", patch(send_from_email=None), {"send_from_email"}),
    (
        "address on another domain",
        "email",
        patch(send_from_email="support@example.org"),
        {"send_from_email"},
    ),
    (
        "domain changed, address left behind",
        "email",
        second_domain_without_address,
        {"send_from_email"},
    ),
    (
        "domain of another tenant",
        "email",
        patch(email_domain_id=lambda s: s.other.domain.id),
        {"email_domain_id"},
    ),
    (
        "number not E.164",
        "sms",
        patch(send_from_phone_number="(415) 555-0100"),
        {"send_from_phone_number"},
    ),
    (
        "number differs from its phone number",
        "sms",
        patch(send_from_phone_number="+14155559999"),
        {"send_from_phone_number"},
    ),
    ("phone number released", "sms", patch_number(Scene.released_number), {"phone_number_id"}),
    ("phone number not SMS-capable", "sms", patch_number(Scene.voice_number), {"phone_number_id"}),
    (
        "phone number of another tenant",
        "sms",
        patch_number(lambda s: s.other.number),
        {"phone_number_id"},
    ),
    (
        "email channel given sms fields",
        "email",
        patch(phone_number_id=lambda s: s.ready.number.id),
        {"phone_number_id"},
    ),
    (
        "sms channel given email fields",
        "sms",
        patch(send_from_email="a@example.com"),
        {"send_from_email"},
    ),
    ("status pending_verification", "email", patch(status="pending_verification"), {"status"}),
    ("status unknown", "sms", patch(status="paused"), {"status"}),
    ("status a boolean", "email", patch(status=False), {"status"}),
    (
        "disabled and default at once",
        "email",
        patch(status="disabled", is_default=True),
        {"is_default"},
    ),
    (
        "a disabled channel cannot be default",
        "sms",
        then(disabled_channel, patch(is_default=True)),
        {"is_default"},
    ),
    (
        "enable while its integration is disabled",
        "email",
        then(own_integration_disabled, patch(status="available")),
        {"status"},
    ),
    ("is_default a string", "email", patch(is_default="false"), {"is_default"}),
    ("read-only id", "email", patch(id="123e4567-e89b-42d3-a456-426614174000"), {"id"}),
    ("read-only tenant_id", "sms", patch(tenant_id=lambda s: s.other.tenant.id), {"tenant_id"}),
    ("read-only created_at", "email", patch(created_at="2024-10-03T12:00:00Z"), {"created_at"}),
    ("read-only updated_at", "email", patch(updated_at="2024-10-03T12:00:00Z"), {"updated_at"}),
    ("unknown field", "sms", patch(colour="red"), {"colour"}),
    ("metadata with 51 keys", "email", patch(metadata=FIFTY_ONE_KEYS), {"metadata"}),
    ("metadata key of 41 characters", "sms", patch(metadata={"k" * 41: 1}), {"metadata"}),
    ("metadata value of 501 characters", "email", patch(metadata={"k": "v" * 501}), {"metadata"}),
    ("metadata nested object", "email", patch(metadata={"k": {}}), {"metadata"}),
]


@pytest.mark.parametrize(
    "channel_type, step, expected",
    [case[1:] for case in UPDATE_CASES],
    ids=[case[0] for case in UPDATE_CASES],
)
def test_update_rejects_each_broken_rule(api, scene, channel_type, step, expected):
    """PATCH /api/channels/{id}: 422 naming exactly the failing field(s); nothing changes."""
    channel = scene.channel(channel_type, name="Original", metadata={"team": "ops"})
    payload = {}
    step(scene, channel, payload)
    before = api.get(f"/api/channels/{channel.id}").get_json()
    response = api.patch(f"/api/channels/{channel.id}", json=payload)
    assert_fields(response, expected)
    assert response.get_json()["error"]["message"] == "The channel could not be updated."
    assert api.get(f"/api/channels/{channel.id}").get_json() == before


def test_update_lists_every_failing_field_at_once(api, scene):
    """One PATCH breaking several rules: all the failing fields in one 422."""
    channel = scene.channel("sms")
    response = api.patch(
        f"/api/channels/{channel.id}",
        json={
            "channel_type": "email",
            "name": "",
            "integration_id": scene.other.sms_integration.id,
            "status": "paused",
            "metadata": {"k": [1]},
            "created_at": "2024-10-03T12:00:00Z",
            "extra": True,
        },
    )
    assert_fields(
        response,
        {"channel_type", "name", "integration_id", "status", "metadata", "created_at", "extra"},
    )


def test_update_changes_only_the_fields_sent(api, scene):
    """A partial update: the sent fields change, every other field stays as it was."""
    channel = scene.channel("email", name="Support", metadata={"team": "ops"})
    before = api.get(f"/api/channels/{channel.id}").get_json()
    response = api.patch(
        f"/api/channels/{channel.id}", json={"name": " Help desk ", "metadata": {"tier": 1}}
    )
    assert response.status_code == 200
    after = response.get_json()
    assert after["name"] == "Help desk" and after["metadata"] == {"tier": 1}
    unchanged = set(before) - {"name", "metadata", "updated_at"}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert api.get(f"/api/channels/{channel.id}").get_json() == after


def test_update_may_keep_its_own_name_in_another_case(api, scene):
    """Uniqueness ignores the channel itself: renaming "Support" to "SUPPORT" is allowed."""
    channel = scene.channel("email", name="Support")
    response = api.patch(
        f"/api/channels/{channel.id}", json={"name": "SUPPORT", "channel_type": "email"}
    )
    assert response.status_code == 200
    assert response.get_json()["name"] == "SUPPORT"


def test_update_moves_an_email_channel_to_another_domain(api, scene):
    """Changing domain and address together is valid when they match."""
    channel = scene.channel("email")
    domain = factories.make_domain(scene.ready.tenant, "example.net")
    response = api.patch(
        f"/api/channels/{channel.id}",
        json={"email_domain_id": domain.id, "send_from_email": "hello@example.net"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["email_domain_id"] == domain.id and body["send_from_email"] == "hello@example.net"


def test_update_moves_an_sms_channel_to_another_number(api, scene):
    """Changing number and phone_number_id together is valid when they match."""
    channel = scene.channel("sms")
    number = factories.make_phone_number(
        scene.ready.tenant, scene.ready.sms_integration
    ).phone_number
    response = api.patch(
        f"/api/channels/{channel.id}",
        json={"phone_number_id": number.id, "send_from_phone_number": number.phone_number},
    )
    assert response.status_code == 200
    assert response.get_json()["send_from_phone_number"] == number.phone_number
    assert count_rows(PhoneNumber) == 2


def test_status_can_be_disabled_and_made_available_again(api, scene):
    """PATCH status: available → disabled → available."""
    channel = scene.channel("sms", is_default=False)
    response = api.patch(f"/api/channels/{channel.id}", json={"status": "disabled"})
    assert response.status_code == 200 and response.get_json()["status"] == "disabled"
    response = api.patch(f"/api/channels/{channel.id}", json={"status": "available"})
    assert response.status_code == 200 and response.get_json()["status"] == "available"


def test_enabling_a_channel_on_a_pending_domain_makes_it_pending(api, scene):
    """status "available" switches the channel on; its pending domain still decides its status."""
    domain = factories.make_domain(scene.ready.tenant, "example.org", verified=False)
    channel = scene.channel("email", email_domain_id=domain.id, send_from_email="a@example.org")
    assert channel.status == "pending_verification"
    api.patch(f"/api/channels/{channel.id}", json={"status": "disabled"})
    response = api.patch(f"/api/channels/{channel.id}", json={"status": "available"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending_verification"
