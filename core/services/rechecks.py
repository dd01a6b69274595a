"""Scheduled re-checks at scale (DESIGN §9): which domains and integrations are due, who checks
them, and the checks themselves in batches.

How the work is shared: a scheduler tick (``core.tasks``) **claims** the due objects in batches
of RECHECK_BATCH_SIZE — one conditional UPDATE per batch sets ``check_claim`` (a fresh token) and
``check_lease_until`` on rows whose lease is free — and hands each batch to the workers. A
worker checks only the rows still carrying its batch's token, and writes each result with
``WHERE check_claim = token``: two workers never check one object at once, and a result whose
lease was taken over (its worker was too slow, or killed) is dropped. A killed worker's rows
are due again when their lease runs out.

Inside a batch, DNS lookups run on a pool of DNS_CONCURRENCY resolver threads (no database);
each domain's result is then written in a short transaction of its own under the tenant lock.
Integration checks run on a small pool too, paced per provider (INTEGRATION_CHECKS_PER_MINUTE).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from core.db_types import new_id, utcnow
from core.extensions import db
from core.models import EmailDomain, Integration, Tenant
from core.services.audit import Actor
from core.services.channels import lock_tenant
from core.services.domain_checks import SCHEDULER, CheckOutcome, apply_check
from core.services.email_domains import dns_records, lookup_records, resolver_for

INTEGRATION_SCHEDULER = Actor.system("scheduled connection check")
INTEGRATION_POOL = 8  # provider calls at once per worker process (each is paced per provider)
MAX_BATCHES_PER_TICK = 200
PURPOSES = ("verification", "spf", "dkim")


@dataclass(frozen=True)
class Claim:
    """A batch of objects one checker holds until ``lease``: their ids and its token."""

    token: str
    ids: list[str]


@dataclass
class HealthOutcome:
    """What a check did to an integration's health."""

    integration: Integration
    before: str  # healthy | unhealthy
    after: str
    message: str


def health_of(integration: Integration) -> str:
    return "unhealthy" if integration.unhealthy_since is not None else "healthy"


# --- what is due, and claiming it -----------------------------------------------------------


def _checkable(model):
    """Integrations are checked while active; every domain is (its schedule says when)."""
    return Integration.status == "active" if model is Integration else True


def due_ids(model, *, limit: int, tenant_id: str | None = None, every: bool = False) -> list[str]:
    """Ids of ``model`` rows due for a check (``every``: all of them), lease free, oldest due
    first."""
    now = utcnow()
    query = select(model.id).where(
        _checkable(model), or_(model.check_lease_until.is_(None), model.check_lease_until < now)
    )
    if not every:
        query = query.where(model.next_check_at <= now)
    if tenant_id is not None:
        query = query.where(model.tenant_id == tenant_id)
    return list(db.session.scalars(query.order_by(model.next_check_at, model.id).limit(limit)))


