"""The new/edit channel form: type switch, inline address check, errors next to fields, and the
same validation as the API (the parity table)."""

from __future__ import annotations

from functools import cached_property

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.models import AuditEvent, Channel
from core.services import phone_numbers
from tests import factories
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def channel_count() -> int:
    """How many channels exist (any tenant)."""
    return db.session.scalar(select(func.count()).select_from(Channel))


def form_data(payload: dict, token: str) -> dict:
    """The form fields a browser submits for an API-shaped channel ``payload``."""
    data = {"csrf_token": token}
    for key, value in payload.items():
        if key == "metadata":
            data["metadata-key"] = list(value)
            data["metadata-value"] = list(value.values())
        elif key == "is_default":
            if value:
                data["is_default"] = "y"
        else:
            data[key] = value
    return data


def post_form(client, payload: dict, path: str = "/channels/new"):
    """Submit the channel form at ``path`` with ``payload`` (and the page's CSRF token)."""
    return client.post(path, data=form_data(payload, csrf_token(client, path)))


# --- the new form ------------------------------------------------------------------------------


def test_new_form_shows_the_email_fields_first(console, setup):
    """GET /channels/new: the labelled type select, the email fields, no SMS fields."""
    page = soup(console.get("/channels/new"))
    assert page.find("nav", attrs={"aria-label": "Main"}) is not None
    type_select = page.find("select", id="channel_type")
    assert page.find("label", attrs={"for": "channel_type"}).get_text() == "Channel type"
    assert type_select["hx-get"] == "/channels/type-fields"
    assert type_select["hx-target"] == "#type-fields"
    assert page.find(id="type-fields") is not None
    assert page.find("select", id="email_domain_id") is not None
    assert page.find("input", id="send_from_email")["hx-post"] == "/channels/new/check-address"
    assert page.find("select", id="phone_number_id") is None
    # With JavaScript off, "Change type" re-renders the form with the other type's fields.
    assert page.find("noscript").find("button", attrs={"name": "change_type"}) is not None
    # The tenant has no email default yet: the new channel will be it.
    assert page.find("input", id="is_default").has_attr("checked")


def test_every_input_has_a_label(console, setup):
    """Every visible input, select and textarea of the form has a <label for=...>."""
    page = soup(console.get("/channels/new?channel_type=sms"))
    form = page.find("form", id="channel-form")
    labels = {label["for"] for label in page.find_all("label") if label.has_attr("for")}
    for control in form.find_all(["input", "select", "textarea"]):
        if control.get("type") == "hidden":
            continue
        assert control["id"] in labels, control


def test_selects_offer_only_the_tenants_resources_of_the_type(console, setup, tenant, other_tenant):
    """Integrations: active, of the type; numbers: active, SMS-capable; never another tenant's."""
    disabled = factories.make_integration(tenant, "email", name="Old mail", status="disabled")
    voice_only = factories.make_phone_number(
        tenant, setup.sms_integration, capabilities=["voice"]
    ).phone_number
    released = factories.make_phone_number(tenant, setup.sms_integration).phone_number
    phone_numbers.release_phone_number(tenant.id, released.id, factories.ACTOR)
    db.session.commit()
    theirs = factories.make_ready_tenant(other_tenant, domain="other.example")

    email_page = soup(console.get("/channels/new"))
    integration_values = [
        o["value"] for o in email_page.find("select", id="integration_id").find_all("option")
    ]
    assert integration_values == ["", setup.email_integration.id]
    assert (
        disabled.id not in integration_values
        and theirs.email_integration.id not in integration_values
    )
    domain_values = [
        o["value"] for o in email_page.find("select", id="email_domain_id").find_all("option")
    ]
    assert domain_values == ["", setup.domain.id]

    sms = soup(console.get("/channels/type-fields?channel_type=sms", headers=htmx_headers(console)))
    options = sms.find("select", id="phone_number_id").find_all("option")
    assert [o["value"] for o in options] == ["", setup.number.id]
    assert options[1]["data-number"] == setup.number.phone_number
    assert voice_only.id not in str(sms) and theirs.number.id not in str(sms)


