""" "Send test message" on a channel: one real message through the channel's provider.

The console provider writes the message to the log (logger ``channels.console_provider``);
smtp sends it through the configured server; every HTTP provider is called at its real send
endpoint (the base URLs come from ``PROVIDER_BASE_URLS`` like the credential checks).

Only an ``available`` channel sends: a disabled channel (or one whose integration is disabled
or whose number was released) and a channel whose domain is not verified yet answer 409.
A provider that refuses the message is not an error of the request: the outcome says
``ok: false`` and why, and the attempt is audited either way.
"""

from __future__ import annotations

import logging
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from core import rules
from core.errors import Conflict, FieldErrors
from core.models import Channel
from core.services import audit
from core.services.audit import Actor
from core.services.channels import get_channel
from core.services.integrations import credentials_of
from core.services.provider_checks import (
    HttpCall,
    ProviderFailure,
    ProviderResult,
    base_url,
    basic_auth,
    expect_status,
    form_body,
    http_request,
    json_body,
    mailgun_base_url,
    run_provider_call,
    ses_call,
    smtp_session,
)

console_log = logging.getLogger("channels.console_provider")
# The console provider's output is its delivery, not a diagnostic: always written.
console_log.setLevel(logging.INFO)

SUBJECT = "Test message from Channels"


def message_text(channel: Channel) -> str:
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


# --- per provider ---------------------------------------------------------------------------


def _send_console(channel: Channel, c: dict, to: str, text: str) -> str:
    sender = channel.send_from_email or channel.send_from_phone_number
    console_log.info(
        "channel %s (%s) message from %s to %s: %s%s",
        channel.id,
        channel.channel_type,
        sender,
        to,
        f"[{SUBJECT}] " if channel.channel_type == "email" else "",
        text.strip().replace("\n", " "),
    )
    return f"Written to the app log (console provider) for {to}."


def _send_smtp(channel: Channel, c: dict, to: str, text: str) -> str:
    message = EmailMessage()
    message["From"] = channel.send_from_email
    message["To"] = to
    message["Subject"] = SUBJECT
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=channel.send_from_email.rsplit("@", 1)[1])
    message.set_content(text)
    smtp_session(c, lambda client: client.send_message(message))
    return f"Sent to {to} through {c['host']}:{c.get('port')}."


def _send_sendgrid(channel: Channel, c: dict, to: str, text: str) -> str:
    body = json_body(
        {
            "personalizations": [{"to": [{"email": to}]}],
            "from": {"email": channel.send_from_email},
            "subject": SUBJECT,
            "content": [{"type": "text/plain", "value": text}],
        }
    )
    call = HttpCall(
        "POST",
        base_url("sendgrid") + "/v3/mail/send",
        {"Authorization": f"Bearer {c['api_key']}", "Content-Type": "application/json"},
        body,
    )
    expect_status("SendGrid", http_request("SendGrid", call), (200, 202))
    return f"SendGrid accepted the message to {to}."


