"""Checking an integration's credentials with its provider, and keeping the outcome.

The provider modules (``core.providers.<name>``) hold each provider's check; this module picks
the check, turns its outcome into one scrubbed sentence (``core.providers.outcome``), and hands
it to ``core.services.integrations.record_check``, which stores it on the integration
(``last_checked_at``, ``last_check_ok``, ``last_check_message``) and audits it. Settings
(``PROVIDER_TIMEOUT``, ``PROVIDER_BASE_URLS``, ``PROVIDER_CA_FILE``) are described in
``core.providers.transport`` and ``core.providers.endpoints``.
"""

from __future__ import annotations

from core.models import Integration
from core.providers import PROVIDERS
from core.providers.outcome import ProviderResult, run_provider_call
from core.services.audit import Actor
from core.services.integrations import (
    CheckOutcome,
    credentials_of,
    record_check,
)
from core.tenancy import get_for_tenant


def check_credentials(provider: str, credentials: dict) -> ProviderResult:
    """Ask the provider whether these credentials work (no database access)."""
    spec = PROVIDERS.get(provider)
    if spec is None or spec.check is None:
        return ProviderResult(False, f"Checking {provider} integrations is not supported.")
    return run_provider_call(spec, credentials, lambda: spec.check(credentials))


def check_integration(tenant_id: str, integration_id: str, actor: Actor) -> CheckOutcome:
    """Check an integration's credentials with its provider; store and audit the outcome."""
    integration = get_for_tenant(Integration, tenant_id, integration_id)
    result = check_credentials(integration.provider, credentials_of(integration))
    return record_check(tenant_id, integration, result, actor)
