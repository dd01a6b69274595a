"""Amazon SES (API v2): an access key pair in one region, every call signed with botocore's
AWS Signature Version 4 (``SigV4Auth``), sent over the shared HTTP transport."""

from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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

LABEL = "Amazon SES"
SERVICE = "ses"  # the SigV4 signing name of SES, v1 and v2 alike
BASE_URLS = {"ses": "https://email.{region}.amazonaws.com"}
FIELDS = (
    CredentialField("access_key_id", "Access key ID"),
    CredentialField("secret_access_key", "Secret access key", secret=True),
    CredentialField("region", "Region", max_length=32),
)


def sigv4_headers(
    method: str,
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str = SERVICE,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """``headers`` plus the ones botocore's SigV4Auth adds to sign the request now.

    Names come back lower-case (HTTP header names are case-insensitive).
    """
    request = AWSRequest(method=method, url=url, data=body or None, headers=dict(headers or {}))
    SigV4Auth(Credentials(access_key_id, secret_access_key), service, region).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def signed_call(credentials: dict, method: str, path: str, body: bytes = b"") -> HttpCall:
    """A signed call to the SES v2 API in the integration's region."""
    region = credentials["region"]
    url = base_url("ses", region=region) + path
    headers = {"Content-Type": "application/json"} if body else {}
    signed = sigv4_headers(
        method,
        url,
        access_key_id=credentials["access_key_id"],
        secret_access_key=credentials["secret_access_key"],
        region=region,
        body=body,
        headers=headers,
    )
    return HttpCall(method, url, signed, body or None)


def check(credentials: dict) -> str:
    """Read the account (GetAccount): good keys, and whether sending is enabled there."""
    answer = http_request(LABEL, signed_call(credentials, "GET", "/v2/email/account"))
    expect_status(LABEL, answer)
    if answer_object(answer).get("SendingEnabled") is False:
        raise ProviderFailure(
            f"Amazon SES accepted the keys, but sending is paused in {credentials['region']}."
        )
    return f"Amazon SES accepted the access key in {credentials['region']}."


def send(credentials: dict, message: OutgoingMessage) -> str:
    """Send the message with SendEmail (a simple, plain-text message)."""
    body = json_body(
        {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                }
            },
        }
    )
    call = signed_call(credentials, "POST", "/v2/email/outbound-emails", body)
    expect_status(LABEL, http_request(LABEL, call))
    return f"Amazon SES accepted the message to {message.to}."


PROVIDER = Provider("ses", LABEL, ("email",), FIELDS, check=check, send=send, base_urls=BASE_URLS)
