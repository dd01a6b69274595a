"""/api/email_domains: domains, their DNS records, and verification."""

from __future__ import annotations

from flask import g, request, url_for
from sqlalchemy import select

from blueprints.api import bp, handover_headers, json_body, query_limit, write_endpoint
from core.conditional import conditional, etag_header
from core.extensions import db
from core.models import EmailDomain
from core.openapi import ResourceDocs, documented
from core.pagination import keyset_page
from core.schemas import email_domains as shapes
from core.schemas import render_page
from core.serializers import email_domain_to_api
from core.services import email_domains as service
from core.tenancy import get_for_tenant

EMAIL_DOMAINS = ResourceDocs(
    "Email domains",
    shapes.EmailDomain,
    "email domain",
    "domains",
    "domain_id",
    list_schema=shapes.EmailDomainList,
)


@bp.post("/email_domains")
@documented(
    EMAIL_DOMAINS.creating(
        "createEmailDomain",
        "Add an email domain",
        "The domain was added (pending) with its DNS records.",
        request_schema=shapes.EmailDomainCreate,
    )
)
@write_endpoint
@conditional(EmailDomain)
def create_email_domain():
    """Add a domain (201, pending) with the DNS records to publish."""
    domain = service.create_email_domain(g.tenant_id, json_body(), g.actor)
    location = url_for("api.get_email_domain", domain_id=domain.id)
    return email_domain_to_api(domain), 201, {"Location": location, **etag_header(domain)}


@bp.get("/email_domains")
@documented(EMAIL_DOMAINS.listing("listEmailDomains", "List email domains"))
def list_email_domains():
    """List the tenant's domains, newest first."""
    query = select(EmailDomain).where(EmailDomain.tenant_id == g.tenant_id)
    rows, next_cursor = keyset_page(
        db.session, query, EmailDomain, query_limit(), request.args.get("cursor")
    )
    return render_page(shapes.EmailDomainList, [email_domain_to_api(d) for d in rows], next_cursor)


@bp.get("/email_domains/<domain_id>")
@documented(EMAIL_DOMAINS.reading("getEmailDomain", "Get an email domain"))
@conditional(EmailDomain, "domain_id")
def get_email_domain(domain_id):
    """One domain with its DNS records and its ETag (304 when If-None-Match names it)."""
    domain = get_for_tenant(EmailDomain, g.tenant_id, domain_id)
    return email_domain_to_api(domain), 200, etag_header(domain)


@bp.post("/email_domains/<domain_id>/verify")
@documented(
    EMAIL_DOMAINS.changing(
        "verifyEmailDomain",
        "Verify an email domain",
        "The domain after the DNS lookup.",
        ("Default-Handover",),
        body_optional=True,
        description="Looks the DNS records up now; the domain becomes `verified` when the "
        "`verification` TXT record is found, and its channels follow.",
    )
)
@write_endpoint
def verify_email_domain(domain_id):
    """Look the DNS records up now; the domain's channels follow its status."""
    json_body(required=False)
    domain, outcomes = service.verify_email_domain(g.tenant_id, domain_id, g.actor)
    return email_domain_to_api(domain), 200, handover_headers(outcomes)


@bp.delete("/email_domains/<domain_id>")
@documented(
    EMAIL_DOMAINS.deleting(
        "deleteEmailDomain",
        "Delete an email domain",
        description="409 while channels use it; the message names them.",
    )
)
@write_endpoint
@conditional(EmailDomain, "domain_id")
def delete_email_domain(domain_id):
    """Delete (204); 409 naming the channels that still use it."""
    service.delete_email_domain(g.tenant_id, domain_id, g.actor)
    return None, 204
