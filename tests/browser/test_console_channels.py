"""The channels console in a real browser: the htmx behaviour, and the same flows without JS."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, Channel
from core.services import channels as channel_service
from tests import factories
from tests.browser.conftest import end_test_transaction

pytestmark = pytest.mark.browser


def _rows(page: Page):
    return page.locator("#channel-rows > tr")


def _row(page: Page, name: str):
    return page.locator("#channel-rows > tr", has=page.get_by_role("link", name=name, exact=True))


def _mark_page(page: Page) -> None:
    """Leave a marker on the window: it survives htmx swaps and dies with a page load."""
    page.evaluate("window.__marker = 1")


def _assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"


def _integration_label(integration) -> str:
    return f"{integration.name} ({integration.provider})"


def _stored_channels() -> list[Channel]:
    end_test_transaction()  # see what the server committed
    return list(db.session.scalars(select(Channel).order_by(Channel.created_at, Channel.name)))


def _fill_email_fields(page: Page, setup, address: str) -> None:
    page.get_by_label("Integration").select_option(
        label=_integration_label(setup.email_integration)
    )
    page.get_by_label("Email domain").select_option(label=setup.domain.domain)
    page.get_by_label("Send from address").fill(address)


def _fill_sms_fields(page: Page, setup) -> None:
    page.get_by_label("Integration").select_option(label=_integration_label(setup.sms_integration))
    page.get_by_label("Phone number").select_option(label=setup.number.phone_number)


def _switch_type(page: Page, label: str, value: str) -> None:
    """Choose a channel type and wait for htmx to swap in that type's fields."""
    page.get_by_label("Channel type").select_option(label=label)
    expect(page.locator(f"#type-fields[data-channel-type={value}]")).to_be_visible()


def test_sign_in_shows_the_empty_channels_table(page, sign_in, admin, screenshot):
    """Signing in lands on the channels table, whose empty state says what to do."""
    page.goto(url_for("console.login"))
    expect(page.get_by_role("heading", name="Sign in to Channels")).to_be_visible()
    screenshot(page, "login")
    sign_in(page, admin)
    expect(page).to_have_url(re.compile(r"/channels$"))
    expect(page.get_by_role("heading", name="No channels yet")).to_be_visible()
    expect(page.get_by_role("link", name="Create your first channel")).to_be_visible()
    screenshot(page, "channels-empty")


def test_wrong_password_is_refused_inline(page, admin):
    """A wrong password keeps the user on the sign-in form with a message and the typed email."""
    page.goto(url_for("console.login"))
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect email or password.")
    expect(page.get_by_label("Email")).to_have_value(admin.email)
    expect(page.get_by_label("Password")).to_have_value("")


def test_create_an_email_and_an_sms_channel_through_the_form(
    page, sign_in, admin, setup, screenshot
):
    """Both channel types are created through the form and listed, each its type's default."""
    sign_in(page, admin)
    page.get_by_role("link", name="Create your first channel").click()
    expect(page.get_by_role("heading", name="New channel")).to_be_visible()
    page.get_by_label("Name").fill("Support Email")
    _fill_email_fields(page, setup, "support@example.com")
    expect(page.get_by_label("Default channel")).to_be_checked()
    screenshot(page, "channel-new-email")
    page.get_by_role("button", name="Create channel").click()

    expect(page).to_have_url(re.compile(r"/channels$"))
    expect(page.locator("#flash")).to_contain_text("Channel “Support Email” created.")
    row = _row(page, "Support Email")
    expect(row).to_contain_text("support@example.com")
    expect(row).to_contain_text("Available")
    expect(row).to_contain_text("Default")

    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name").fill("Alerts SMS")
    _switch_type(page, "SMS", "sms")
    _fill_sms_fields(page, setup)
    # Choosing the number fills in the send-from number (static/app.js).
    expect(page.get_by_label("Send from number")).to_have_value(setup.number.phone_number)
    screenshot(page, "channel-new-sms")
    page.get_by_role("button", name="Create channel").click()

    expect(page.locator("#flash")).to_contain_text("Channel “Alerts SMS” created.")
    expect(_rows(page)).to_have_count(2)
    sms_row = _row(page, "Alerts SMS")
    expect(sms_row).to_contain_text(setup.number.phone_number)
    expect(sms_row).to_contain_text("SMS")
    expect(sms_row).to_contain_text("Default")
    screenshot(page, "channels")

    stored = {c.name: c for c in _stored_channels()}
    assert set(stored) == {"Support Email", "Alerts SMS"}
    assert stored["Support Email"].channel_type == "email" and stored["Support Email"].is_default
    assert stored["Alerts SMS"].send_from_phone_number == setup.number.phone_number
    assert stored["Alerts SMS"].is_default


