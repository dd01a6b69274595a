"""MessageBird: an access key (``AccessKey`` authorization), checked by reading the balance."""

from __future__ import annotations

from core.providers.endpoints import base_url
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import HttpCall, expect_status, http_request, json_body

LABEL = "MessageBird"
BASE_URLS = {"messagebird": "https://rest.messagebird.com"}
FIELDS = (CredentialField("access_key", "Access key", secret=True),)


def _auth(credentials: dict) -> str:
    """MessageBird's ``AccessKey`` authorization header value."""
    return f"AccessKey {credentials['access_key']}"


def check(credentials: dict) -> str:
    """Read the balance with the access key."""
    call = HttpCall(
        "GET", base_url("messagebird") + "/balance", {"Authorization": _auth(credentials)}
    )
    expect_status(LABEL, http_request(LABEL, call))
    return "MessageBird accepted the access key."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Create a message for the one recipient."""
    body = json_body(
        {"originator": message.sender, "recipients": [message.to], "body": message.text}
    )
    call = HttpCall(
        "POST",
        base_url("messagebird") + "/messages",
        {"Authorization": _auth(credentials), "Content-Type": "application/json"},
        body,
    )
    expect_status(LABEL, http_request(LABEL, call), (200, 201))
    return f"MessageBird accepted the message to {message.to}."


PROVIDER = Provider(
    "messagebird", LABEL, ("sms",), FIELDS, check=check, send=send, base_urls=BASE_URLS
)
