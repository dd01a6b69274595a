"""The email domain rules: a domain name (IDNA, lower-case; read by
``core.schemas.email_domains.EmailDomainCreate``) not yet added by the tenant."""

from __future__ import annotations

from sqlalchemy import func, select

from core.errors import FieldErrors
from core.extensions import db
from core.models import EmailDomain
from core.schemas import parse_fields


def check_email_domain(tenant_id: str, data: dict) -> str:
    """A domain name not yet added by this tenant; returns its normalized form."""
    # Imported here: core.schemas builds its field types from core.rules.values.
    from core.schemas.email_domains import EmailDomainCreate

    errors = FieldErrors()
    domain = parse_fields(EmailDomainCreate, data, errors).get("domain")
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