def test_type_switch_returns_the_types_fields_as_a_fragment(console, setup):
    """GET /channels/type-fields with HX-Request: only #type-fields with the SMS fields."""
    response = console.get("/channels/type-fields?channel_type=sms", headers=htmx_headers(console))
    assert response.status_code == 200
    page = soup(response)
    assert page.find("nav") is None and page.find("form") is None
    fields = page.find(id="type-fields")
    assert fields["data-channel-type"] == "sms"
    assert (
        fields.find("select", id="phone_number_id")["data-fills-number"]
        == "#send_from_phone_number"
    )
    assert fields.find("input", id="send_from_phone_number") is not None
    assert fields.find("select", id="email_domain_id") is None
    assert fields.find("select", id="integration_id").find("option", value=setup.sms_integration.id)


def test_type_switch_without_htmx_goes_to_the_form(console, setup):
    """Opened directly (no htmx), the type-fields route sends the browser to the full form."""
    response = console.get("/channels/type-fields?channel_type=sms")
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels/new?channel_type=sms"


def test_change_type_without_javascript_keeps_what_was_typed(console, setup):
    """No-JS "Change type": the SMS fields, the name and metadata kept, no errors shown."""
    data = form_data(
        {"name": "Alerts", "channel_type": "sms", "metadata": {"team": "ops"}},
        csrf_token(console, "/channels/new"),
    )
    data["change_type"] = "1"
    response = console.post("/channels/new", data=data)
    assert response.status_code == 200
    page = soup(response)
    assert page.find("input", id="name")["value"] == "Alerts"
    assert page.find("select", id="phone_number_id") is not None
    assert page.find("input", attrs={"name": "metadata-key", "value": "team"}) is not None
    assert field_errors(page) == {}
    assert channel_count() == 0


def test_create_email_channel(console, setup, admin):
    """A valid email channel is created through the service, audited as the user; 303 + flash."""
    payload = setup.email_payload(
        name="Support Email", metadata={"team": "support", "tier": "1"}, is_default=True
    )
    response = post_form(console, payload)
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels"
    channel = db.session.scalar(select(Channel).where(Channel.name == "Support Email"))
    assert channel.send_from_email == "support@example.com"
    assert channel.metadata_ == {"team": "support", "tier": "1"}
    assert channel.is_default and channel.status == "available"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "channel.create"))
    assert (event.actor_type, event.actor_id) == ("user", admin.id)
    flash = soup(console.get("/channels")).find(id="flash").get_text()
    assert "Channel “Support Email” created. It is the default email channel." in flash


def test_create_sms_channel_defaults_the_send_from_number(console, setup):
    """With an empty send-from number, the chosen phone number's is used."""
    payload = setup.sms_payload(name="Alerts", send_from_phone_number="")
    assert post_form(console, payload).status_code == 303
    channel = db.session.scalar(select(Channel).where(Channel.name == "Alerts"))
    assert channel.send_from_phone_number == setup.number.phone_number


def test_unchecked_default_is_respected(console, setup):
    """Unticking "Default channel" creates a non-default channel even when none exists."""
    payload = setup.email_payload(name="Not default", is_default=False)
    assert post_form(console, payload).status_code == 303
    assert (
        db.session.scalar(select(Channel.is_default).where(Channel.name == "Not default")) is False
    )


def test_errors_are_shown_next_to_fields_and_nothing_typed_is_lost(console, setup):
    """Every failing field gets its message (aria-linked); typed values and metadata stay."""
    payload = setup.email_payload(
        name="",
        send_from_email="someone@elsewhere.org",
        metadata={"owner": "Team A", "x" * 41: "too long a key"},
    )
    response = post_form(console, payload)
    assert response.status_code == 422
    page = soup(response)
    assert field_errors(page) == {
        "name": ["This field is required."],
        "send_from_email": ["The address must be on the domain example.com."],
        "metadata": ["Keys must be 1–40 printable characters."],
    }
    email = page.find("input", id="send_from_email")
    assert email["value"] == "someone@elsewhere.org"
    assert email["aria-invalid"] == "true"
    assert "send_from_email-error" in email["aria-describedby"].split()
    assert (
        page.find("select", id="integration_id").find("option", selected=True)["value"]
        == setup.email_integration.id
    )
    assert (
        page.find("select", id="email_domain_id").find("option", selected=True)["value"]
        == setup.domain.id
    )
    assert page.find("input", attrs={"name": "metadata-value", "value": "Team A"}) is not None
    assert page.find("input", attrs={"name": "metadata-key", "value": "x" * 41}) is not None
    assert channel_count() == 0