def _send_mailgun(channel: Channel, c: dict, to: str, text: str) -> str:
    domain = urllib.parse.quote(c["domain"], safe="")
    call = HttpCall(
        "POST",
        f"{mailgun_base_url(c)}/v3/{domain}/messages",
        {
            "Authorization": basic_auth("api", c["api_key"]),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        form_body({"from": channel.send_from_email, "to": to, "subject": SUBJECT, "text": text}),
    )
    expect_status("Mailgun", http_request("Mailgun", call))
    return f"Mailgun accepted the message to {to}."


def _send_ses(channel: Channel, c: dict, to: str, text: str) -> str:
    body = json_body(
        {
            "FromEmailAddress": channel.send_from_email,
            "Destination": {"ToAddresses": [to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                }
            },
        }
    )
    answer = http_request("Amazon SES", ses_call(c, "POST", "/v2/email/outbound-emails", body))
    expect_status("Amazon SES", answer)
    return f"Amazon SES accepted the message to {to}."


def _send_postmark(channel: Channel, c: dict, to: str, text: str) -> str:
    body = json_body(
        {
            "From": channel.send_from_email,
            "To": to,
            "Subject": SUBJECT,
            "TextBody": text,
            "MessageStream": "outbound",
        }
    )
    call = HttpCall(
        "POST",
        base_url("postmark") + "/email",
        {"X-Postmark-Server-Token": c["server_token"], "Content-Type": "application/json"},
        body,
    )
    answer = http_request("Postmark", call)
    expect_status("Postmark", answer)
    data = answer.json() if isinstance(answer.json(), dict) else {}
    if data.get("ErrorCode") not in (None, 0):
        raise ProviderFailure(
            f"Postmark refused the message: {data.get('Message', 'unknown error')}."
        )
    return f"Postmark accepted the message to {to}."


def _send_twilio(channel: Channel, c: dict, to: str, text: str) -> str:
    sid = urllib.parse.quote(c["account_sid"], safe="")
    call = HttpCall(
        "POST",
        f"{base_url('twilio')}/2010-04-01/Accounts/{sid}/Messages.json",
        {
            "Authorization": basic_auth(c["account_sid"], c["auth_token"]),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        form_body({"To": to, "From": channel.send_from_phone_number, "Body": text}),
    )
    expect_status("Twilio", http_request("Twilio", call), (200, 201))
    return f"Twilio accepted the message to {to}."


def _send_vonage(channel: Channel, c: dict, to: str, text: str) -> str:
    call = HttpCall(
        "POST",
        base_url("vonage") + "/sms/json",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form_body(
            {
                "api_key": c["api_key"],
                "api_secret": c["api_secret"],
                "from": channel.send_from_phone_number.lstrip("+"),
                "to": to.lstrip("+"),
                "text": text,
            }
        ),
    )
    answer = http_request("Vonage", call)
    expect_status("Vonage", answer)
    # Vonage answers 200 with a per-message status; "0" means accepted.
    data = answer.json() if isinstance(answer.json(), dict) else {}
    messages = data.get("messages") if isinstance(data.get("messages"), list) else []
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    if str(first.get("status")) != "0":
        reason = first.get("error-text") or "no status in the answer"
        raise ProviderFailure(f"Vonage refused the message: {reason}.")
    return f"Vonage accepted the message to {to}."


def _send_messagebird(channel: Channel, c: dict, to: str, text: str) -> str:
    body = json_body(
        {"originator": channel.send_from_phone_number, "recipients": [to], "body": text}
    )
    call = HttpCall(
        "POST",
        base_url("messagebird") + "/messages",
        {"Authorization": f"AccessKey {c['access_key']}", "Content-Type": "application/json"},
        body,
    )
    expect_status("MessageBird", http_request("MessageBird", call), (200, 201))
    return f"MessageBird accepted the message to {to}."


SENDERS = {
    "console": _send_console,
    "smtp": _send_smtp,
    "sendgrid": _send_sendgrid,
    "mailgun": _send_mailgun,
    "ses": _send_ses,
    "postmark": _send_postmark,
    "twilio": _send_twilio,
    "vonage": _send_vonage,
    "messagebird": _send_messagebird,
}


def send_test_message(tenant_id: str, channel_id: str, to: object, actor: Actor) -> ProviderResult:
    """Send one test message through an available channel's provider; audited either way."""
    channel = get_channel(tenant_id, channel_id)
    recipient = clean_recipient(channel, to)
    _refuse_unless_available(channel)
    integration = channel.integration
    sender = SENDERS.get(integration.provider)
    if sender is None:
        raise Conflict(f"Test messages are not supported for {integration.provider} yet.")
    credentials = credentials_of(integration)
    text = message_text(channel)
    result = run_provider_call(
        integration.provider, credentials, lambda: sender(channel, credentials, recipient, text)
    )
    audit.record(
        tenant_id,
        actor,
        "channel.test_send",
        "channel",
        channel.id,
        {"to": recipient, "ok": result.ok, "message": result.message},
    )
    return result
