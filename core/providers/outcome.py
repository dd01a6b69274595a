"""A provider call's outcome: ok or not, and one plain sentence that never carries a secret."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from core.providers.spec import SECRET_MASK, Provider

MESSAGE_MAX = 500


@dataclass(frozen=True)
class ProviderResult:
    """What a provider call came to: ``ok`` and one plain sentence for people."""

    ok: bool
    message: str


class ProviderFailure(Exception):
    """A provider call failed; ``message`` says why in plain words (never with secrets)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def secret_values(provider: Provider | None, credentials: dict) -> list[str]:
    """The secret credential values, longest first (so no secret is masked only in part)."""
    names = provider.secret_fields if provider else tuple(credentials)
    values = [str(credentials[n]) for n in names if credentials.get(n) not in (None, "")]
    return sorted(values, key=len, reverse=True)


def scrub(text: str, secrets_: list[str]) -> str:
    """``text`` with every secret value (and its URL-encoded form) replaced by the mask."""
    for secret in secrets_:
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            if form:
                text = text.replace(form, SECRET_MASK)
    return text


def run_provider_call(
    provider: Provider | None, credentials: dict, call: Callable[[], str]
) -> ProviderResult:
    """Run a provider call and turn its outcome into a scrubbed ProviderResult."""
    try:
        result = ProviderResult(True, call())
    except ProviderFailure as exc:
        result = ProviderResult(False, exc.message)
    except KeyError as exc:  # a required credential is missing (stored before a catalogue change)
        result = ProviderResult(False, f"The integration has no {exc.args[0]} credential; edit it.")
    message = clip(scrub(result.message, secret_values(provider, credentials)), MESSAGE_MAX)
    return ProviderResult(result.ok, message)
