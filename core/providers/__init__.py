"""The provider catalogue: which channel types each provider serves and its credential fields.

Each provider is one module (``smtp``, ``sendgrid``, ``mailgun``, ``ses``, ``postmark``,
``twilio``, ``vonage``, ``messagebird``, ``console``) declaring its credential fields, its
connection check, its test send and its default base URLs; the HTTP providers share one
transport (``core.providers.transport``). The API validation, the console's form fields, the
masking of secrets, the connection checks and the test sends all read this catalogue.
"""

from __future__ import annotations

from core.providers import (
    console,
    mailgun,
    messagebird,
    postmark,
    sendgrid,
    ses,
    smtp,
    twilio,
    vonage,
)
from core.providers.spec import SECRET_MASK, CredentialField, OutgoingMessage, Provider

__all__ = [
    "DEFAULT_BASE_URLS",
    "PROVIDERS",
    "SECRET_MASK",
    "CredentialField",
    "OutgoingMessage",
    "Provider",
    "mask_credentials",
    "providers_for",
]

PROVIDERS: dict[str, Provider] = {
    module.PROVIDER.name: module.PROVIDER
    for module in (smtp, sendgrid, mailgun, ses, postmark, twilio, vonage, messagebird, console)
}

# Every key PROVIDER_BASE_URLS may override, with the provider's own URL.
DEFAULT_BASE_URLS: dict[str, str] = {
    key: url for provider in PROVIDERS.values() for key, url in provider.base_urls.items()
}


def providers_for(channel_type: str) -> list[Provider]:
    """The providers that can serve a channel type, in catalogue order."""
    return [p for p in PROVIDERS.values() if channel_type in p.channel_types]


def mask_credentials(provider_name: str, credentials: dict) -> dict:
    """Credentials as they may be shown: every secret field replaced by a fixed mask."""
    provider = PROVIDERS.get(provider_name)
    secret = set(provider.secret_fields) if provider else set(credentials)
    return {
        key: (SECRET_MASK if key in secret and value not in (None, "") else value)
        for key, value in credentials.items()
    }
