"""Email domains: the DNS records a tenant publishes, and their verification through DNS."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import dns.exception
import dns.nameserver
import dns.resolver
from flask import current_app

from core import events, rules
from core.db_types import utcnow
from core.errors import Conflict
from core.extensions import db
from core.models import EMAIL_DOMAIN_SENDING_STATUSES, EmailDomain
from core.services import audit
from core.services.audit import Actor
from core.services.channels import ChannelOutcome, channels_using, lock_tenant
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
    details = domain.record_details or {}
    for record in records:
        status = statuses.get(record["purpose"], "pending")
        seen = details.get(record["purpose"]) or {}
        record["status"] = status
        record["found"] = seen.get("found")
        record["last_checked_at"] = _moment(seen.get("last_checked_at"))
        record["last_verified_at"] = _moment(seen.get("last_verified_at"))
        record["hint"] = record_hint(record, status)
    return records


def _moment(stamp: str | None) -> datetime | None:
    """A timestamp kept in ``record_details`` (RFC 3339 text) as a datetime."""
    return datetime.fromisoformat(stamp) if stamp else None


def record_hint(record: dict, status: str) -> str | None:
    """What to do about a record in this status (None: nothing)."""
    what = f"{record['type']} record at {record['host']}"
    if status == "missing":
        return f"No {what}: publish it with the value shown at your DNS host."
    if status == "mismatch":
        if record["purpose"] == "spf":
            include = record["value"].split()[1]
            return (
                f"Your SPF record does not contain {include}: add it to the existing record "
                "(a domain must have only one SPF record)."
            )
        return f"The {what} has another value: change it to the value shown."
    if status == "error":
        return (
            "DNS did not answer (timeout or server failure). This is usually temporary and "
            "never counts against the domain; it is checked again automatically."
        )
    if status == "pending":
        return "Not checked yet: publish the record, then verify."
    return None


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
        record_details={},
        created_at=utcnow(),
    )
    # The verification window opens now; the scheduler looks for the records from then on.
    domain.window_started_at = domain.created_at
    domain.next_check_at = domain.created_at + pending_check_interval()
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


def pending_check_interval() -> timedelta:
    """How often a domain that is not verified yet is checked (DOMAIN_PENDING_CHECK_MINUTES)."""
    return timedelta(minutes=current_app.config["DOMAIN_PENDING_CHECK_MINUTES"])


def _render(domain: EmailDomain) -> dict:
    """The domain as the API renders it (imported late: the serializers import this module)."""
    from core.serializers import email_domain_to_api

    return email_domain_to_api(domain)


@dataclass(frozen=True)
class RecordCheck:
    """What one lookup of one record came to: its status and the values found (truncated;
    None when DNS did not answer)."""

    status: str
    found: list[str] | None


FOUND_MAX_VALUES = 5
FOUND_MAX_LENGTH = 255


def resolver_for(config) -> dns.resolver.Resolver:
    """A resolver for DNS_NAMESERVERS (typed ``Nameserver`` tuples), else the system's; no cache
    (a re-check must see what DNS says now)."""
    configured = config["DNS_NAMESERVERS"]
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in configured
        ]
    resolver.lifetime = config["DNS_TIMEOUT"]
    resolver.timeout = config["DNS_TIMEOUT"]
    resolver.cache = None
    return resolver


def _lookup(resolver, host: str, rdtype: str) -> list[str] | None:
    """The record values at host, [] when there are none, None when DNS did not answer
    (timeout, SERVFAIL, REFUSED: ``NoNameservers``; a temporary failure, never "missing")."""
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


def _shown(values: list[str]) -> list[str]:
    """What was found, as kept and shown: a few values, each cut short."""
    return [
        v if len(v) <= FOUND_MAX_LENGTH else v[: FOUND_MAX_LENGTH - 1] + "…"
        for v in values[:FOUND_MAX_VALUES]
    ]


def judge_record(record: dict, found: list[str] | None) -> RecordCheck:
    """``verified``, ``missing`` (no such record), ``mismatch`` (found, another value) or
    ``error`` (DNS did not answer). SPF counts only ``v=spf1`` TXT records: other TXT records on
    the domain are neither ours nor a mismatch."""
    if found is None:
        return RecordCheck("error", None)
    if record["purpose"] == "spf":
        include = record["value"].split()[1]
        spf = [v for v in found if v.lower().startswith("v=spf1")]
        if any(include in v.split() for v in spf):
            return RecordCheck("verified", _shown(spf))
        return RecordCheck("mismatch" if spf else "missing", _shown(spf))
    if not found:
        return RecordCheck("missing", [])
    wanted = record["value"].lower()
    status = "verified" if wanted in (v.lower() for v in found) else "mismatch"
    return RecordCheck(status, _shown(found))


def lookup_records(resolver, records: list[dict]) -> dict[str, RecordCheck]:
    """Look every record up (no database, no app context: safe on a resolver thread)."""
    return {
        record["purpose"]: judge_record(record, _lookup(resolver, record["host"], record["type"]))
        for record in records
    }


def check_records(domain: EmailDomain) -> dict[str, RecordCheck]:
    """Look the domain's records up now, through DNS_NAMESERVERS."""
    return lookup_records(resolver_for(current_app.config), dns_records(domain))


def verify_email_domain(
    tenant_id: str, domain_id: str, actor: Actor
) -> tuple[EmailDomain, list[ChannelOutcome]]:
    """ "Verify": check the DNS records now; the domain is ``verified`` when the ownership TXT
    is found. A domain not verified gets a new verification window (re-checked by the
    scheduler every DOMAIN_PENDING_CHECK_MINUTES until it ends) and is ``failed`` until the
    record is found; a verified one follows the lifecycle of ``core.services.domain_checks``
    (at risk when the record is gone; only scheduled checks count towards ``failed``).
    """
    from core.services.domain_checks import apply_check

    lock_tenant(tenant_id)
    domain = get_for_tenant(EmailDomain, tenant_id, domain_id)
    checks = check_records(domain)
    if domain.status not in EMAIL_DOMAIN_SENDING_STATUSES:
        domain.window_started_at = utcnow()
    outcome = apply_check(domain, checks, actor, scheduled=False)
    return domain, outcome.channels


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