def test_type_switch_swaps_the_fields_without_a_reload(page, sign_in, admin, setup):
    """Switching email → SMS → email swaps the type's fields in place; the name typed stays."""
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    page.get_by_label("Name").fill("Switching")
    _mark_page(page)
    expect(page.get_by_label("Send from address")).to_be_visible()
    expect(page.get_by_label("Send from number")).to_have_count(0)

    with page.expect_response(lambda r: "/channels/type-fields" in r.url) as switched:
        _switch_type(page, "SMS", "sms")
    assert switched.value.status == 200
    expect(page.get_by_label("Send from number")).to_be_visible()
    expect(page.get_by_label("Phone number")).to_be_visible()
    expect(page.get_by_label("Send from address")).to_have_count(0)
    expect(page.get_by_label("Email domain")).to_have_count(0)
    sms_options = page.get_by_label("Integration").locator("option")
    expect(sms_options).to_contain_text([_integration_label(setup.sms_integration)])
    expect(sms_options.filter(has_text=setup.email_integration.name)).to_have_count(0)

    _switch_type(page, "Email", "email")
    expect(page.get_by_label("Send from address")).to_be_visible()
    expect(page.get_by_label("Email domain")).to_be_visible()
    expect(page.get_by_label("Send from number")).to_have_count(0)
    email_options = page.get_by_label("Integration").locator("option")
    expect(email_options.filter(has_text=setup.sms_integration.name)).to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("Switching")
    _assert_not_reloaded(page)
    # Only one set of type fields is in the form (no duplicate ids after the swaps).
    expect(page.locator("#type-fields")).to_have_count(1)


def test_errors_show_next_to_their_fields_and_keep_what_was_typed(
    page, sign_in, admin, setup, screenshot
):
    """A wrong submission lists every error beside its field, keeps the input, then succeeds."""
    factories.make_channel(setup, "email", name="Taken Name")
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    page.get_by_label("Name").fill("taken name")
    page.get_by_label("Email domain").select_option(label=setup.domain.domain)
    address = page.get_by_label("Send from address")
    address.fill("support@elsewhere.org")
    # Leaving the address checks it inline (an htmx POST answering with the field).
    with page.expect_response(lambda r: "check-address" in r.url):
        address.blur()
    expect(page.locator("#field-send_from_email .field-errors")).to_be_visible()
    expect(page.get_by_label("Send from address")).to_have_value("support@elsewhere.org")

    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/channels/new")
    ) as posted:
        page.get_by_role("button", name="Create channel").click()
    assert posted.value.status == 422

    for field in ("name", "integration_id", "send_from_email"):
        errors = page.locator(f"#field-{field} .field-errors")
        expect(errors).to_be_visible()
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        described = page.locator(f"#{field}").get_attribute("aria-describedby") or ""
        assert f"{field}-error" in described.split(), f"{field} is not described by its error"
    expect(page.locator("#field-email_domain_id .field-errors")).to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("taken name")
    expect(page.get_by_label("Send from address")).to_have_value("support@elsewhere.org")
    expect(page.get_by_label("Email domain")).to_have_value(setup.domain.id)
    screenshot(page, "channel-new-errors")

    page.get_by_label("Name").fill("Fixed Name")
    page.get_by_label("Integration").select_option(
        label=_integration_label(setup.email_integration)
    )
    page.get_by_label("Send from address").fill("hello@example.com")
    with page.expect_response(lambda r: "check-address" in r.url):
        page.get_by_label("Send from address").blur()
    expect(page.locator("#field-send_from_email .field-errors")).to_have_count(0)
    page.get_by_role("button", name="Create channel").click()

    expect(page.locator("#flash")).to_contain_text("Channel “Fixed Name” created.")
    expect(_row(page, "Fixed Name")).to_contain_text("hello@example.com")
    assert [c.name for c in _stored_channels()] == ["Taken Name", "Fixed Name"]


def test_edit_form_saves_changes(page, sign_in, admin, setup, screenshot):
    """The edit form shows the channel (type fixed), and saving renames it."""
    channel = factories.make_channel(setup, "email", name="Old Name", metadata={"team": "care"})
    sign_in(page, admin)
    _row(page, "Old Name").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Old Name")).to_be_visible()
    expect(page.get_by_label("Channel type")).to_have_value("Email")
    expect(page.get_by_label("Channel type")).not_to_be_editable()
    expect(page.get_by_label("Send from address")).to_have_value(channel.send_from_email)
    screenshot(page, "channel-edit")
    page.get_by_label("Name").fill("New Name")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flash")).to_contain_text("Channel “New Name” saved.")
    expect(_row(page, "New Name")).to_be_visible()
    stored = _stored_channels()
    assert [(c.name, c.metadata_) for c in stored] == [("New Name", {"team": "care"})]


