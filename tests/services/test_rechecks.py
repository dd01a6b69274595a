"""Verification that stays true (DESIGN §9), against the real DNS server the tests start
(tests/dns_zone.py) and the fake provider servers: the scheduler's jobs run here through the
same task code a worker runs (``core.tasks.schedule_rechecks``; without a broker each batch
runs in place), and every event lands in the outbox with a delivery for the tenant's endpoint.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from core.db_types import utcnow
from core.extensions import db
from core.models import AuditEvent, EmailDomain, Event, Integration, WebhookDelivery
from core.services import rechecks
from core.tasks import schedule_rechecks
from tests import factories
from tests.conftest import base_config
from tests.dns_zone import SERVFAIL, SILENT
from tests.services.fake_providers import GOOD, ProviderServer, bad_credentials


@pytest.fixture(scope="module")
def provider_server():
    with ProviderServer() as server:
        yield server


@pytest.fixture
def app_config(database_url, zone, provider_server):
    """DNS through the test's server (short timeout), providers at the fake server."""
    provider_server.reset()
    config = base_config(database_url)
    config.update(
        DNS_NAMESERVERS=f"127.0.0.1:{zone.port}",
        DNS_TIMEOUT=0.3,
        PROVIDER_BASE_URLS=provider_server.base_urls(),
        PROVIDER_TIMEOUT=3.0,
        DOMAIN_GRACE_CHECKS=3,
        INTEGRATION_FAILURE_CHECKS=3,
        INTEGRATION_CHECKS_PER_MINUTE=6000,
        RECHECK_BATCH_SIZE=2,  # several batches even for a few domains
    )
    return config


def records_of(body: dict) -> dict[str, dict]:
    return {record["purpose"]: record for record in body["dns_records"]}


def publish(zone, body: dict, *purposes: str) -> None:
    for purpose in purposes:
        record = records_of(body)[purpose]
        zone.publish(record["host"], record["type"], record["value"])


