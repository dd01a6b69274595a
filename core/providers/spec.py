"""What every provider module declares: its credential fields, its calls and its base URLs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

SECRET_MASK = "********"


@dataclass(frozen=True)
class CredentialField:
    """One credential a provider needs; ``secret`` ones are write-only and scrubbed."""

    name: str
    label: str
    kind: str = "string"  # string | host | integer | boolean | choice
    required: bool = True
    secret: bool = False
    choices: tuple[str, ...] = ()
    default: object = None
    max_length: int = 500


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to hand to a provider; the models stay out of the provider modules."""

    channel_id: str
    channel_type: str
    sender: str  # the channel's address (email) or E.164 number (sms)
    to: str
    subject: str
    text: str


# A connection check takes the credentials and returns a sentence saying what worked; a test
# send also takes the message. Both raise ProviderFailure with a sentence saying what did not.
Check = Callable[[dict], str]
Send = Callable[[dict, OutgoingMessage], str]


@dataclass(frozen=True)
class Provider:
    """A provider: the channel types it serves, its credential fields, check, send, base URLs."""

    name: str
    label: str
    channel_types: tuple[str, ...]
    fields: tuple[CredentialField, ...] = field(default_factory=tuple)
    check: Check | None = field(default=None, compare=False, repr=False)
    send: Send | None = field(default=None, compare=False, repr=False)
    # PROVIDER_BASE_URLS key -> default URL (mailgun has one per region, ses a {region} field)
    base_urls: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """The names of the credential fields that are secret."""
        return tuple(f.name for f in self.fields if f.secret)

    def field(self, name: str) -> CredentialField | None:
        """The credential field called ``name``, if the provider has one."""
        return next((f for f in self.fields if f.name == name), None)
