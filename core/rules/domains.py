"""The email domain rules: a domain name (IDNA, lower-case) not yet added by the tenant."""

from __future__ import annotations

from sqlalchemy import func, select

from core.errors import FieldErrors
from core.extensions import db
from core.models import EmailDomain
from core.rules.values import normalize_domain, reject_fields

EMAIL_DOMAIN_FIELDS = ("domain",)
EMAIL_DOMAIN_READ_ONLY = (
    "id",
    "tenant_id",
    "status",
    "verification_token",
    "verified_at",
    "last_checked_at",
    "created_at",
    "dns_records",
)


def check_email_domain(tenant_id: str, data: dict) -> str:
    """A domain name not yet added by this tenant; returns its normalized form."""
    errors = FieldErrors()
    reject_fields(data, EMAIL_DOMAIN_FIELDS, EMAIL_DOMAIN_READ_ONLY, errors)
    domain = normalize_domain(data.get("domain"), errors)
    if domain is not None:
        exists = db.session.scalar(
            select(func.count())
            .select_from(EmailDomain)
            .where(EmailDomain.tenant_id == tenant_id, EmailDomain.domain == domain)
        )
        if exists:
            errors.add("domain", "This domain was already added.")
    errors.raise_if_any("The email domain could not be added.")
    return domain
