"""The provider catalogue: which channel types each provider serves and its credential fields.

Each provider declares its credential fields once; the API validation, the console's form
fields, the masking of secrets and the connection checks all read this catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    kind: str = "string"  # string | integer | boolean | choice
    required: bool = True
    secret: bool = False
    choices: tuple[str, ...] = ()
    default: object = None
    max_length: int = 500


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    channel_types: tuple[str, ...]
    fields: tuple[CredentialField, ...] = field(default_factory=tuple)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)

    def field(self, name: str) -> CredentialField | None:
        return next((f for f in self.fields if f.name == name), None)


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "smtp",
            "SMTP",
            ("email",),
            (
                CredentialField("host", "Host", max_length=253),
                CredentialField("port", "Port", kind="integer", default=587),
                CredentialField("username", "Username", required=False),
                CredentialField("password", "Password", required=False, secret=True),
                CredentialField("use_tls", "Use STARTTLS", kind="boolean", default=True),
            ),
        ),
        Provider(
            "sendgrid",
            "SendGrid",
            ("email",),
            (CredentialField("api_key", "API key", secret=True),),
        ),
        Provider(
            "mailgun",
            "Mailgun",
            ("email",),
            (
                CredentialField("api_key", "API key", secret=True),
                CredentialField("domain", "Sending domain", max_length=253),
                CredentialField(
                    "region", "Region", kind="choice", choices=("us", "eu"), default="us"
                ),
            ),
        ),
        Provider(
            "ses",
            "Amazon SES",
            ("email",),
            (
                CredentialField("access_key_id", "Access key ID"),
                CredentialField("secret_access_key", "Secret access key", secret=True),
                CredentialField("region", "Region", max_length=32),
            ),
        ),
        Provider(
            "postmark",
            "Postmark",
            ("email",),
            (CredentialField("server_token", "Server token", secret=True),),
        ),
        Provider(
            "twilio",
            "Twilio",
            ("sms",),
            (
                CredentialField("account_sid", "Account SID"),
                CredentialField("auth_token", "Auth token", secret=True),
            ),
        ),
        Provider(
            "vonage",
            "Vonage",
            ("sms",),
            (
                CredentialField("api_key", "API key"),
                CredentialField("api_secret", "API secret", secret=True),
            ),
        ),
        Provider(
            "messagebird",
            "MessageBird",
            ("sms",),
            (CredentialField("access_key", "Access key", secret=True),),
        ),
        Provider("console", "Console (writes to the app log)", ("email", "sms"), ()),
    )
}

SECRET_MASK = "********"


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
