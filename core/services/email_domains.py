"""Email domains: the DNS records a tenant publishes, and their verification through DNS."""

from __future__ import annotations

import secrets

import dns.exception
import dns.nameserver
import dns.resolver
from flask import current_app

from core import events, rules
from core.db_types import utcnow
from core.errors import Conflict
from core.extensions import db
from core.models import EmailDomain
from core.services import audit
from core.services.audit import Actor
from core.services.channels import ChannelOutcome, channels_using, lock_tenant, resync_statuses
from core.tenancy import get_for_tenant

VERIFICATION_PREFIX = "_channels-verification"


def dns_records(domain: EmailDomain) -> list[dict]:
    """The records to publish: verification TXT (proves ownership), SPF TXT, DKIM CNAME."""
    config = current_app.config
    statuses = domain.record_statuses or {}
    records = [
        {
            "type": "TXT",
            "host": f"{VERIFICATION_PREFIX}.{domain.domain}",
            "value": f"channels-verification={domain.verification_token}",
            "purpose": "verification",
        },
        {
            "type": "TXT",
            "host": domain.domain,
            "value": f"v=spf1 include:{config['SPF_INCLUDE']} ~all",
            "purpose": "spf",
        },
        {
            "type": "CNAME",
            "host": f"{config['DKIM_SELECTOR']}._domainkey.{domain.domain}",
            "value": f"{config['DKIM_SELECTOR']}.{domain.domain}.{config['DKIM_TARGET_SUFFIX']}",
            "purpose": "dkim",
        },
    ]
    for record in records:
        record["status"] = statuses.get(record["purpose"], "pending")
    return records


def create_email_domain(tenant_id: str, data: dict, actor: Actor) -> EmailDomain:
    """Add a domain in ``pending`` with a fresh verification token."""
    lock_tenant(tenant_id)  # the duplicate check and the insert are one step under concurrency
    name = rules.check_email_domain(tenant_id, data)
    domain = EmailDomain(
        tenant_id=tenant_id,
        domain=name,
        status="pending",
        verification_token=secrets.token_hex(16),
        record_statuses={},
        created_at=utcnow(),
    )
    db.session.add(domain)
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "email_domain.create",
        "email_domain",
        domain.id,
        audit.diff({}, {"domain": name}),
    )
    events.emit(tenant_id, "email_domain.created", domain.id, _render(domain))
    return domain


def _render(domain: EmailDomain) -> dict:
    """The domain as the API renders it (imported late: the serializers import this module)."""
    from core.serializers import email_domain_to_api

    return email_domain_to_api(domain)


def _resolver() -> dns.resolver.Resolver:
    """A resolver for DNS_NAMESERVERS (typed ``Nameserver`` tuples), else the system's."""
    configured = current_app.config["DNS_NAMESERVERS"]
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in configured
        ]
    resolver.lifetime = current_app.config["DNS_TIMEOUT"]
    resolver.timeout = current_app.config["DNS_TIMEOUT"]
    resolver.cache = None
    return resolver


def _lookup(resolver, host: str, rdtype: str) -> list[str] | None:
    """The record values at host, [] when there are none, None when DNS did not answer."""
    try:
        answer = resolver.resolve(host, rdtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.DNSException, OSError):
        return None
    values = []
    for rdata in answer:
        if rdtype == "TXT":
            values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
        else:
            values.append(rdata.to_text().rstrip(".").lower())
    return values


def check_records(domain: EmailDomain) -> dict[str, str]:
    """Look every record up: ``verified``, ``missing``, or ``error`` when DNS did not answer."""
    resolver = _resolver()
    statuses = {}
    for record in dns_records(domain):
        found = _lookup(resolver, record["host"], record["type"])
        if found is None:
            statuses[record["purpose"]] = "error"
        elif record["type"] == "TXT" and record["purpose"] == "spf":
            include = record["value"].split()[1]
            statuses["spf"] = "verified" if any(include in v.split() for v in found) else "missing"
        else:
            statuses[record["purpose"]] = (
                "verified" if record["value"].lower() in (v.lower() for v in found) else "missing"
            )
    return statuses


def verify_email_domain(
    tenant_id: str, domain_id: str, actor: Actor
) -> tuple[EmailDomain, list[ChannelOutcome]]:
    """Check the DNS records; the domain is ``verified`` when the verification TXT is found.

    A domain that was verified stays verified when a later check fails (a DNS hiccup must not
    stop a tenant's sending); the record statuses show what the last check saw.
    """
    lock_tenant(tenant_id)
    domain = get_for_tenant(EmailDomain, tenant_id, domain_id)
    statuses = check_records(domain)
    before = {"status": domain.status}
    domain.record_statuses = statuses
    domain.last_checked_at = utcnow()
    if statuses["verification"] == "verified":
        if domain.status != "verified":
            domain.verified_at = domain.last_checked_at
        domain.status = "verified"
    elif domain.status != "verified":
        domain.status = "failed"
    db.session.flush()
    changes = audit.diff(before, {"status": domain.status})
    changes["records"] = statuses
    audit.record(tenant_id, actor, "email_domain.verify", "email_domain", domain.id, changes)
    # A domain becoming verified is news; so is every check that leaves an unverified domain
    # unverified. A verified domain stays verified when a later check fails: no event.
    if domain.status == "verified" and before["status"] != "verified":
        events.emit(tenant_id, "email_domain.verified", domain.id, _render(domain))
    elif domain.status == "failed":
        events.emit(
            tenant_id,
            "email_domain.verification_failed",
            domain.id,
            _render(domain),
            {"records": statuses},
        )
    outcomes = resync_statuses(
        tenant_id,
        channels_using(tenant_id, email_domain_id=domain.id),
        actor,
        f"domain {domain.status}",
        "domain",
    )
    return domain, outcomes


def delete_email_domain(tenant_id: str, domain_id: str, actor: Actor) -> None:
    """Delete a domain no channel uses; else Conflict naming the channels."""
    lock_tenant(tenant_id)
    domain = get_for_tenant(EmailDomain, tenant_id, domain_id)
    channels = channels_using(tenant_id, email_domain_id=domain.id)
    if channels:
        names = ", ".join(c.name for c in channels)
        raise Conflict(f"This domain is used by channels: {names}. Change or delete them first.")
    rendered = _render(domain)
    db.session.delete(domain)
    db.session.flush()
    audit.record(
        tenant_id,
        actor,
        "email_domain.delete",
        "email_domain",
        domain.id,
        audit.diff({"domain": domain.domain}, {}),
    )
    events.emit(tenant_id, "email_domain.deleted", domain.id, rendered)
