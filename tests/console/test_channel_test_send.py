"""Console "Send test message" on a channel's edit page: htmx fragment and full page, real
deliveries (console provider log, a local SMTP server), inline errors, permissions, isolation."""

from __future__ import annotations

import logging
from email import message_from_string

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent
from core.services import channels as channel_service
from tests import factories
from tests.conftest import base_config
from tests.console.helpers import (
    csrf_token,
    field_errors,
    htmx_headers,
    open_tenant_in_session,
    soup,
)
from tests.services.fake_providers import SmtpServer, closed_port


@pytest.fixture
def app_config(database_url):
    """Provider calls give up quickly (the failing SMTP case is a refused connection)."""
    config = base_config(database_url)
    config.update(PROVIDER_TIMEOUT=3.0)
    return config


@pytest.fixture
def console_log():
    """Records what the console provider writes to the log."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("channels.console_provider")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _edit_path(channel) -> str:
    return f"/channels/{channel.id}/edit"


def _send_htmx(console, channel, to):
    """POST the card's form the way htmx does (CSRF token in the header from <body>)."""
    return console.post(
        f"/channels/{channel.id}/test",
        data={"to": to},
        headers=htmx_headers(console, _edit_path(channel)),
    )


def _send_plain(console, channel, to):
    """POST the card's form without JavaScript (CSRF token in the hidden field)."""
    token = csrf_token(console, _edit_path(channel))
    return console.post(f"/channels/{channel.id}/test", data={"csrf_token": token, "to": to})


def _result(response) -> str:
    """The words of the outcome region of the card."""
    return " ".join(soup(response).find(id="test-send-result").get_text(" ").split())


def _test_send_events() -> list[AuditEvent]:
    return list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.action == "channel.test_send"))
    )


@pytest.mark.parametrize(
    "channel_type, label, placeholder, input_type",
    [
        ("email", "Email address to send to", "you@example.com", "email"),
        ("sms", "Phone number to send to", "+14155550123", "tel"),
    ],
)
def test_edit_page_shows_the_card_by_type(
    console, setup, channel_type, label, placeholder, input_type
):
    """The edit page has the card; label, placeholder and input type follow the channel type."""
    channel = factories.make_channel(setup, channel_type)
    page = soup(console.get(_edit_path(channel)))
    card = page.find(id="test-send")
    assert card.find("h2").get_text() == "Send test message"
    form = card.find("form", id="test-send-form")
    assert form["action"] == form["hx-post"] == f"/channels/{channel.id}/test"
    assert form.find("input", attrs={"name": "csrf_token"})["value"]
    field = form.find("input", id="test_to")
    assert form.find("label", attrs={"for": "test_to"}).get_text() == label
    assert (field["name"], field["placeholder"], field["type"]) == ("to", placeholder, input_type)
    assert form.find("button", type="submit").get_text() == "Send test message"


@pytest.mark.parametrize(
    "channel_type, to", [("email", "dev@example.org"), ("sms", "+442071838750")]
)
def test_console_provider_fragment_with_htmx(console, setup, console_log, channel_type, to):
    """htmx: only the card's form comes back, saying the message went to the app log."""
    channel = factories.make_channel(setup, channel_type)
    response = _send_htmx(console, channel, to)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<nav" not in html
    assert soup(response).find("form")["id"] == "test-send-form"
    assert _result(response) == f"Sent Written to the app log (console provider) for {to}."
    assert soup(response).find(id="test_to")["value"] == to
    [record] = console_log
    assert to in record.getMessage() and channel.id in record.getMessage()
    [event] = _test_send_events()
    assert event.resource_id == channel.id and event.changes["ok"] is True


def test_console_provider_full_page_without_javascript(console, setup, console_log):
    """Without htmx the edit page comes back whole, with the outcome in the card."""
    channel = factories.make_channel(setup, "email", name="Support Email")
    response = _send_plain(console, channel, "dev@example.org")
    assert response.status_code == 200
    page = soup(response)
    assert page.find("html") is not None and page.find(id="channel-form") is not None
    assert page.find("h1").get_text() == "Support Email"
    assert _result(response) == (
        "Sent Written to the app log (console provider) for dev@example.org."
    )
    assert len(console_log) == 1
    assert len(_test_send_events()) == 1


def test_smtp_message_is_received(console, setup):
    """Through an SMTP integration the message reaches a real local SMTP server."""
    with SmtpServer() as server:
        smtp = factories.make_integration(
            setup.tenant,
            provider="smtp",
            name="Local SMTP",
            credentials={"host": "127.0.0.1", "port": server.port, "use_tls": False},
        )
        channel = factories.make_channel(
            setup, "email", integration_id=smtp.id, send_from_email="hello@example.com"
        )
        response = _send_htmx(console, channel, "Dev@Example.org")
    assert response.status_code == 200
    assert _result(response) == f"Sent Sent to Dev@example.org through 127.0.0.1:{server.port}."
    [received] = server.messages
    assert received["rcpt_tos"] == ["Dev@example.org"]
    message = message_from_string(received["content"])
    assert message["From"] == "hello@example.com"
    assert message["Subject"] == "Test message from Channels"