def test_saving_over_someone_elses_change_keeps_what_was_typed(
    page, sign_in, admin, setup, screenshot
):
    """Someone renames the channel while the edit form is open: saving shows what changed (the
    new name) and keeps the typed name; saving again applies it."""
    channel = factories.make_channel(setup, "email", name="Support", metadata={"team": "care"})
    sign_in(page, admin)
    page.goto(url_for("console.channels_edit", channel_id=channel.id))
    page.get_by_label("Name").fill("Support (mine)")
    end_test_transaction()
    channel_service.update_channel(
        setup.tenant.id, channel.id, {"name": "Support (theirs)"}, factories.ACTOR
    )
    db.session.commit()
    page.get_by_role("button", name="Save changes").click()
    notice = page.get_by_role("alert").filter(has_text="was changed while you were editing it")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Name: Support (theirs)")
    expect(page.get_by_label("Name")).to_have_value("Support (mine)")
    screenshot(page, "channel-edit-stale")
    assert [c.name for c in _stored_channels()] == ["Support (theirs)"]
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flash")).to_contain_text("Channel “Support (mine)” saved.")
    assert [(c.name, c.metadata_) for c in _stored_channels()] == [
        ("Support (mine)", {"team": "care"})
    ]


def test_make_default_updates_both_rows_in_place(page, sign_in, admin, setup):
    """“Make default” on one row moves the Default badge there and off the old default's row."""
    factories.make_channel(setup, "email", name="First")
    factories.make_channel(setup, "email", name="Second")
    sign_in(page, admin)
    first, second = _row(page, "First"), _row(page, "Second")
    expect(first).to_contain_text("Default")
    expect(second.get_by_text("Not default")).to_be_attached()
    expect(first.get_by_role("button", name="Make default")).to_have_count(0)
    _mark_page(page)

    second.get_by_role("button", name="Make default").click()

    expect(second.locator(".badge-default")).to_be_visible()
    expect(second.get_by_role("button", name="Make default")).to_have_count(0)
    expect(first.locator(".badge-default")).to_have_count(0)
    expect(first.get_by_role("button", name="Make default")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text(
        re.compile("“Second” is now the default email channel", re.I)
    )
    _assert_not_reloaded(page)
    assert {c.name: c.is_default for c in _stored_channels()} == {"First": False, "Second": True}


def test_delete_asks_for_confirmation_and_removes_the_row(page, sign_in, admin, setup):
    """Delete asks first: dismissing keeps the row; accepting removes it, names the new default."""
    factories.make_channel(setup, "email", name="Keep Me")
    factories.make_channel(setup, "email", name="Other")
    sign_in(page, admin)
    _mark_page(page)
    row = _row(page, "Keep Me")

    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    row.get_by_role("link", name="Delete").click()
    expect(row).to_be_visible()
    assert messages == ["Delete the channel “Keep Me”? This cannot be undone."]

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        row.get_by_role("link", name="Delete").click()
    assert deleted.value.status == 200
    expect(row).to_have_count(0)
    expect(_rows(page)).to_have_count(1)
    expect(page.locator("#flash")).to_contain_text("“Keep Me” was deleted.")
    expect(page.locator("#flash")).to_contain_text(
        re.compile("“Other” is now the default email channel", re.I)
    )
    expect(_row(page, "Other").locator(".badge-default")).to_be_visible()
    _assert_not_reloaded(page)
    assert [(c.name, c.is_default) for c in _stored_channels()] == [("Other", True)]


def test_live_search_filters_rows_and_updates_the_url(page, sign_in, admin, setup):
    """Typing in the search narrows the rows as you type and pushes the query into the URL."""
    for name in ("Support Email", "Billing Email", "Billing Reminders"):
        factories.make_channel(setup, "email", name=name)
    factories.make_channel(setup, "sms", name="Alerts SMS")
    sign_in(page, admin)
    expect(_rows(page)).to_have_count(4)
    _mark_page(page)

    page.get_by_label("Search").press_sequentially("bill", delay=30)
    expect(_rows(page)).to_have_count(2)
    expect(_row(page, "Billing Email")).to_be_visible()
    expect(_row(page, "Billing Reminders")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]q=bill(&|$)"))

    page.get_by_label("Search").press_sequentially("ing r", delay=30)
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, "Billing Reminders")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]q=billing(\+|%20)r(&|$)"))

    page.get_by_label("Search").fill("")
    page.get_by_label("Search").press("Backspace")  # a keyup on the now empty field
    expect(_rows(page)).to_have_count(4)
    page.get_by_label("Type", exact=True).select_option(label="SMS")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, "Alerts SMS")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]channel_type=sms(&|$)"))

    page.get_by_label("Search").press_sequentially("zzz", delay=30)
    expect(page.get_by_role("heading", name="No channels match these filters")).to_be_visible()
    _assert_not_reloaded(page)

    page.reload()  # the pushed URL is a real page: the filters survive a reload
    expect(page.get_by_label("Search")).to_have_value("zzz")
    expect(page.get_by_role("heading", name="No channels match these filters")).to_be_visible()


