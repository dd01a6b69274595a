"""Where providers are called: each module's default base URL, or PROVIDER_BASE_URLS.

``PROVIDER_BASE_URLS`` overrides where providers are called (tests, egress proxies). Either a
JSON object ``{"sendgrid": "http://127.0.0.1:8025", ...}`` or comma-separated ``provider=url``
pairs (``sendgrid=http://127.0.0.1:8025,twilio=http://...``); instance config may also set a
dict. Keys are the provider modules' ``BASE_URLS`` keys: ``sendgrid``, ``mailgun`` (US region),
``mailgun_eu`` (falls back to ``mailgun`` when only that is overridden), ``ses`` (``{region}``
in the URL is replaced by the integration's region), ``postmark``, ``twilio``, ``vonage``,
``messagebird``.
"""

from __future__ import annotations

import json

from flask import current_app

from core.providers.outcome import ProviderFailure


def default_base_urls() -> dict[str, str]:
    """Every provider module's default base URLs, by PROVIDER_BASE_URLS key."""
    # The catalogue imports every provider module and they import this one, so the catalogue
    # is read when a URL is needed, not when this module loads.
    from core.providers import DEFAULT_BASE_URLS

    return DEFAULT_BASE_URLS


def parse_base_urls(value: object) -> dict[str, str]:
    """PROVIDER_BASE_URLS as a dict: a dict, a JSON object, or ``provider=url`` pairs.

    Raises ValueError saying what is wrong with the setting.
    """
    if not value:
        return {}
    if isinstance(value, dict):
        pairs = value
    elif isinstance(value, str) and value.strip().startswith("{"):
        try:
            pairs = json.loads(value)
        except ValueError as exc:
            raise ValueError("it is not a valid JSON object") from exc
        if not isinstance(pairs, dict):
            raise ValueError("it must be a JSON object")
    elif isinstance(value, str):
        pairs = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, url = item.partition("=")
            if not sep:
                raise ValueError("use provider=url pairs, comma-separated")
            pairs[name.strip()] = url.strip()
    else:
        raise ValueError("it must be a JSON object or provider=url pairs")
    unknown = sorted(set(pairs) - set(default_base_urls()))
    if unknown:
        raise ValueError(f"it names unknown providers: {', '.join(unknown)}")
    return {str(k): str(v).rstrip("/") for k, v in pairs.items()}


def base_url(key: str, **template) -> str:
    """The base URL to call for a provider key, with ``{region}``-style fields filled in."""
    overrides = current_app.config["PROVIDER_BASE_URLS"]  # a dict, parsed at start-up
    url = overrides.get(key)
    if url is None and key == "mailgun_eu":
        url = overrides.get("mailgun")
    url = url or default_base_urls()[key]
    return url.format(**template) if template else url