def all_due(model=EmailDomain) -> None:
    """Every row due now (the schedule's clock, moved for the test)."""
    db.session.execute(update(model).values(next_check_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def tick() -> None:
    """One scheduler tick, as the scheduler sends it (the test's own session holds no
    transaction meanwhile, as another process's would not)."""
    db.session.rollback()
    schedule_rechecks.apply(throw=True)
    db.session.expire_all()


def event_types(since: int = 0) -> list[str]:
    db.session.expire_all()
    rows = db.session.scalars(select(Event).order_by(Event.created_at, Event.id)).all()
    types = [row.type for row in rows[since:]]
    db.session.rollback()
    return types


def domain_api(api, domain_id: str) -> dict:
    return api.get(f"/api/email_domains/{domain_id}").get_json()


@pytest.fixture
def endpoint(setup):
    """The tenant's webhook endpoint, subscribed to every event."""
    endpoint, _ = factories.make_webhook_endpoint(setup.tenant, "http://127.0.0.1:9/hook")
    return endpoint


@pytest.fixture
def published_setup_domain(api, setup, zone):
    """The ready tenant's verified example.com, with its records published (it stays put)."""
    publish(zone, domain_api(api, setup.domain.id), "verification", "spf", "dkim")


@pytest.fixture
def live_domain(api, setup, zone, published_setup_domain):
    """mail.example.net, all three records published, verified through the API (the tenant's
    other domain, example.com, is published too, so only mail.example.net moves)."""
    body = api.post("/api/email_domains", json={"domain": "mail.example.net"}).get_json()
    publish(zone, body, "verification", "spf", "dkim")
    assert api.post(f"/api/email_domains/{body['id']}/verify").get_json()["status"] == "verified"
    return domain_api(api, body["id"])


def test_records_lost_at_risk_failed_after_grace_then_back_verified(
    api, setup, zone, endpoint, live_domain
):
    """Ownership record removed → at_risk (still sending) → failed after 3 scheduled checks
    (channels pending, the default handed over) → record back → verified, channels available;
    each step's events are in the outbox, with a delivery to the endpoint, audited as the
    system; SERVFAIL and timeouts in between never advance the count."""
    domain_id = live_domain["id"]
    on_domain = factories.make_channel(
        setup, "email", email_domain_id=domain_id, send_from_email="a@mail.example.net"
    )
    other = factories.make_channel(setup, "email", name="Other", is_default=False)
    assert on_domain.is_default and on_domain.status == "available"
    start = len(event_types())
    ownership = records_of(live_domain)["verification"]

    # A check that finds everything changes nothing and says nothing.
    all_due()
    tick()
    assert domain_api(api, domain_id)["status"] == "verified"
    assert event_types(start) == []

    zone.unpublish(ownership["host"], "TXT")
    all_due()
    tick()
    body = domain_api(api, domain_id)
    assert body["status"] == "at_risk" and body["at_risk_since"]
    assert records_of(body)["verification"]["status"] == "missing"
    assert records_of(body)["verification"]["last_verified_at"]
    assert event_types(start) == ["email_domain.at_risk"]
    assert api.get(f"/api/channels/{on_domain.id}").get_json()["status"] == "available"

    all_due()
    tick()
    assert domain_api(api, domain_id)["status"] == "at_risk"
    assert event_types(start) == ["email_domain.at_risk"]  # one warning, not one per check

    # DNS trouble: the count stays where it is, whatever the number of checks.
    for failure in (SERVFAIL, SILENT, SERVFAIL):
        zone.failing[ownership["host"]] = failure
        all_due()
        tick()
        body = domain_api(api, domain_id)
        assert body["status"] == "at_risk"
        assert records_of(body)["verification"]["status"] == "error"
    zone.failing.clear()
    row = db.session.get(EmailDomain, domain_id)
    assert row.failed_checks == 2

    all_due()
    tick()
    body = domain_api(api, domain_id)
    assert body["status"] == "failed" and body["next_check_at"]
    assert event_types(start) == [
        "email_domain.at_risk",
        "email_domain.verification_failed",
        "channel.status_changed",
        "channel.default_changed",
    ]
    moved = api.get(f"/api/channels/{on_domain.id}").get_json()
    assert moved["status"] == "pending_verification" and moved["is_default"] is False
    assert api.get(f"/api/channels/{other.id}").get_json()["is_default"] is True

    publish(zone, live_domain, "verification")
    all_due()
    tick()
    body = domain_api(api, domain_id)
    assert body["status"] == "verified" and body["at_risk_since"] is None
    assert api.get(f"/api/channels/{on_domain.id}").get_json()["status"] == "available"
    assert event_types(start)[4:] == ["email_domain.verified", "channel.status_changed"]

    # Every event went to the endpoint, and every status change was the system's doing.
    db.session.expire_all()
    events = db.session.scalars(select(Event).order_by(Event.created_at, Event.id)).all()[start:]
    delivered = {d.event_id for d in db.session.scalars(select(WebhookDelivery))}
    assert {e.id for e in events} <= delivered
    failed = next(e for e in events if e.type == "email_domain.verification_failed")
    assert failed.payload["change"]["records"]["verification"] == "missing"
    audits = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "email_domain.recheck")
        .order_by(AuditEvent.created_at, AuditEvent.id)
    ).all()
    assert audits and {a.actor_type for a in audits} == {"system"}
    assert [a.changes["status"]["after"] for a in audits if "status" in a.changes] == [
        "at_risk",
        "failed",
        "verified",
    ]


def test_spf_and_dkim_problems_warn_and_never_block(api, setup, zone, endpoint, live_domain):
    """SPF replaced by another, DKIM gone: ``records_changed`` once, the domain stays verified,
    its channel available; records say mismatch/missing with a hint."""
    channel = factories.make_channel(
        setup, "email", email_domain_id=live_domain["id"], send_from_email="a@mail.example.net"
    )
    start = len(event_types())
    records = records_of(live_domain)
    zone.unpublish(records["spf"]["host"], "TXT")
    zone.publish(records["spf"]["host"], "TXT", "v=spf1 include:elsewhere.example -all")
    zone.unpublish(records["dkim"]["host"], "CNAME")
    for _ in range(4):
        all_due()
        tick()
    body = domain_api(api, live_domain["id"])
    assert body["status"] == "verified"
    spf, dkim = records_of(body)["spf"], records_of(body)["dkim"]
    assert spf["status"] == "mismatch" and spf["found"] == ["v=spf1 include:elsewhere.example -all"]
    assert "does not contain" in spf["hint"]
    assert dkim["status"] == "missing" and dkim["hint"]
    assert event_types(start) == ["email_domain.records_changed"]
    assert api.get(f"/api/channels/{channel.id}").get_json()["status"] == "available"


