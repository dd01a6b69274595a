"""Edit forms carry the version they were rendered from (blueprints/console/stale_edits.py): a
save over someone else's change saves nothing, names what changed with its new value, keeps what
the user typed, and saves on the second submit. The check is the API's (core.conditional)."""

from __future__ import annotations

from core.extensions import db
from core.models import Channel, Integration
from core.services import channels as channel_service
from core.services import integrations as integration_service
from tests import factories
from tests.console.helpers import soup
from tests.console.test_channel_form import form_data


def _hidden(page, name: str) -> str:
    return page.find("input", attrs={"name": name, "type": "hidden"})["value"]


def _versioned(page, data: dict) -> dict:
    """The submitted fields plus the form's own hidden fields (CSRF, version, what it showed)."""
    return {
        **data,
        "csrf_token": _hidden(page, "csrf_token"),
        "version": _hidden(page, "version"),
        "seen": _hidden(page, "seen"),
    }


def _channel_edit(setup, channel, **typed) -> dict:
    values = {
        "name": channel.name,
        "integration_id": setup.email_integration.id,
        "send_from_email": "support@example.com",
        "email_domain_id": setup.domain.id,
    }
    values.update(typed)
    return form_data(values, "")


def test_edit_form_carries_the_apis_etag(console, api, setup):
    """The form's version is the channel's ETag as the API gives it: one definition."""
    channel = factories.make_channel(setup, "email", name="Mail")
    page = soup(console.get(f"/channels/{channel.id}/edit"))
    assert _hidden(page, "version") == api.get(f"/api/channels/{channel.id}").headers["ETag"]


def test_stale_channel_form_keeps_typed_values_and_names_changes(console, setup):
    """Someone renames the channel and changes its metadata while the form is open: saving
    answers 409 with a notice naming both with their new values, the typed values kept, and
    nothing saved; submitting the re-rendered form then saves the typed values."""
    channel = factories.make_channel(setup, "email", name="Mail", metadata={"team": "care"})
    path = f"/channels/{channel.id}/edit"
    page = soup(console.get(path))
    channel_service.update_channel(
        setup.tenant.id,
        channel.id,
        {"name": "Mail (theirs)", "metadata": {"team": "billing"}},
        factories.ACTOR,
    )
    db.session.commit()

    typed = _channel_edit(setup, channel, name="Mail (mine)", metadata={"team": "care", "x": "1"})
    response = console.post(path, data=_versioned(page, typed))
    assert response.status_code == 409
    stale = soup(response)
    notice = stale.find(id="stale-notice")
    assert notice is not None and notice["role"] == "alert"
    changes = [item.get_text(" ", strip=True) for item in notice.find_all("li")]
    assert changes == ["Name : Mail (theirs)", "Metadata : team = billing"]
    assert stale.find("input", id="name")["value"] == "Mail (mine)"  # nothing typed is lost
    assert stale.find("input", attrs={"name": "metadata-value", "value": "1"}) is not None
    db.session.expire_all()
    stored = db.session.get(Channel, channel.id)
    assert stored.name == "Mail (theirs)" and stored.metadata_ == {"team": "billing"}

    again = _channel_edit(setup, channel, name="Mail (mine)", metadata={"team": "care", "x": "1"})
    saved = console.post(path, data=_versioned(stale, again))
    assert saved.status_code == 303
    db.session.expire_all()
    stored = db.session.get(Channel, channel.id)
    assert stored.name == "Mail (mine)" and stored.metadata_ == {"team": "care", "x": "1"}


def test_stale_channel_form_names_a_status_change(console, setup):
    """A change the form does not edit (the channel disabled, so no longer the default) is
    named too."""
    channel = factories.make_channel(setup, "email", name="Mail")
    path = f"/channels/{channel.id}/edit"
    page = soup(console.get(path))
    channel_service.update_channel(
        setup.tenant.id, channel.id, {"status": "disabled"}, factories.ACTOR
    )
    db.session.commit()
    response = console.post(path, data=_versioned(page, _channel_edit(setup, channel)))
    assert response.status_code == 409
    changes = soup(response).find(id="stale-notice").find_all("li")
    assert [item.get_text(" ", strip=True) for item in changes] == [
        "Status : Disabled",
        "Default channel : No",
    ]


def test_current_channel_form_saves(console, setup):
    """Nothing changed underneath: the versioned form saves as before."""
    channel = factories.make_channel(setup, "email", name="Mail")
    path = f"/channels/{channel.id}/edit"
    page = soup(console.get(path))
    response = console.post(path, data=_versioned(page, _channel_edit(setup, channel, name="New")))
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).name == "New"


def test_stale_integration_form(console, tenant):
    """The integration edit form: a rename underneath is named, the typed name and non-secret
    credentials are kept, nothing is saved; the second submit saves."""
    integration = factories.make_integration(
        tenant,
        provider="smtp",
        name="Mail relay",
        credentials={"host": "smtp.example.com", "port": 587, "password": "s3cret"},
    )
    path = f"/integrations/{integration.id}/edit"
    page = soup(console.get(path))
    integration_service.update_integration(
        tenant.id, integration.id, {"name": "Relay (theirs)"}, factories.ACTOR
    )
    db.session.commit()
    typed = {
        "name": "Relay (mine)",
        "credentials-host": "smtp2.example.com",
        "credentials-port": "587",
        "credentials-use_tls": "y",
    }
    response = console.post(path, data=_versioned(page, typed))
    assert response.status_code == 409
    stale = soup(response)
    changes = stale.find(id="stale-notice").find_all("li")
    assert [item.get_text(" ", strip=True) for item in changes] == ["Name : Relay (theirs)"]
    assert stale.find("input", id="name")["value"] == "Relay (mine)"
    assert stale.find("input", id="credentials-host")["value"] == "smtp2.example.com"
    db.session.expire_all()
    assert db.session.get(Integration, integration.id).name == "Relay (theirs)"

    saved = console.post(path, data=_versioned(stale, typed))
    assert saved.status_code == 303
    db.session.expire_all()
    assert db.session.get(Integration, integration.id).name == "Relay (mine)"
