"""The no-JavaScript delete confirmation page: what it says about the default's successor."""

from __future__ import annotations

from core.extensions import db
from core.services import channels
from tests import factories
from tests.console.helpers import soup


def confirm_text(console, channel) -> str:
    """The text of the confirmation card for ``channel``."""
    response = console.get(f"/channels/{channel.id}/delete")
    assert response.status_code == 200
    return " ".join(soup(response).find("section", class_="confirm-card").get_text().split())


def test_default_with_a_successor_names_it(console, setup):
    """Deleting the default email channel names the oldest other available one as successor."""
    default = factories.make_channel(setup, name="Main mail")
    factories.make_channel(setup, name="Second mail")
    factories.make_channel(setup, name="Third mail")
    text = confirm_text(console, default)
    assert default.is_default
    assert "“Second mail” (the oldest other available email channel) becomes the default." in text
    assert "no other available" not in text


def test_default_without_a_successor_says_there_is_none(console, setup):
    """With no other available channel of the type, the page says no default will remain."""
    default = factories.make_channel(setup, "sms", name="Only SMS")
    factories.make_channel(setup, name="Some mail")  # another type: not a successor
    text = confirm_text(console, default)
    assert "no other available SMS channel exists" in text
    assert "becomes the default" not in text


def test_disabled_channel_is_not_a_successor(console, setup):
    """A disabled channel of the same type does not take over, so the page says there is none."""
    default = factories.make_channel(setup, name="Main mail")
    off = factories.make_channel(setup, name="Off mail")
    channels.update_channel(setup.tenant.id, off.id, {"status": "disabled"}, factories.ACTOR)
    db.session.commit()
    assert off.status == "disabled"
    text = confirm_text(console, default)
    assert "no other available email channel exists" in text


def test_not_default_says_nothing_about_defaults(console, setup):
    """A channel that is not the default gets the plain confirmation only."""
    factories.make_channel(setup, name="Main mail")
    other = factories.make_channel(setup, name="Second mail")
    text = confirm_text(console, other)
    assert "This cannot be undone." in text
    assert "default" not in text.replace("Delete channel", "")
