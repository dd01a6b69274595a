"""Console integrations: list, create/edit with provider fields, secrets, test connection,
enable/disable, delete."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Integration
from core.services.integrations import credentials_of
from tests import factories
from tests.conftest import base_config
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup
from tests.services.fake_providers import GOOD, ProviderServer

SECRET = "SG.super-secret-api-key-value"


@pytest.fixture(scope="module")
def provider_server():
    """A fake provider API for the Test connection button."""
    with ProviderServer() as server:
        yield server


@pytest.fixture
def app_config(database_url, provider_server):
    """Providers point at the local fake."""
    config = base_config(database_url)
    config.update(PROVIDER_BASE_URLS=provider_server.base_urls(), PROVIDER_TIMEOUT=3.0)
    return config


def _new(console, **fields):
    data = {"csrf_token": csrf_token(console, "/integrations/new")}
    data.update(fields)
    return console.post("/integrations/new", data=data)


def test_list_shows_integrations_and_empty_state(console, tenant):
    """Empty: a state that says what to do; then one row per integration with its provider."""
    page = soup(console.get("/integrations"))
    assert "No integrations yet" in page.get_text()
    factories.make_integration(
        tenant, provider="sendgrid", name="SG", credentials={"api_key": SECRET}
    )
    response = console.get("/integrations")
    assert response.status_code == 200
    row = soup(response).find("tr", id=lambda v: v and v.startswith("integration-"))
    assert "SG" in row.get_text() and "SendGrid" in row.get_text()
    assert SECRET not in response.get_data(as_text=True)


def test_create_with_provider_credentials(console, tenant):
    """POST creates through the service: credentials stored encrypted, 303 to the list."""
    response = _new(
        console,
        name="Mail",
        channel_type="email",
        provider="smtp",
        **{
            "credentials-host": "smtp.example.com",
            "credentials-port": "2525",
            "credentials-username": "me",
            "credentials-password": "pw-secret-1",
            "credentials-use_tls": "y",
        },
    )
    assert response.status_code == 303
    integration = db.session.scalar(select(Integration).where(Integration.tenant_id == tenant.id))
    assert credentials_of(integration) == {
        "host": "smtp.example.com",
        "port": 2525,
        "username": "me",
        "password": "pw-secret-1",
        "use_tls": True,
    }
    page = console.get("/integrations").get_data(as_text=True)
    assert "Integration “Mail” created." in page
    assert "pw-secret-1" not in page


def test_validation_errors_next_to_fields_and_nothing_lost(console, tenant):
    """Missing name and API key: both errors inline (422); typed values stay; secrets do not."""
    response = _new(
        console,
        name="",
        channel_type="email",
        provider="mailgun",
        **{
            "credentials-api_key": "",
            "credentials-domain": "mg.example.com",
            "credentials-region": "eu",
        },
    )
    assert response.status_code == 422
    errors = field_errors(response)
    assert errors["name"] == ["This field is required."]
    assert errors["credentials-api_key"] == ["This field is required."]
    page = soup(response)
    assert page.find("input", id="credentials-domain")["value"] == "mg.example.com"
    assert (
        page.find("select", id="credentials-region").find("option", selected=True)["value"] == "eu"
    )


def test_typed_secret_is_not_rendered_back_on_error(console):
    """A secret typed into a form that fails is not echoed in the re-rendered page."""
    response = _new(
        console,
        name="",
        channel_type="email",
        provider="sendgrid",
        **{"credentials-api_key": SECRET},
    )
    assert response.status_code == 422
    assert SECRET not in response.get_data(as_text=True)


def test_provider_switch_fragment_and_no_js_fallback(console):
    """htmx gets only the provider's fields; a plain GET goes to the full form."""
    url = "/integrations/credential-fields?channel_type=sms&provider=twilio"
    fragment = console.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "<html" not in html
    page = soup(fragment)
    assert page.find(id="credentials-account_sid") is not None
    assert page.find(id="credentials-auth_token")["type"] == "password"
    providers = [o["value"] for o in page.find("select", id="provider").find_all("option")]
    assert providers == ["twilio", "vonage", "messagebird", "console"]
    redirect = console.get(url)
    assert redirect.status_code == 303
    full = console.get(redirect.headers["Location"])
    assert "<html" in full.get_data(as_text=True)
    assert soup(full).find(id="credentials-auth_token") is not None


def test_no_js_show_fields_keeps_what_was_typed(console):
    """Without JS, "Show fields" re-renders with the chosen provider; nothing is created."""
    response = _new(
        console, name="Typed", channel_type="sms", provider="vonage", change_provider="1"
    )
    assert response.status_code == 200
    page = soup(response)
    assert page.find("input", id="name")["value"] == "Typed"
    assert page.find(id="credentials-api_secret") is not None
    assert db.session.scalar(select(Integration)) is None