def test_a_metadata_key_typed_twice_is_an_error(console, setup):
    """Two rows with the same key: a metadata error (plus any rule errors), nothing saved."""
    data = form_data(setup.email_payload(name=""), csrf_token(console, "/channels/new"))
    data["metadata-key"] = ["team", "team"]
    data["metadata-value"] = ["a", "b"]
    response = console.post("/channels/new", data=data)
    assert response.status_code == 422
    assert field_errors(response) == {
        "name": ["This field is required."],
        "metadata": ["The key “team” appears more than once."],
    }
    assert channel_count() == 0


def test_form_post_without_csrf_token_is_rejected(console, setup):
    """POST /channels/new without the token: 400 and nothing created."""
    data = form_data(setup.email_payload(name="No token"), "")
    del data["csrf_token"]
    assert console.post("/channels/new", data=data).status_code == 400
    assert channel_count() == 0


# --- inline check of the address ---------------------------------------------------------------


def test_address_check_returns_the_field_with_its_error(console, setup):
    """hx-post on blur: the service's dry run says the address is not on the chosen domain."""
    data = form_data(setup.email_payload(name="", send_from_email="a@elsewhere.org"), "")
    response = console.post(
        "/channels/new/check-address", data=data, headers=htmx_headers(console, "/channels/new")
    )
    assert response.status_code == 200
    page = soup(response)
    assert page.find("nav") is None
    assert page.find(id="field-send_from_email") is not None
    # Only this field's errors: the empty name is not reported here.
    assert field_errors(page) == {
        "send_from_email": ["The address must be on the domain example.com."]
    }
    assert page.find("input", id="send_from_email")["value"] == "a@elsewhere.org"
    assert channel_count() == 0


@pytest.mark.parametrize("address", ["support@example.com", ""])
def test_address_check_passes_a_good_or_empty_address(console, setup, address):
    """A matching address (or none typed yet) comes back without an error."""
    data = form_data(setup.email_payload(send_from_email=address), "")
    response = console.post(
        "/channels/new/check-address", data=data, headers=htmx_headers(console, "/channels/new")
    )
    assert response.status_code == 200
    assert field_errors(response) == {}
    assert channel_count() == 0


def test_address_check_needs_the_csrf_header(console, setup):
    """An htmx POST without X-CSRFToken is refused with 400."""
    headers = htmx_headers(console, "/channels/new")
    del headers["X-CSRFToken"]
    data = {"send_from_email": "a@example.com", "email_domain_id": setup.domain.id}
    assert (
        console.post("/channels/new/check-address", data=data, headers=headers).status_code == 400
    )


# --- the edit form -----------------------------------------------------------------------------


def test_edit_form_shows_the_type_read_only(console, setup):
    """GET edit: current values, a read-only type, the default note instead of the checkbox."""
    channel = factories.make_channel(setup, "sms", name="Alerts", metadata={"n": 5, "flag": True})
    page = soup(console.get(f"/channels/{channel.id}/edit"))
    type_input = page.find("input", id="channel_type")
    assert page.find("label", attrs={"for": "channel_type"}).get_text() == "Channel type"
    assert type_input.has_attr("readonly") and type_input["value"] == "SMS"
    assert not type_input.has_attr("name")
    assert page.find("select", id="channel_type") is None
    assert page.find("input", id="name")["value"] == "Alerts"
    assert page.find("input", id="send_from_phone_number")["value"] == setup.number.phone_number
    assert page.find("input", id="is_default") is None
    assert "This is the default SMS channel." in page.find(id="field-is_default").get_text()
    assert page.find("input", attrs={"name": "metadata-value", "value": "5"}) is not None


