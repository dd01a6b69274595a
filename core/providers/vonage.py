"""Vonage (Nexmo SMS API): an API key and secret, sent as request parameters as Vonage asks."""

from __future__ import annotations

import urllib.parse

from core.providers.endpoints import base_url
from core.providers.outcome import ProviderFailure
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import (
    HttpCall,
    answer_object,
    expect_status,
    form_body,
    http_request,
)

LABEL = "Vonage"
BASE_URLS = {"vonage": "https://rest.nexmo.com"}
FIELDS = (
    CredentialField("api_key", "API key"),
    CredentialField("api_secret", "API secret", secret=True),
)


def check(credentials: dict) -> str:
    """Read the account balance with the key and secret."""
    query = urllib.parse.urlencode(
        {"api_key": credentials["api_key"], "api_secret": credentials["api_secret"]}
    )
    call = HttpCall("GET", f"{base_url('vonage')}/account/get-balance?{query}")
    expect_status(LABEL, http_request(LABEL, call))
    return "Vonage accepted the API key and secret."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the SMS; Vonage answers 200 with a per-message status, "0" meaning accepted."""
    call = HttpCall(
        "POST",
        base_url("vonage") + "/sms/json",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form_body(
            {
                "api_key": credentials["api_key"],
                "api_secret": credentials["api_secret"],
                "from": message.sender.lstrip("+"),
                "to": message.to.lstrip("+"),
                "text": message.text,
            }
        ),
    )
    answer = http_request(LABEL, call)
    expect_status(LABEL, answer)
    messages = answer_object(answer).get("messages")
    messages = messages if isinstance(messages, list) else []
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    if str(first.get("status")) != "0":
        reason = first.get("error-text") or "no status in the answer"
        raise ProviderFailure(f"Vonage refused the message: {reason}.")
    return f"Vonage accepted the message to {message.to}."


PROVIDER = Provider("vonage", LABEL, ("sms",), FIELDS, check=check, send=send, base_urls=BASE_URLS)