def test_edit_never_shows_secret_and_empty_keeps_it(console, tenant):
    """Edit: secret inputs are empty ("Replace"); saving with it empty keeps the secret."""
    integration = factories.make_integration(
        tenant, provider="sendgrid", name="SG", credentials={"api_key": SECRET}
    )
    page = console.get(f"/integrations/{integration.id}/edit")
    html = page.get_data(as_text=True)
    assert SECRET not in html and "********" not in html
    assert (
        soup(page).find("label", attrs={"for": "credentials-api_key"}).get_text()
        == "Replace api key"
    )
    token = csrf_token(console, f"/integrations/{integration.id}/edit")
    saved = console.post(
        f"/integrations/{integration.id}/edit",
        data={"csrf_token": token, "name": "SG renamed", "credentials-api_key": ""},
    )
    assert saved.status_code == 303
    db.session.refresh(integration)
    assert integration.name == "SG renamed"
    assert credentials_of(integration) == {"api_key": SECRET}
    console.post(
        f"/integrations/{integration.id}/edit",
        data={"csrf_token": token, "name": "SG renamed", "credentials-api_key": "SG.new"},
    )
    db.session.refresh(integration)
    assert credentials_of(integration) == {"api_key": "SG.new"}


def test_test_connection_fragment_and_full_page(console, tenant, provider_server):
    """htmx gets the outcome and when it was checked; without JS a flash and a redirect."""
    integration = factories.make_integration(
        tenant, provider="sendgrid", credentials=GOOD["sendgrid"], name="SG"
    )
    url = f"/integrations/{integration.id}/check"
    response = console.post(url, headers=htmx_headers(console, "/integrations"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    block = soup(response).find(id=f"check-{integration.id}")
    assert "Connected" in block.get_text()
    assert "SendGrid accepted the API key." in block.get_text()
    assert block.find("time")["datetime"].endswith("Z")
    assert GOOD["sendgrid"]["api_key"] not in html
    full = console.post(
        url, data={"csrf_token": csrf_token(console, "/integrations"), "next": "/integrations"}
    )
    assert full.status_code == 303
    assert "SendGrid accepted the API key." in console.get("/integrations").get_data(as_text=True)


def test_test_connection_failure_is_shown(console, tenant, provider_server):
    """A refused key shows "Failed" and the provider's words, without the key."""
    integration = factories.make_integration(
        tenant, provider="sendgrid", credentials={"api_key": SECRET}, name="SG"
    )
    response = console.post(
        f"/integrations/{integration.id}/check", headers=htmx_headers(console, "/integrations")
    )
    text = soup(response).get_text()
    assert "Failed" in text and "rejected the credentials" in text
    assert SECRET not in response.get_data(as_text=True)


def test_writes_need_csrf(console, tenant):
    """Every write without its CSRF token is refused (400)."""
    integration = factories.make_integration(tenant)
    for url in (
        "/integrations/new",
        f"/integrations/{integration.id}/edit",
        f"/integrations/{integration.id}/check",
        f"/integrations/{integration.id}/disable",
        f"/integrations/{integration.id}/delete",
    ):
        assert console.post(url, data={"name": "x"}).status_code == 400, url


def test_disable_names_the_default_that_took_over(console, tenant):
    """Disabling an integration disables its channels; the flash names the new default."""
    ready = factories.make_ready_tenant(tenant)
    first = factories.make_channel(ready, "email", name="First")
    other = factories.make_integration(tenant, "email", name="Backup")
    factories.make_channel(ready, "email", name="Second", integration_id=other.id)
    assert first.is_default
    response = console.post(
        f"/integrations/{ready.email_integration.id}/disable",
        headers=htmx_headers(console, "/integrations"),
    )
    assert response.status_code == 200
    page = soup(response)
    row = page.find("tr", id=f"integration-{ready.email_integration.id}")
    assert "Disabled" in row.get_text() and "Enable" in row.get_text()
    flash = page.find(id="flash").get_text()
    assert "Channels that follow it: First." in flash
    assert "“Second” is now the default email channel." in flash


def test_delete_refused_while_used_names_channels(console, tenant):
    """Delete is refused while channels use it (the message names them); unused: row removed."""
    ready = factories.make_ready_tenant(tenant)
    factories.make_channel(ready, "email", name="Support Email")
    response = console.delete(
        f"/integrations/{ready.email_integration.id}/delete",
        headers=htmx_headers(console, "/integrations"),
    )
    assert "Support Email" in soup(response).find(id="flash").get_text()
    assert soup(response).find("tr", id=f"integration-{ready.email_integration.id}") is not None
    unused = factories.make_integration(tenant, name="Unused")
    gone = console.delete(
        f"/integrations/{unused.id}/delete", headers=htmx_headers(console, "/integrations")
    )
    assert soup(gone).find("tr") is None
    assert db.session.get(Integration, unused.id) is None
    confirm = console.get(f"/integrations/{ready.email_integration.id}/delete")
    assert "Support Email" in confirm.get_data(as_text=True)


def test_other_tenants_integration_is_not_found(console, other_tenant):
    """Another tenant's integration id is a 404 on every route."""
    theirs = factories.make_integration(other_tenant)
    assert console.get(f"/integrations/{theirs.id}/edit").status_code == 404
    headers = htmx_headers(console, "/integrations")
    assert console.post(f"/integrations/{theirs.id}/check", headers=headers).status_code == 404
    assert console.post(f"/integrations/{theirs.id}/disable", headers=headers).status_code == 404


def test_support_staff_cannot_write(support_console, tenant):
    """Read-only users get 403 on every write, before anything happens."""
    integration = factories.make_integration(tenant)
    token = csrf_token(support_console, "/integrations")  # the 403 page still carries it
    for url in ("/integrations/new", f"/integrations/{integration.id}/check"):
        response = support_console.post(url, data={"csrf_token": token})
        assert response.status_code == 403, url
    assert integration.last_checked_at is None