def test_edit_saves_through_the_service_and_keeps_metadata_types(console, setup):
    """Renaming keeps untouched non-string metadata values (5, true) as they were."""
    channel = factories.make_channel(setup, "sms", name="Alerts", metadata={"n": 5, "flag": True})
    path = f"/channels/{channel.id}/edit"
    data = form_data(
        {
            "name": "Alerts EU",
            "integration_id": setup.sms_integration.id,
            "send_from_phone_number": setup.number.phone_number,
            "phone_number_id": setup.number.id,
            "metadata": {"n": "5", "flag": "true", "region": "eu"},
        },
        csrf_token(console, path),
    )
    response = console.post(path, data=data)
    assert response.status_code == 303
    db.session.refresh(channel)
    assert channel.name == "Alerts EU"
    assert channel.metadata_ == {"n": 5, "flag": True, "region": "eu"}
    assert channel.channel_type == "sms"


def test_edit_sends_only_what_changed(console, setup, tenant):
    """A channel whose integration was disabled can still be renamed (PATCH semantics)."""
    channel = factories.make_channel(setup, "email", name="Mail")
    from core.services import integrations

    integrations.update_integration(
        tenant.id, setup.email_integration.id, {"status": "disabled"}, factories.ACTOR
    )
    db.session.commit()
    path = f"/channels/{channel.id}/edit"
    page = soup(console.get(path))
    selected = page.find("select", id="integration_id").find("option", selected=True)
    assert selected["value"] == setup.email_integration.id and "disabled" in selected.get_text()
    data = form_data(
        {
            "name": "Mail (paused)",
            "integration_id": setup.email_integration.id,
            "send_from_email": "support@example.com",
            "email_domain_id": setup.domain.id,
        },
        csrf_token(console, path),
    )
    assert console.post(path, data=data).status_code == 303
    db.session.refresh(channel)
    assert channel.name == "Mail (paused)"


def test_edit_errors_keep_values(console, setup):
    """An invalid edit is 422 with the error next to the field and the typed value kept."""
    factories.make_channel(setup, "email", name="Taken")
    channel = factories.make_channel(setup, "email", name="Mine")
    path = f"/channels/{channel.id}/edit"
    data = form_data(
        {
            "name": "TAKEN",
            "integration_id": setup.email_integration.id,
            "send_from_email": "support@example.com",
            "email_domain_id": setup.domain.id,
            "is_default": True,
        },
        csrf_token(console, path),
    )
    response = console.post(path, data=data)
    assert response.status_code == 422
    page = soup(response)
    assert field_errors(page) == {"name": ["A channel with this name already exists."]}
    assert page.find("input", id="name")["value"] == "TAKEN"
    assert page.find("input", id="is_default").has_attr("checked")
    db.session.refresh(channel)
    assert channel.name == "Mine" and not channel.is_default


def test_edit_address_check_uses_the_channels_domain(console, setup):
    """The inline check on the edit form validates against the channel being edited."""
    channel = factories.make_channel(setup, "email", name="Mail")
    path = f"/channels/{channel.id}/edit"
    data = {"send_from_email": "x@wrong.org", "email_domain_id": setup.domain.id}
    response = console.post(
        f"/channels/{channel.id}/check-address", data=data, headers=htmx_headers(console, path)
    )
    assert field_errors(response) == {
        "send_from_email": ["The address must be on the domain example.com."]
    }
    db.session.refresh(channel)
    assert channel.send_from_email == "support@example.com"


@pytest.mark.parametrize("method_path", ["GET /edit", "POST /edit", "POST /check-address"])
def test_another_tenants_channel_is_not_found(console, setup, other_tenant, method_path):
    """Another tenant's channel id behaves exactly like an unknown id: 404."""
    theirs = factories.make_ready_tenant(other_tenant, domain="other.example")
    channel = factories.make_channel(theirs, "email", send_from_email="a@other.example")
    method, suffix = method_path.split()
    token = csrf_token(console, "/channels")
    for channel_id in (channel.id, UNKNOWN_ID):
        response = console.open(
            f"/channels/{channel_id}{suffix}",
            method=method,
            data={"csrf_token": token, "name": "Hijack"},
        )
        assert response.status_code == 404
        assert "Channel not found." in response.get_data(as_text=True)
    db.session.refresh(channel)
    assert channel.name != "Hijack"


