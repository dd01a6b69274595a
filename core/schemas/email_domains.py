"""Email domains (DESIGN §4): a domain to add, and a domain with the DNS records that verify it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

from core.models import DNS_RECORD_STATUSES, EMAIL_DOMAIN_STATUSES
from core.schemas import Schema, declared, list_of
from core.schemas.values import DomainInput, Id, OptionalTimestamp, Timestamp, enum

EMAIL_DOMAIN_READ_ONLY = (
    "id",
    "tenant_id",
    "status",
    "verification_token",
    "verified_at",
    "last_checked_at",
    "created_at",
    "dns_records",
    "at_risk_since",
    "next_check_at",
)
DNS_RECORD_TYPES = ("TXT", "CNAME")
DNS_RECORD_PURPOSES = ("verification", "spf", "dkim")


@declared
class DnsRecord(Schema):
    """A record the tenant publishes: `verification` (a TXT record proving ownership), `spf`
    or `dkim`, with what the last lookup found."""

    type: Annotated[str, WithJsonSchema(enum(DNS_RECORD_TYPES))]
    host: str
    value: str
    purpose: Annotated[str, WithJsonSchema(enum(DNS_RECORD_PURPOSES))]
    status: Annotated[str, WithJsonSchema(enum(DNS_RECORD_STATUSES))] = Field(
        description="`pending` (not checked yet), `verified`, `missing` (no such record), "
        "`mismatch` (found, with another value) or `error` (DNS did not answer: timeout, "
        "SERVFAIL, refused; temporary, never counted against the domain)."
    )
    found: list[str] | None = Field(
        description="What the last check that got an answer found at the host (at most 5 "
        "values, each cut to 255 characters; for SPF only `v=spf1` records); null: never "
        "answered."
    )
    last_checked_at: OptionalTimestamp
    last_verified_at: OptionalTimestamp = Field(
        description="The last check that found the record as published."
    )
    hint: str | None = Field(description="What to do about the record; null when it is fine.")


@declared
class EmailDomain(Schema):
    """A sending domain and the DNS records that verify it. `status`: `pending` (not verified
    yet), `verified`, `at_risk` (verified, but the ownership record was not found by the last
    check(s): still sending), `failed`."""

    id: Id
    tenant_id: Id
    domain: str
    status: Annotated[str, WithJsonSchema(enum(EMAIL_DOMAIN_STATUSES))]
    dns_records: list[DnsRecord]
    verified_at: OptionalTimestamp
    last_checked_at: OptionalTimestamp
    at_risk_since: OptionalTimestamp = Field(
        description="When a verified domain's ownership record was first found missing or "
        "changed (status `at_risk`: still sending until the grace checks run out)."
    )
    next_check_at: OptionalTimestamp = Field(
        description="When the scheduler checks the records next (null: not scheduled; "
        '"verify" opens a new verification window).'
    )
    created_at: Timestamp


EmailDomainList = list_of(EmailDomain, "EmailDomainList", "domains")


@declared(mode="validation")
class EmailDomainCreate(Schema):
    """A domain to add (it starts `pending`)."""

    read_only = EMAIL_DOMAIN_READ_ONLY

    domain: DomainInput


def as_email_domain(domain) -> EmailDomain:
    """The domain's response model, with the DNS records to publish."""
    from core.services.email_domains import dns_records  # the service computes them

    return EmailDomain.model_validate(
        {
            "id": domain.id,
            "tenant_id": domain.tenant_id,
            "domain": domain.domain,
            "status": domain.status,
            "dns_records": dns_records(domain),
            "verified_at": domain.verified_at,
            "last_checked_at": domain.last_checked_at,
            "at_risk_since": domain.at_risk_since,
            "next_check_at": domain.next_check_at,
            "created_at": domain.created_at,
        }
    )
