"""Mailgun: an API key for one sending domain in the US or EU region."""

from __future__ import annotations

import urllib.parse

from core.providers.endpoints import base_url
from core.providers.outcome import ProviderFailure
from core.providers.spec import CredentialField, OutgoingMessage, Provider
from core.providers.transport import (
    HttpCall,
    basic_auth,
    expect_status,
    form_body,
    http_request,
)

LABEL = "Mailgun"
BASE_URLS = {"mailgun": "https://api.mailgun.net", "mailgun_eu": "https://api.eu.mailgun.net"}
FIELDS = (
    CredentialField("api_key", "API key", secret=True),
    CredentialField("domain", "Sending domain", max_length=253),
    CredentialField("region", "Region", kind="choice", choices=("us", "eu"), default="us"),
)


def region_base_url(credentials: dict) -> str:
    """The API of the integration's region (Mailgun keeps EU data on its own host)."""
    return base_url("mailgun_eu" if credentials.get("region") == "eu" else "mailgun")


def check(credentials: dict) -> str:
    """Look the sending domain up with the key: 404 means a good key without that domain."""
    domain = urllib.parse.quote(credentials["domain"], safe="")
    call = HttpCall(
        "GET",
        f"{region_base_url(credentials)}/v3/domains/{domain}",
        {"Authorization": basic_auth("api", credentials["api_key"])},
    )
    answer = http_request(LABEL, call)
    if answer.status == 404:
        region = credentials.get("region", "us").upper()
        raise ProviderFailure(
            f"Mailgun accepted the API key but has no domain {credentials['domain']} "
            f"in the {region} region."
        )
    expect_status(LABEL, answer)
    return f"Mailgun accepted the API key for {credentials['domain']}."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the message through the domain's ``messages`` endpoint (form-encoded)."""
    domain = urllib.parse.quote(credentials["domain"], safe="")
    call = HttpCall(
        "POST",
        f"{region_base_url(credentials)}/v3/{domain}/messages",
        {
            "Authorization": basic_auth("api", credentials["api_key"]),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        form_body(
            {
                "from": message.sender,
                "to": message.to,
                "subject": message.subject,
                "text": message.text,
            }
        ),
    )
    expect_status(LABEL, http_request(LABEL, call))
    return f"Mailgun accepted the message to {message.to}."


PROVIDER = Provider(
    "mailgun", LABEL, ("email",), FIELDS, check=check, send=send, base_urls=BASE_URLS
)