def test_the_verification_window_expires_with_time(
    api, setup, zone, endpoint, published_setup_domain
):
    """A pending domain is checked every 10 minutes; after 72 hours without its record it is
    failed (one event) and no longer scheduled; "Verify" opens a new window, and the scheduler
    then finds the record."""
    start_time = utcnow()
    with time_machine.travel(start_time, tick=False) as traveller:
        body = api.post("/api/email_domains", json={"domain": "late.example.net"}).get_json()
        domain_id = body["id"]
        start = len(event_types())
        traveller.shift(timedelta(minutes=9))
        tick()
        assert domain_api(api, domain_id)["last_checked_at"] is None  # not due yet
        traveller.shift(timedelta(minutes=2))
        tick()
        checked = domain_api(api, domain_id)
        assert checked["status"] == "pending" and checked["last_checked_at"]
        assert records_of(checked)["verification"]["status"] == "missing"

        traveller.shift(timedelta(hours=71, minutes=40))
        tick()
        assert domain_api(api, domain_id)["status"] == "pending"
        traveller.shift(timedelta(minutes=30))  # past 72 hours
        tick()
        body = domain_api(api, domain_id)
        assert body["status"] == "failed" and body["next_check_at"] is None
        assert event_types(start) == ["email_domain.verification_failed"]
        traveller.shift(timedelta(days=5))
        tick()
        assert domain_api(api, domain_id)["last_checked_at"] == body["last_checked_at"]

        # "Verify" opens a new window; the record published later is found by the scheduler.
        body = api.post(f"/api/email_domains/{domain_id}/verify").get_json()
        assert body["status"] == "failed" and body["next_check_at"]
        publish(zone, body, "verification")
        traveller.shift(timedelta(minutes=11))
        tick()
        assert domain_api(api, domain_id)["status"] == "verified"
        assert event_types(start)[-1] == "email_domain.verified"


def test_claimed_domains_are_not_checked_twice(app, api, setup, zone, live_domain):
    """A claim takes only free leases: a second claim gets nothing, and a batch whose claim was
    taken over writes nothing."""
    all_due()
    first = rechecks.claim_due(EmailDomain)
    assert sum(len(c.ids) for c in first) == 2
    assert rechecks.claim_due(EmailDomain) == []
    # The lease runs out: someone else claims them; the first batch's results are dropped.
    db.session.execute(
        update(EmailDomain).values(check_lease_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    second = rechecks.claim_due(EmailDomain, every=True)
    assert sum(len(c.ids) for c in second) == 2
    assert rechecks.check_domain_batch(first[0].token) == []
    checked = [o for c in second for o in rechecks.check_domain_batch(c.token)]
    assert len(checked) == 2
    assert db.session.scalars(select(EmailDomain.check_claim)).all() == [None, None]


def test_integration_health_three_failures_unhealthy_then_recovered(
    api, setup, provider_server, endpoint, published_setup_domain
):
    """Three failed scheduled checks (401) → unhealthy (event, never disabled, channels still
    available); a 200 → recovered."""
    integration = factories.make_integration(
        setup.tenant, "email", provider="sendgrid", credentials=bad_credentials("sendgrid")
    )
    channel = factories.make_channel(setup, "email", integration_id=integration.id)
    start = len(event_types())
    for n in range(3):
        all_due(Integration)
        tick()
        body = api.get(f"/api/integrations/{integration.id}").get_json()
        assert body["failed_checks"] == n + 1
        assert body["unhealthy"] is (n == 2)
    assert body["status"] == "active" and body["unhealthy_since"]
    assert body["last_check"]["ok"] is False
    assert api.get(f"/api/channels/{channel.id}").get_json()["status"] == "available"
    assert event_types(start) == ["integration.unhealthy"]
    assert any(r["path"].endswith("/v3/scopes") for r in provider_server.received)

    all_due(Integration)
    tick()  # still failing: no second event
    assert event_types(start) == ["integration.unhealthy"]

    row = db.session.get(Integration, integration.id)
    from core.crypto import encrypt_credentials

    row.credentials_encrypted = encrypt_credentials(GOOD["sendgrid"])
    db.session.commit()
    all_due(Integration)
    tick()
    body = api.get(f"/api/integrations/{integration.id}").get_json()
    assert body["unhealthy"] is False and body["failed_checks"] == 0
    assert event_types(start) == ["integration.unhealthy", "integration.recovered"]
    audits = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action.in_(["integration.unhealthy", "integration.recovered"])
        )
    ).all()
    assert {(a.action, a.actor_type) for a in audits} == {
        ("integration.unhealthy", "system"),
        ("integration.recovered", "system"),
    }


