"""Postmark: a server token, checked against ``/server``; test sends through ``/email``."""

from __future__ import annotations

from core.providers.endpoints import base_url
from core.providers.outcome import ProviderFailure
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import (
    HttpCall,
    answer_object,
    expect_status,
    http_request,
    json_body,
)

LABEL = "Postmark"
BASE_URLS = {"postmark": "https://api.postmarkapp.com"}
FIELDS = (CredentialField("server_token", "Server token", secret=True),)


def check(credentials: dict) -> str:
    """Read the server the token belongs to."""
    call = HttpCall(
        "GET",
        base_url("postmark") + "/server",
        {"X-Postmark-Server-Token": credentials["server_token"]},
    )
    expect_status(LABEL, http_request(LABEL, call))
    return "Postmark accepted the server token."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the message on the ``outbound`` stream; a non-zero ErrorCode is a refusal."""
    body = json_body(
        {
            "From": message.sender,
            "To": message.to,
            "Subject": message.subject,
            "TextBody": message.text,
            "MessageStream": "outbound",
        }
    )
    call = HttpCall(
        "POST",
        base_url("postmark") + "/email",
        {
            "X-Postmark-Server-Token": credentials["server_token"],
            "Content-Type": "application/json",
        },
        body,
    )
    answer = http_request(LABEL, call)
    expect_status(LABEL, answer)
    data = answer_object(answer)
    if data.get("ErrorCode") not in (None, 0):
        raise ProviderFailure(
            f"Postmark refused the message: {data.get('Message', 'unknown error')}."
        )
    return f"Postmark accepted the message to {message.to}."


PROVIDER = Provider(
    "postmark", LABEL, ("email",), FIELDS, check=check, send=send, base_urls=BASE_URLS
)