def claim(model, ids: list[str]) -> Claim:
    """Take the lease of those of ``ids`` nobody holds (one conditional UPDATE; committed)."""
    now = utcnow()
    token = new_id()
    lease = now + timedelta(seconds=current_app.config["RECHECK_LEASE_SECONDS"])
    if ids:
        db.session.execute(
            update(model)
            .where(
                model.id.in_(ids),
                or_(model.check_lease_until.is_(None), model.check_lease_until < now),
            )
            .values(check_claim=token, check_lease_until=lease)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    held = list(db.session.scalars(select(model.id).where(model.check_claim == token)))
    db.session.rollback()
    return Claim(token, held)


def claim_due(
    model, *, tenant_id: str | None = None, every: bool = False, max_batches: int | None = None
) -> list[Claim]:
    """Claim the due rows (or every row) in batches of RECHECK_BATCH_SIZE."""
    size = current_app.config["RECHECK_BATCH_SIZE"]
    claims: list[Claim] = []
    while max_batches is None or len(claims) < max_batches:
        ids = due_ids(model, limit=size, tenant_id=tenant_id, every=every)
        db.session.rollback()
        if not ids:
            break
        batch = claim(model, ids)
        if batch.ids:
            claims.append(batch)
        if len(ids) < size:
            break
    return claims


# --- checking a batch of domains --------------------------------------------------------------

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_pools_lock = threading.Lock()


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    """This process's pool ``name`` (a forked worker makes its own: threads do not fork)."""
    with _pools_lock:
        current = _pools.get(name)
        if current is None or current[0] != os.getpid() or current[1]._max_workers != size:
            current = (os.getpid(), ThreadPoolExecutor(size, thread_name_prefix=name))
            _pools[name] = current
        return current[1]


def _lookups(domains: list[EmailDomain]) -> dict[str, dict]:
    """Every domain's DNS records looked up, DNS_CONCURRENCY at once; {domain id: checks}."""
    config = current_app.config
    records = {d.id: dns_records(d) for d in domains}
    local = threading.local()

    def look(domain_id: str):
        resolver = getattr(local, "resolver", None)
        if resolver is None:
            resolver = local.resolver = resolver_for(config)
        return domain_id, lookup_records(resolver, records[domain_id])

    pool = _pool("dns-resolver", config["DNS_CONCURRENCY"])
    return dict(pool.map(look, list(records)))


def check_domain_batch(
    token: str, actor: Actor = SCHEDULER, report: Callable[[CheckOutcome], None] | None = None
) -> list[CheckOutcome]:
    """Check the domains this claim holds; each result written in its own transaction."""
    domains = list(db.session.scalars(select(EmailDomain).where(EmailDomain.check_claim == token)))
    checks = _lookups(domains)
    db.session.rollback()
    outcomes = []
    for domain_id, result in checks.items():
        outcome = _write_domain(domain_id, token, result, actor)
        if outcome is not None:
            outcomes.append(outcome)
            if report is not None:
                report(outcome)
    return outcomes


def _write_domain(domain_id: str, token: str, result: dict, actor: Actor) -> CheckOutcome | None:
    """One domain's result, if its claim still holds (else dropped: someone else has it)."""
    try:
        domain = db.session.get(EmailDomain, domain_id)
        if domain is None:
            db.session.rollback()
            return None  # deleted meanwhile
        lock_tenant(domain.tenant_id)
        db.session.refresh(domain)
        if domain.check_claim != token:
            db.session.rollback()
            return None
        outcome = apply_check(domain, result, actor, scheduled=True)
        domain.check_claim = None
        domain.check_lease_until = None
        db.session.commit()
        return outcome
    except Exception:
        db.session.rollback()
        raise


# --- checking a batch of integrations ---------------------------------------------------------


class ProviderPace:
    """At most ``per_minute`` calls to one provider per minute from this process: each call
    waits for its slot (a rate limit of our own, so a tenant's re-checks never flood a
    provider's API)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next_slot: dict[str, float] = {}

    def wait(self, provider: str, per_minute: int) -> None:
        interval = 60.0 / per_minute
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(provider, now))
            self.next_slot[provider] = slot + interval
        if slot > now:
            time.sleep(slot - now)  # pacing, not a fix: this is the rate limit itself


PACE = ProviderPace()


def check_integration_batch(
    token: str,
    actor: Actor = INTEGRATION_SCHEDULER,
    report: Callable[[HealthOutcome], None] | None = None,
) -> list[HealthOutcome]:
    """Check the integrations this claim holds with their providers ("Test connection")."""
    from core.services.integrations import credentials_of
    from core.services.provider_checks import check_credentials

    per_minute = current_app.config["INTEGRATION_CHECKS_PER_MINUTE"]
    rows = list(db.session.scalars(select(Integration).where(Integration.check_claim == token)))
    calls = {row.id: (row.provider, credentials_of(row)) for row in rows}
    db.session.rollback()
    app = current_app._get_current_object()

    def call(integration_id: str):
        provider, credentials = calls[integration_id]
        PACE.wait(provider, per_minute)
        with app.app_context():  # provider settings (base URLs, timeouts) come from the app
            return integration_id, check_credentials(provider, credentials)

    results = dict(_pool("provider-check", INTEGRATION_POOL).map(call, list(calls)))
    outcomes = []
    for integration_id, result in results.items():
        outcome = _write_integration(integration_id, token, result, actor)
        if outcome is not None:
            outcomes.append(outcome)
            if report is not None:
                report(outcome)
    return outcomes


def _write_integration(integration_id: str, token: str, result, actor: Actor):
    from core.services.integrations import record_check

    try:
        integration = db.session.get(Integration, integration_id)
        if integration is None:
            db.session.rollback()
            return None
        lock_tenant(integration.tenant_id)
        db.session.refresh(integration)
        if integration.check_claim != token:
            db.session.rollback()
            return None
        before = health_of(integration)
        record_check(integration.tenant_id, integration, result, actor)
        integration.check_claim = None
        integration.check_lease_until = None
        db.session.commit()
        return HealthOutcome(integration, before, health_of(integration), result.message)
    except Exception:
        db.session.rollback()
        raise


# --- for the CLI ------------------------------------------------------------------------------


def tenant_id_of(slug: str) -> str | None:
    return db.session.scalar(select(Tenant.id).where(Tenant.slug == slug))


def tenant_slugs() -> dict[str, str]:
    return dict(db.session.execute(select(Tenant.id, Tenant.slug)).all())