# --- form / API parity -------------------------------------------------------------------------


class ParityResources:
    """Resources that some parity cases refer to, made on first use (keeps each case cheap)."""

    def __init__(self, setup, tenant, other_tenant):
        self.setup, self.tenant, self.other_tenant = setup, tenant, other_tenant

    @cached_property
    def existing(self):
        """A channel whose name is taken."""
        return factories.make_channel(self.setup, "email", name="Existing")

    @cached_property
    def theirs(self):
        """Another tenant, ready for channels."""
        return factories.make_ready_tenant(self.other_tenant, domain="other.example")

    @cached_property
    def disabled_email(self):
        """A disabled email integration of the tenant."""
        return factories.make_integration(self.tenant, "email", status="disabled")

    @cached_property
    def voice(self):
        """A voice-only number of the tenant."""
        outcome = factories.make_phone_number(
            self.tenant, self.setup.sms_integration, capabilities=["voice"]
        )
        return outcome.phone_number


PARITY_CASES = {
    "blank name": ("email", lambda s, o: {"name": ""}),
    "name too long": ("email", lambda s, o: {"name": "x" * 101}),
    "name taken (any case)": ("email", lambda s, o: {"name": o.existing.name.upper()}),
    "no integration": ("email", lambda s, o: {"integration_id": ""}),
    "integration of the other type": (
        "email",
        lambda s, o: {"integration_id": s.sms_integration.id},
    ),
    "disabled integration": ("email", lambda s, o: {"integration_id": o.disabled_email.id}),
    "another tenant's integration": (
        "email",
        lambda s, o: {"integration_id": o.theirs.email_integration.id},
    ),
    "bad address": ("email", lambda s, o: {"send_from_email": "not-an-address"}),
    "address on another domain": ("email", lambda s, o: {"send_from_email": "a@elsewhere.org"}),
    "no domain": ("email", lambda s, o: {"email_domain_id": ""}),
    "unknown domain": ("email", lambda s, o: {"email_domain_id": UNKNOWN_ID}),
    "another tenant's domain": ("email", lambda s, o: {"email_domain_id": o.theirs.domain.id}),
    "number not E.164": ("sms", lambda s, o: {"send_from_phone_number": "415 555 0100"}),
    "number not the chosen one": ("sms", lambda s, o: {"send_from_phone_number": "+14155559999"}),
    "no phone number": ("sms", lambda s, o: {"phone_number_id": ""}),
    "voice-only number": ("sms", lambda s, o: {"phone_number_id": o.voice.id}),
    "metadata key too long": ("email", lambda s, o: {"metadata": {"k" * 41: "v"}}),
    "metadata value too long": ("email", lambda s, o: {"metadata": {"k": "v" * 501}}),
    "everything wrong": (
        "email",
        lambda s, o: {
            "name": "",
            "integration_id": "",
            "send_from_email": "bad",
            "email_domain_id": "",
        },
    ),
}


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_form_and_api_give_the_same_field_errors(console, api, setup, tenant, other_tenant, case):
    """The same invalid input through the form and POST /api/channels: the same field errors."""
    channel_type, make_overrides = PARITY_CASES[case]
    overrides = make_overrides(setup, ParityResources(setup, tenant, other_tenant))
    payload = (
        setup.email_payload(**overrides)
        if channel_type == "email"
        else setup.sms_payload(**overrides)
    )
    before = channel_count()

    api_response = api.post("/api/channels", json=payload)
    assert api_response.status_code == 422
    api_fields = api_response.get_json()["error"]["fields"]

    form_response = post_form(console, payload)
    assert form_response.status_code == 422
    assert field_errors(form_response) == api_fields
    assert channel_count() == before
