"""The lifecycle of an email domain's verification (DESIGN §9): what one DNS check does to it.

``apply_check`` is the one place where a check's results move a domain, whoever asked for the
check (the scheduler, ``flask recheck-domains``, or "Verify"):

- ``pending``/``failed``: the ownership record found → ``verified`` (``email_domain.verified``);
  else a scheduled check leaves it as it is while its verification window is open
  (DOMAIN_VERIFY_WINDOW_HOURS from its creation, its last "Verify" or the loss of its
  verification), and a pending domain whose window ended is ``failed``
  (``email_domain.verification_failed``). "Verify" answers at once: ``failed`` until found.
- ``verified``/``at_risk``: the ownership record ``missing`` or ``mismatch`` → ``at_risk`` at the
  first check (``email_domain.at_risk``; its channels keep sending), ``failed`` after
  DOMAIN_GRACE_CHECKS scheduled checks in a row (its channels ``pending_verification``, a
  default handed over; a new window opens, so the record coming back is seen). Found again →
  ``verified`` (``email_domain.verified``). ``error`` (DNS did not answer) never counts.
- SPF and DKIM never block: a change of their status on a sending domain is
  ``email_domain.records_changed`` (the console shows a badge).

Every status change is audited (the scheduler's actor is the system) and emits its event, in the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app

from core import events
from core.db_types import rfc3339, utcnow
from core.extensions import db
from core.models import EMAIL_DOMAIN_SENDING_STATUSES, EmailDomain
from core.services import audit
from core.services.audit import Actor
from core.services.channels import ChannelOutcome, channels_using, resync_statuses
from core.services.email_domains import RecordCheck, _render, pending_check_interval

# Who makes the scheduled checks' changes, in the audit log.
SCHEDULER = Actor.system("scheduled DNS check")
WARNED_PURPOSES = ("spf", "dkim")
SETTLED = ("verified", "missing", "mismatch")  # a record status DNS actually answered


@dataclass
class CheckOutcome:
    """What a check did to a domain: its status before and after, the channels that moved."""

    domain: EmailDomain
    before: str
    after: str
    channels: list[ChannelOutcome] = field(default_factory=list)


def window_open(domain: EmailDomain, now: datetime) -> bool:
    """Is the domain's verification window still open?"""
    started = domain.window_started_at or domain.created_at
    window = timedelta(hours=current_app.config["DOMAIN_VERIFY_WINDOW_HOURS"])
    return now < started + window


def next_check(domain: EmailDomain, now: datetime) -> datetime | None:
    """When the scheduler checks the domain next (None: not until someone presses "Verify")."""
    if domain.status in EMAIL_DOMAIN_SENDING_STATUSES:
        return now + timedelta(hours=current_app.config["DOMAIN_RECHECK_HOURS"])
    if window_open(domain, now):
        return now + pending_check_interval()
    return None


def _store(domain: EmailDomain, checks: dict[str, RecordCheck], now: datetime) -> dict:
    """Keep each record's status, what was found, when checked and when last verified."""
    details = dict(domain.record_details or {})
    statuses = {}
    stamp = rfc3339(now)
    for purpose, check in checks.items():
        previous = details.get(purpose) or {}
        details[purpose] = {
            # DNS not answering says nothing about what is published: keep what was seen.
            "found": previous.get("found") if check.found is None else check.found,
            "last_checked_at": stamp,
            "last_verified_at": stamp
            if check.status == "verified"
            else previous.get("last_verified_at"),
        }
        statuses[purpose] = check.status
    domain.record_details = details
    domain.record_statuses = statuses
    domain.last_checked_at = now
    return statuses


def apply_check(
    domain: EmailDomain, checks: dict[str, RecordCheck], actor: Actor, *, scheduled: bool
) -> CheckOutcome:
    """Move the domain by one check's results (see the module doc); the caller holds the tenant
    lock and commits."""
    grace = current_app.config["DOMAIN_GRACE_CHECKS"]
    now = utcnow()
    before = {
        "status": domain.status,
        "failed_checks": domain.failed_checks or 0,
        "records": dict(domain.record_statuses or {}),
    }
    statuses = _store(domain, checks, now)
    ownership = statuses["verification"]
    emitted: tuple[str, dict | None] | None = None
    if before["status"] not in EMAIL_DOMAIN_SENDING_STATUSES:
        if ownership == "verified":
            domain.status = "verified"
            domain.verified_at = now
            domain.failed_checks = 0
            domain.at_risk_since = None
            emitted = ("email_domain.verified", None)
        elif not scheduled or not window_open(domain, now):
            domain.status = "failed"
            # "Verify" reports every unsuccessful check (as before); the scheduler only the
            # end of the window.
            if not scheduled or before["status"] == "pending":
                emitted = ("email_domain.verification_failed", {"records": statuses})
    elif ownership == "verified":
        domain.status = "verified"
        domain.failed_checks = 0
        domain.at_risk_since = None
        if before["status"] == "at_risk":
            emitted = ("email_domain.verified", None)
    elif ownership in ("missing", "mismatch"):
        # Only the scheduler's regular checks count towards "failed"; "Verify" pressed a few
        # times while DNS propagates must not end a domain's verification.
        if scheduled or domain.failed_checks == 0:
            domain.failed_checks = (domain.failed_checks or 0) + 1
        if domain.failed_checks >= grace and scheduled:
            domain.status = "failed"
            domain.at_risk_since = None
            domain.failed_checks = 0
            domain.window_started_at = now  # the record coming back is still looked for
            emitted = ("email_domain.verification_failed", {"records": statuses})
        elif before["status"] == "verified":
            domain.status = "at_risk"
            domain.at_risk_since = now
            emitted = (
                "email_domain.at_risk",
                {"records": statuses, "consecutive_checks": domain.failed_checks},
            )
    # ownership "error": DNS did not answer; nothing counts, nothing moves.
    domain.next_check_at = next_check(domain, now)
    db.session.flush()

    changed_records = {
        purpose: {"before": before["records"].get(purpose), "after": status}
        for purpose, status in statuses.items()
        if before["records"].get(purpose) != status
    }
    status_changed = domain.status != before["status"]
    count_changed = domain.failed_checks != before["failed_checks"]
    tenant_id = domain.tenant_id
    if not scheduled or status_changed or changed_records or count_changed:
        changes = (
            audit.diff({"status": before["status"]}, {"status": domain.status})
            if status_changed
            else {}
        )
        if count_changed:
            changes["failed_checks"] = {
                "before": before["failed_checks"],
                "after": domain.failed_checks,
            }
        changes["records"] = statuses
        action = "email_domain.verify" if not scheduled else "email_domain.recheck"
        audit.record(tenant_id, actor, action, "email_domain", domain.id, changes)
    if emitted is not None:
        event_type, change = emitted
        events.emit(tenant_id, event_type, domain.id, _render(domain), change)
    warned = {
        purpose: change
        for purpose, change in changed_records.items()
        if purpose in WARNED_PURPOSES and change["before"] in SETTLED and change["after"] in SETTLED
    }
    if warned and domain.status in EMAIL_DOMAIN_SENDING_STATUSES:
        events.emit(
            tenant_id,
            "email_domain.records_changed",
            domain.id,
            _render(domain),
            {"records": statuses, "changed": warned},
        )
    outcomes: list[ChannelOutcome] = []
    if status_changed or not scheduled:
        outcomes = resync_statuses(
            tenant_id,
            channels_using(tenant_id, email_domain_id=domain.id),
            actor,
            f"domain {domain.status}",
            "domain",
        )
    return CheckOutcome(domain, before["status"], domain.status, outcomes)
