"""What the console shows of the re-checks (DESIGN §9): the tenant's domains at risk and
unhealthy integrations, for the banner of the domains, channels and integrations pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from blueprints.console import bp
from blueprints.console.context import current_tenant
from core.extensions import db
from core.models import EmailDomain, Integration


@dataclass
class Warnings:
    """Domains at risk and unhealthy integrations of one tenant."""

    domains: list[EmailDomain] = field(default_factory=list)
    integrations: list[Integration] = field(default_factory=list)

    @staticmethod
    def grace_left(domain: EmailDomain) -> int:
        """Failed scheduled checks left before the domain fails."""
        return max(current_app.config["DOMAIN_GRACE_CHECKS"] - (domain.failed_checks or 0), 1)


@bp.app_template_global()
def recheck_warnings() -> Warnings:
    """The current tenant's warnings (two indexed reads)."""
    tenant = current_tenant()
    return Warnings(
        list(
            db.session.scalars(
                select(EmailDomain)
                .where(EmailDomain.tenant_id == tenant.id, EmailDomain.status == "at_risk")
                .order_by(EmailDomain.domain)
            )
        ),
        list(
            db.session.scalars(
                select(Integration)
                .where(Integration.tenant_id == tenant.id, Integration.unhealthy_since.is_not(None))
                .order_by(Integration.name)
            )
        ),
    )
