"""Console pages for email domains: add, the DNS records to publish, verify, delete.

Writes go through ``core.services.email_domains`` and commit here. "Verify" looks the records
up through DNS_NAMESERVERS; htmx swaps in the records with their statuses (and the channels
that use the domain, whose statuses follow); without JavaScript it is a POST and a redirect.
"""

from __future__ import annotations

from flask import flash, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from blueprints.console import bp
from blueprints.console.context import current_actor, current_tenant, requires_write
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
    see_other,
)
from blueprints.console.writes import console_write
from core.extensions import db
from core.models import EmailDomain
from core.services import email_domains as service
from core.services.channels import channels_using
from core.tenancy import get_for_tenant

DOMAIN_STATUS_LABELS = {
    "pending": "Pending",
    "verified": "Verified",
    "at_risk": "At risk",
    "failed": "Not verified",
}
RECORD_STATUS_LABELS = {
    "pending": "Not checked",
    "verified": "Found",
    "missing": "Not found",
    "mismatch": "Wrong value",
    "error": "DNS did not answer",
}
PURPOSE_LABELS = {
    "verification": "Ownership (required)",
    "spf": "SPF (recommended)",
    "dkim": "DKIM (recommended)",
}


class EmailDomainForm(FlaskForm):
    """The domain name; the service normalises and checks it."""

    domain = StringField("Domain")


@bp.app_template_global()
def domain_status_label(status: str) -> str:
    """Pending / Verified / Not verified."""
    return DOMAIN_STATUS_LABELS.get(status, status)


@bp.app_template_global()
def record_status_label(status: str) -> str:
    """A DNS record's status in words."""
    return RECORD_STATUS_LABELS.get(status, status)


@bp.app_template_global()
def record_purpose_label(purpose: str) -> str:
    """What a DNS record is for."""
    return PURPOSE_LABELS.get(purpose, purpose)


def _domains(tenant_id: str) -> list[EmailDomain]:
    """The tenant's domains, in the order the page lists them."""
    return db.session.scalars(
        select(EmailDomain)
        .where(EmailDomain.tenant_id == tenant_id)
        .order_by(EmailDomain.domain, EmailDomain.id)
    ).all()


def _index(form: EmailDomainForm, status: int = 200):
    """The domains page with ``form`` (its errors, when it was refused)."""
    tenant = current_tenant()
    return render_page(
        "email_domains/index.html",
        form=form,
        domains=_domains(tenant.id),
        next_url=current_path(),
        status=status,
    )


@bp.get("/email-domains")
def email_domains_index():
    """The tenant's domains with their verification status, and the form to add one."""
    return _index(EmailDomainForm(formdata=None))


@bp.post("/email-domains")
@requires_write
def email_domains_create():
    """Add a domain through the service; then show the DNS records to publish."""
    tenant = current_tenant()
    form = EmailDomainForm()
    if form.validate():
        with console_write(form) as write:
            domain = service.create_email_domain(
                tenant.id, {"domain": form.domain.data or ""}, current_actor()
            )
        if write.failed:
            return _index(form, write.status)
        flash(
            f"Domain {domain.domain} added. Publish the DNS records below, then verify it.",
            "success",
        )
        return see_other(url_for("console.email_domains_show", domain_id=domain.id))
    return _index(form, 422)


def _records_context(tenant_id: str, domain: EmailDomain) -> dict:
    """What the records fragment shows: the domain, its DNS records, the channels on it."""
    return {
        "domain": domain,
        "records": service.dns_records(domain),
        "channels": channels_using(tenant_id, email_domain_id=domain.id),
    }


@bp.get("/email-domains/<domain_id>")
def email_domains_show(domain_id):
    """One domain: the DNS records with copy buttons, their statuses, and "Verify"."""
    tenant = current_tenant()
    domain = get_for_tenant(EmailDomain, tenant.id, domain_id)
    return render_template("email_domains/show.html", **_records_context(tenant.id, domain))


@bp.post("/email-domains/<domain_id>/verify")
@requires_write
def email_domains_verify(domain_id):
    """Look the records up now; htmx gets the records and channels in place, with a flash."""
    tenant = current_tenant()
    with console_write():
        domain, outcomes = service.verify_email_domain(tenant.id, domain_id, current_actor())
    message = {
        "verified": f"{domain.domain} is verified.",
        "at_risk": f"{domain.domain} is at risk: the ownership record was not found. Its "
        "channels still send; publish the record again.",
    }.get(
        domain.status,
        f"{domain.domain} is not verified yet: the ownership record was not found. It is checked "
        "again automatically for a while.",
    )
    changed = [o.channel.name for o in outcomes]
    if changed:
        message += " Channels whose status changed: " + ", ".join(changed) + "."
    flash(message, "success" if domain.status == "verified" else "error")
    if not is_fragment_request():
        return redirect_back(url_for("console.email_domains_show", domain_id=domain.id))
    return render_fragments(
        render_template("email_domains/_records.html", **_records_context(tenant.id, domain))
    )


@bp.get("/email-domains/<domain_id>/delete")
@requires_write
def email_domains_confirm_delete(domain_id):
    """Without JavaScript, deleting asks for confirmation here (and names channels using it)."""
    tenant = current_tenant()
    domain = get_for_tenant(EmailDomain, tenant.id, domain_id)
    return render_template(
        "email_domains/delete.html",
        domain=domain,
        channels=channels_using(tenant.id, email_domain_id=domain.id),
    )


@bp.route("/email-domains/<domain_id>/delete", methods=["POST", "DELETE"])
@requires_write
def email_domains_delete(domain_id):
    """Delete a domain no channel uses; refused (naming the channels) otherwise."""
    tenant = current_tenant()
    domain = get_for_tenant(EmailDomain, tenant.id, domain_id)
    name = domain.domain
    with console_write() as write:  # in use: refused, the flash names the channels
        service.delete_email_domain(tenant.id, domain.id, current_actor())
    deleted = not write.failed
    if deleted:
        flash(f"Domain {name} was deleted.", "success")
    if not is_fragment_request():
        if deleted:
            return see_other(url_for("console.email_domains_index"))
        return redirect_back(url_for("console.email_domains_show", domain_id=domain_id))
    if deleted:
        return render_fragments("")
    domain = get_for_tenant(EmailDomain, tenant.id, domain_id)
    return render_fragments(
        render_template("email_domains/_row.html", domain=domain, next_url=current_path())
    )
