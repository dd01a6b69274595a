"""SendGrid: an API key, checked against ``/v3/scopes``; test sends through ``/v3/mail/send``."""

from __future__ import annotations

from core.providers.endpoints import base_url
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import HttpCall, expect_status, http_request, json_body

LABEL = "SendGrid"
BASE_URLS = {"sendgrid": "https://api.sendgrid.com"}
FIELDS = (CredentialField("api_key", "API key", secret=True),)


def check(credentials: dict) -> str:
    """Ask SendGrid which scopes the API key has; any 200 means the key works."""
    call = HttpCall(
        "GET",
        base_url("sendgrid") + "/v3/scopes",
        {"Authorization": f"Bearer {credentials['api_key']}"},
    )
    expect_status(LABEL, http_request(LABEL, call))
    return "SendGrid accepted the API key."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the message with the v3 Mail Send API (202 means accepted)."""
    body = json_body(
        {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": {"email": message.sender},
            "subject": message.subject,
            "content": [{"type": "text/plain", "value": message.text}],
        }
    )
    call = HttpCall(
        "POST",
        base_url("sendgrid") + "/v3/mail/send",
        {"Authorization": f"Bearer {credentials['api_key']}", "Content-Type": "application/json"},
        body,
    )
    expect_status(LABEL, http_request(LABEL, call), (200, 202))
    return f"SendGrid accepted the message to {message.to}."


PROVIDER = Provider(
    "sendgrid", LABEL, ("email",), FIELDS, check=check, send=send, base_urls=BASE_URLS
)
