"""Twilio: an account SID and auth token (HTTP Basic), checked by reading the account."""

from __future__ import annotations

import urllib.parse

from core.providers.endpoints import base_url
from core.providers.outcome import ProviderFailure
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import (
    HttpCall,
    answer_object,
    basic_auth,
    expect_status,
    form_body,
    http_request,
)

LABEL = "Twilio"
BASE_URLS = {"twilio": "https://api.twilio.com"}
FIELDS = (
    CredentialField("account_sid", "Account SID"),
    CredentialField("auth_token", "Auth token", secret=True),
)


def _account_url(credentials: dict) -> str:
    """The account's resource URL (without an extension)."""
    sid = urllib.parse.quote(credentials["account_sid"], safe="")
    return f"{base_url('twilio')}/2010-04-01/Accounts/{sid}"


def _auth(credentials: dict) -> str:
    """HTTP Basic with the account SID and auth token."""
    return basic_auth(credentials["account_sid"], credentials["auth_token"])


def check(credentials: dict) -> str:
    """Read the account: good credentials, and the account must be active."""
    call = HttpCall(
        "GET", _account_url(credentials) + ".json", {"Authorization": _auth(credentials)}
    )
    answer = http_request(LABEL, call)
    expect_status(LABEL, answer)
    status = answer_object(answer).get("status")
    if status and status != "active":
        raise ProviderFailure(f"Twilio accepted the credentials, but the account is {status}.")
    return "Twilio accepted the account SID and auth token."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Create a Message resource (201 means queued)."""
    call = HttpCall(
        "POST",
        _account_url(credentials) + "/Messages.json",
        {
            "Authorization": _auth(credentials),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        form_body({"To": message.to, "From": message.sender, "Body": message.text}),
    )
    expect_status(LABEL, http_request(LABEL, call), (200, 201))
    return f"Twilio accepted the message to {message.to}."


PROVIDER = Provider("twilio", LABEL, ("sms",), FIELDS, check=check, send=send, base_urls=BASE_URLS)