def test_provider_failure_is_shown_in_plain_words(console, setup):
    """A provider that cannot be reached: "Not sent" and why, in the card (and audited)."""
    smtp = factories.make_integration(
        setup.tenant,
        provider="smtp",
        credentials={"host": "127.0.0.1", "port": closed_port(), "use_tls": False},
    )
    channel = factories.make_channel(setup, "email", integration_id=smtp.id)
    response = _send_htmx(console, channel, "dev@example.org")
    assert response.status_code == 200
    text = _result(response)
    assert text.startswith("Not sent ") and "refused" in text.lower()
    [event] = _test_send_events()
    assert event.changes["ok"] is False


@pytest.mark.parametrize(
    "channel_type, to, message",
    [
        ("email", "not an address", "Enter a valid email address"),
        ("email", "", "required"),
        ("sms", "4155550123", "Enter the number in E.164 format, e.g. +14155550123."),
        ("sms", "dev@example.org", "Enter the number in E.164 format"),
    ],
)
def test_invalid_recipient_is_shown_next_to_the_field(
    console, setup, console_log, channel_type, to, message
):
    """The service's error on ``to`` sits under the recipient field; nothing is sent."""
    channel = factories.make_channel(setup, channel_type)
    response = _send_htmx(console, channel, to)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    errors = field_errors(response)
    assert list(errors) == ["test_to"]
    assert message.lower() in errors["test_to"][0].lower()
    field = soup(response).find(id="test_to")
    assert field["aria-invalid"] == "true" and "test_to-error" in field["aria-describedby"]
    assert field["value"] == to
    assert _result(response) == ""
    plain = _send_plain(console, channel, to)
    assert plain.status_code == 422
    assert list(field_errors(plain)) == ["test_to"]
    assert console_log == [] and _test_send_events() == []


def test_disabled_channel_shows_the_reason_inline(console, setup, console_log):
    """A disabled channel: the service's 409 message in the card, not an error page."""
    channel = factories.make_channel(setup, "email")
    channel_service.update_channel(
        setup.tenant.id, channel.id, {"status": "disabled"}, factories.ACTOR
    )
    db.session.commit()
    response = _send_htmx(console, channel, "dev@example.org")
    assert response.status_code == 200
    assert _result(response) == (
        "Not sent This channel is disabled; enable it before sending a test message."
    )
    plain = _send_plain(console, channel, "dev@example.org")
    assert plain.status_code == 409
    assert soup(plain).find(id="channel-form") is not None
    assert "This channel is disabled" in _result(plain)
    assert console_log == [] and _test_send_events() == []


def test_unverified_domain_shows_the_reason_inline(console, setup):
    """A channel whose domain is not verified yet names the domain to verify."""
    domain = factories.make_domain(setup.tenant, "pending.example.com", verified=False)
    channel = factories.make_channel(
        setup, "email", send_from_email="a@pending.example.com", email_domain_id=domain.id
    )
    response = _send_htmx(console, channel, "dev@example.org")
    assert "The domain pending.example.com is not verified yet" in _result(response)


def test_missing_csrf_token_is_refused(console, setup, console_log):
    """Without the CSRF token (field or header) the request is refused with 400."""
    channel = factories.make_channel(setup, "email")
    url = f"/channels/{channel.id}/test"
    assert console.post(url, data={"to": "dev@example.org"}).status_code == 400
    assert (
        console.post(url, data={"to": "dev@example.org"}, headers={"HX-Request": "true"})
    ).status_code == 400
    assert console_log == [] and _test_send_events() == []


def test_support_staff_get_403_and_no_control(support_console, setup, console_log):
    """Read-only support staff see no card on the edit page, and the route refuses them."""
    channel = factories.make_channel(setup, "email")
    open_tenant_in_session(support_console, setup.tenant.id)
    page = support_console.get(_edit_path(channel))
    assert page.status_code == 200
    assert soup(page).find(id="test-send") is None
    assert "Send test message" not in page.get_data(as_text=True)
    response = support_console.post(
        f"/channels/{channel.id}/test",
        data={"to": "dev@example.org"},
        headers=htmx_headers(support_console, _edit_path(channel)),
    )
    assert response.status_code == 403
    assert console_log == [] and _test_send_events() == []


def test_another_tenants_channel_is_not_found(console, setup, other_tenant, console_log):
    """Another tenant's channel answers 404, exactly like an unknown id; nothing is sent."""
    theirs = factories.make_channel(factories.make_ready_tenant(other_tenant, "other.example.com"))
    headers = htmx_headers(console, "/channels")
    for channel_id in (theirs.id, "00000000-0000-4000-8000-000000000000", "nope"):
        response = console.post(
            f"/channels/{channel_id}/test", data={"to": "dev@example.org"}, headers=headers
        )
        assert response.status_code == 404, channel_id
    assert console_log == [] and _test_send_events() == []
