""" "Send test message" on a channel: one real message through the channel's provider.

Each provider module (``core.providers.<name>``) holds its own send: the console provider
writes the message to the log (logger ``channels.console_provider``); smtp sends it through the
configured server; every HTTP provider is called at its real send endpoint (the base URLs come
from ``PROVIDER_BASE_URLS`` like the credential checks).

Only an ``available`` channel sends: a disabled channel (or one whose integration is disabled
or whose number was released) and a channel whose domain is not verified yet answer 409.
A provider that refuses the message is not an error of the request: the outcome says
``ok: false`` and why, and the attempt is audited either way.
"""

from __future__ import annotations

from core import rules
from core.errors import Conflict, FieldErrors
from core.models import Channel
from core.providers import PROVIDERS, OutgoingMessage
from core.providers.outcome import ProviderResult, run_provider_call
from core.services import audit
from core.services.audit import Actor
from core.services.integrations import credentials_of
from core.tenancy import get_for_tenant

SUBJECT = "Test message from Channels"


def message_text(channel: Channel) -> str:
    """The test message's text, naming the channel."""
    if channel.channel_type == "sms":
        return f"Test message from your channel {channel.name}. It can send."
    return (
        f"This is a test message from the channel \u201c{channel.name}\u201d.\n\n"
        "If you can read it, the channel can send email.\n"
    )


def clean_recipient(channel: Channel, to: object) -> str:
    """An email address for email channels, an E.164 number for SMS ones (core.rules)."""
    errors = FieldErrors()
    if channel.channel_type == "email":
        parsed = rules.parse_email_address(to, errors, "to")
        recipient = parsed[0] if parsed else None
    else:
        recipient = rules.parse_e164(to, errors, "to")
    errors.raise_if_any("The test message could not be sent.")
    return recipient


def _refuse_unless_available(channel: Channel) -> None:
    """Conflict saying why, unless the channel can send."""
    if channel.status == "available":
        return
    if channel.status == "pending_verification":
        domain = channel.email_domain.domain if channel.email_domain else "its domain"
        raise Conflict(f"The domain {domain} is not verified yet; verify it before sending.")
    if channel.integration.status != "active":
        raise Conflict(f"The integration {channel.integration.name} is disabled; enable it first.")
    if channel.phone_number is not None and channel.phone_number.status != "active":
        raise Conflict("The channel's phone number was released; it cannot send.")
    raise Conflict("This channel is disabled; enable it before sending a test message.")


def send_test_message(tenant_id: str, channel_id: str, to: object, actor: Actor) -> ProviderResult:
    """Send one test message through an available channel's provider; audited either way."""
    channel = get_for_tenant(Channel, tenant_id, channel_id)
    recipient = clean_recipient(channel, to)
    _refuse_unless_available(channel)
    integration = channel.integration
    provider = PROVIDERS.get(integration.provider)
    if provider is None or provider.send is None:
        raise Conflict(f"Test messages are not supported for {integration.provider} yet.")
    credentials = credentials_of(integration)
    message = OutgoingMessage(
        channel_id=channel.id,
        channel_type=channel.channel_type,
        sender=channel.send_from_email or channel.send_from_phone_number,
        to=recipient,
        subject=SUBJECT,
        text=message_text(channel),
    )
    result = run_provider_call(provider, credentials, lambda: provider.send(credentials, message))
    audit.record(
        tenant_id,
        actor,
        "channel.test_send",
        "channel",
        channel.id,
        {"to": recipient, "ok": result.ok, "message": result.message},
    )
    return result