def test_without_javascript_type_switch_and_create_use_full_round_trips(
    open_page, sign_in, admin, setup, screenshot
):
    """With JavaScript off, “Change type” reloads the form with the SMS fields; create works."""
    page = open_page(java_script_enabled=False)
    sign_in(page, admin)
    page.goto(url_for("console.channels_new"))
    page.get_by_label("Name").fill("No Script SMS")
    page.get_by_label("Channel type").select_option(label="SMS")
    expect(page.get_by_label("Send from address")).to_be_visible()  # nothing happens by itself
    with page.expect_navigation():
        page.get_by_role("button", name="Change type").click()
    expect(page.locator("#type-fields[data-channel-type=sms]")).to_be_visible()
    expect(page.get_by_label("Send from address")).to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("No Script SMS")
    expect(page.get_by_label("Channel type")).to_have_value("sms")
    _fill_sms_fields(page, setup)
    # No script fills the number in; the server defaults it to the chosen number's.
    expect(page.get_by_label("Send from number")).to_have_value("")
    screenshot(page, "channel-new-sms-nojs")
    with page.expect_navigation():
        page.get_by_role("button", name="Create channel").click()

    expect(page).to_have_url(re.compile(r"/channels$"))
    expect(page.locator("#flash")).to_contain_text("Channel “No Script SMS” created.")
    expect(_row(page, "No Script SMS")).to_contain_text(setup.number.phone_number)
    [stored] = _stored_channels()
    assert (stored.channel_type, stored.send_from_phone_number) == (
        "sms",
        setup.number.phone_number,
    )


def test_without_javascript_delete_confirms_on_a_page(open_page, sign_in, admin, setup, screenshot):
    """With JavaScript off, Delete opens a confirmation page whose button deletes the channel."""
    factories.make_channel(setup, "sms", name="Doomed")
    page = open_page(java_script_enabled=False)
    sign_in(page, admin)
    _row(page, "Doomed").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading")).to_contain_text(["Doomed"])
    screenshot(page, "channel-delete-nojs")
    page.get_by_role("button", name=re.compile("delete", re.I)).click()
    expect(page).to_have_url(re.compile(r"/channels(\?|$)"))
    expect(page.locator("#flash")).to_contain_text("“Doomed” was deleted.")
    expect(_rows(page)).to_have_count(0)
    assert _stored_channels() == []


def test_send_test_message_from_the_edit_page(page, sign_in, admin, setup, screenshot):
    """The "Send test message" card: a bad recipient is refused next to its field, a good one is
    sent through the channel's provider and the outcome shows in the card, without a reload;
    the send (not the refused recipient) is in the channel's audit history."""
    channel = factories.make_channel(setup, "email", name="Receipts")
    sign_in(page, admin)
    _row(page, "Receipts").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Receipts")).to_be_visible()
    _mark_page(page)
    recipient = page.get_by_label("Email address to send to")

    recipient.fill("not an address")
    page.get_by_role("button", name="Send test message").click()
    expect(page.locator("#test_to-error")).to_be_visible()
    expect(page.get_by_label("Email address to send to")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email address to send to")).to_have_value("not an address")
    expect(page.locator("#test-send-result .badge")).to_have_count(0)

    page.get_by_label("Email address to send to").fill("ops@example.org")
    page.get_by_role("button", name="Send test message").click()
    result = page.locator("#test-send-result")
    expect(result.locator(".badge")).to_have_text("Sent")
    expect(result).to_contain_text("ops@example.org")
    expect(page.locator("#test_to-error")).to_have_count(0)
    _assert_not_reloaded(page)
    screenshot(page, "channel-test-send")

    end_test_transaction()  # see what the server committed
    sends = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.resource_id == channel.id, AuditEvent.action == "channel.test_send"
        )
    ).all()
    assert [(event.changes["to"], event.changes["ok"]) for event in sends] == [
        ("ops@example.org", True)
    ]