def test_disabled_integrations_are_not_checked(api, setup, provider_server):
    """Only active integrations are re-checked."""
    integration = factories.make_integration(
        setup.tenant, "email", provider="sendgrid", credentials=bad_credentials("sendgrid")
    )
    factories.set_integration_status(setup.tenant, integration, "disabled")
    all_due(Integration)
    tick()
    assert db.session.get(Integration, integration.id).last_checked_at is None


class TestCli:
    """``recheck-domains`` and ``check-integrations``: one line per object, exit 0."""

    def test_recheck_domains_prints_each_domain_and_exits_0(
        self, app, api, setup, zone, live_domain
    ):
        runner = app.test_cli_runner()
        zone.unpublish(records_of(live_domain)["verification"]["host"], "TXT")
        result = runner.invoke(args=["recheck-domains", "--tenant", setup.tenant.slug])
        assert result.exit_code == 0, result.output
        # Only example.com is due (never checked); mail.example.net was checked a moment ago.
        assert result.output.splitlines() == [
            f"{setup.tenant.slug} example.com: verified -> verified "
            "(verification=verified spf=verified dkim=verified)",
            "1 domain(s) checked.",
        ]
        result = runner.invoke(args=["recheck-domains", "--tenant", setup.tenant.slug, "--all"])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert (
            f"{setup.tenant.slug} mail.example.net: verified -> at_risk "
            "(verification=missing spf=verified dkim=verified)"
        ) in lines
        assert (
            f"{setup.tenant.slug} example.com: verified -> verified "
            "(verification=verified spf=verified dkim=verified)"
        ) in lines
        assert lines[-1] == "2 domain(s) checked."
        audit = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "email_domain.recheck")
        ).first()
        assert audit.actor_type == "system" and audit.actor_name == "flask recheck-domains"

    def test_dns_down_is_reported_not_a_crash(self, app, api, setup, zone, live_domain):
        zone.failing["*"] = SERVFAIL
        result = app.test_cli_runner().invoke(args=["recheck-domains", "--all"])
        assert result.exit_code == 0, result.output
        assert "mail.example.net: verified -> verified (verification=error" in result.output

    def test_an_unknown_tenant_is_an_error(self, app):
        result = app.test_cli_runner().invoke(args=["recheck-domains", "--tenant", "nope"])
        assert result.exit_code != 0 and "No tenant with the slug 'nope'" in result.output

    def test_check_integrations_prints_each_and_exits_0(self, app, setup, provider_server):
        integration = factories.make_integration(
            setup.tenant,
            "email",
            provider="sendgrid",
            name="Broken SG",
            credentials=bad_credentials("sendgrid"),
        )
        runner = app.test_cli_runner()
        for _ in range(3):
            result = runner.invoke(args=["check-integrations", "--all"])
            assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if "Broken SG" in x)
        assert line.startswith(f"{setup.tenant.slug} Broken SG (sendgrid): healthy -> unhealthy")
        assert "3 failed in a row" in line
        assert db.session.get(Integration, integration.id).status == "active"
        assert result.output.splitlines()[-1] == "3 integration(s) checked."
