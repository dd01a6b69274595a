"""Factory functions with defaults plus ``**kwargs``; each one commits what it made.

They go through the services (so the rules hold) except where a test needs a state the rules
would not produce directly (``make_domain(verified=True)`` skips the DNS round trip).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from core.db_types import utcnow
from core.extensions import db
from core.models import EmailDomain, Tenant, TotpFactor
from core.services import accounts, channels, integrations, mfa, phone_numbers
from core.services.audit import Actor

_counter = itertools.count(1)
ACTOR = Actor.system("tests")
NUMBERS = (f"+1415555{n:04d}" for n in itertools.count(100))


def make_tenant(name: str | None = None, slug: str | None = None) -> Tenant:
    n = next(_counter)
    tenant = accounts.create_tenant(name or f"Tenant {n}", slug or f"tenant-{n}")
    db.session.commit()
    return tenant


def make_api_key(tenant: Tenant, scope: str = "write", name: str = "Test key") -> str:
    """Returns the secret key string."""
    new = accounts.create_api_key(tenant.id, name, scope)
    db.session.commit()
    return new.secret


def make_user(tenant: Tenant | None = None, role: str = "admin", **kwargs):
    n = next(_counter)
    user = accounts.create_user(
        kwargs.pop("email", f"user{n}@example.org"),
        kwargs.pop("password", "correct-horse-battery"),
        role,
        tenant if role == "admin" else None,
        must_change_password=kwargs.pop("must_change_password", False),
        **kwargs,
    )
    db.session.commit()
    return user


def enroll_totp(user) -> str:
    """Give ``user`` an active authenticator app (as if confirmed with a code); returns its
    seed, from which a test computes codes with pyotp."""
    secret = mfa.begin_totp(user)
    db.session.get(TotpFactor, user.id).confirmed_at = utcnow()
    db.session.commit()
    return secret


def make_integration(tenant: Tenant, channel_type: str = "email", **kwargs):
    data = {
        "name": kwargs.pop("name", f"{channel_type} integration {next(_counter)}"),
        "channel_type": channel_type,
        "provider": kwargs.pop("provider", "console"),
        "credentials": kwargs.pop("credentials", {}),
    }
    data.update(kwargs)
    integration = integrations.create_integration(tenant.id, data, ACTOR)
    db.session.commit()
    return integration


def make_domain(tenant: Tenant, domain: str = "example.com", verified: bool = True) -> EmailDomain:
    now = utcnow()
    row = EmailDomain(
        tenant_id=tenant.id,
        domain=domain,
        status="verified" if verified else "pending",
        verification_token=f"token{next(_counter):027d}",
        verified_at=now if verified else None,
        record_statuses={},
        created_at=now,
    )
    db.session.add(row)
    db.session.commit()
    return row


def make_phone_number(tenant: Tenant, integration=None, **kwargs):
    """Adds a number (by default without its auto channel); returns the PhoneNumberOutcome."""
    integration = integration or make_integration(tenant, "sms")
    data = {
        "phone_number": kwargs.pop("phone_number", next(NUMBERS)),
        "integration_id": integration.id,
        "create_channel": kwargs.pop("create_channel", False),
    }
    data.update(kwargs)
    outcome = phone_numbers.add_phone_number(tenant.id, data, ACTOR)
    db.session.commit()
    return outcome


@dataclass
class Ready:
    """Everything a tenant needs for channels of both types."""

    tenant: Tenant
    email_integration: object
    sms_integration: object
    domain: EmailDomain
    number: object

    def email_payload(self, **overrides) -> dict:
        data = {
            "name": f"Email {next(_counter)}",
            "channel_type": "email",
            "integration_id": self.email_integration.id,
            "send_from_email": f"support@{self.domain.domain}",
            "email_domain_id": self.domain.id,
        }
        data.update(overrides)
        return data

    def sms_payload(self, **overrides) -> dict:
        data = {
            "name": f"SMS {next(_counter)}",
            "channel_type": "sms",
            "integration_id": self.sms_integration.id,
            "send_from_phone_number": self.number.phone_number,
            "phone_number_id": self.number.id,
        }
        data.update(overrides)
        return data


def make_ready_tenant(tenant: Tenant, domain: str = "example.com") -> Ready:
    email_integration = make_integration(tenant, "email")
    sms_integration = make_integration(tenant, "sms")
    number = make_phone_number(tenant, sms_integration).phone_number
    return Ready(tenant, email_integration, sms_integration, make_domain(tenant, domain), number)


def make_channel(ready: Ready, channel_type: str = "email", **overrides):
    payload = (
        ready.email_payload(**overrides)
        if channel_type == "email"
        else ready.sms_payload(**overrides)
    )
    outcome = channels.create_channel(ready.tenant.id, payload, ACTOR)
    db.session.commit()
    return outcome.channel


def release_number(tenant: Tenant, number):
    """Release a number through the service (its channels become disabled)."""
    phone_numbers.release_phone_number(tenant.id, number.id, ACTOR)
    db.session.commit()
    return number


def set_integration_status(tenant: Tenant, integration, status: str):
    """Enable or disable an integration through the service (its channels follow)."""
    integrations.update_integration(tenant.id, integration.id, {"status": status}, ACTOR)
    db.session.commit()
    return integration


class ApiClient:
    """The Flask test client with a bearer key: ``api.post("/api/channels", json=...)``."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def _headers(self, headers):
        merged = {"Authorization": f"Bearer {self.key}"}
        merged.update(headers or {})
        return merged

    def get(self, path, headers=None, **kwargs):
        return self.client.get(path, headers=self._headers(headers), **kwargs)

    def post(self, path, headers=None, **kwargs):
        return self.client.post(path, headers=self._headers(headers), **kwargs)

    def patch(self, path, headers=None, **kwargs):
        return self.client.patch(path, headers=self._headers(headers), **kwargs)

    def delete(self, path, headers=None, **kwargs):
        return self.client.delete(path, headers=self._headers(headers), **kwargs)


def make_webhook_endpoint(tenant: Tenant, url: str, events=("*",), **kwargs):
    """An endpoint through the service; returns (endpoint, secret)."""
    from core.schemas.webhooks import WebhookEndpointCreate
    from core.services import webhooks

    data = WebhookEndpointCreate(url=url, events=list(events), **kwargs)
    endpoint, secret = webhooks.create_endpoint(tenant.id, data, ACTOR)
    db.session.commit()
    return endpoint, secret
