"""Console pieces of issue 15: the "Needs attention" banner on the domains, channels and
integrations pages, the badges, and each DNS record's state on the domain page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db_types import rfc3339, utcnow
from core.extensions import db
from tests import factories
from tests.console.helpers import open_tenant_in_session, soup

PAGES = ("/channels", "/email-domains", "/integrations")


@pytest.fixture
def troubled(tenant):
    """A ready tenant whose domain is at risk and whose email integration is unhealthy."""
    ready = factories.make_ready_tenant(tenant)
    channel = factories.make_channel(ready, "email", name="Support Email")
    now = utcnow()
    domain = ready.domain
    domain.status = "at_risk"
    domain.at_risk_since = now
    domain.failed_checks = 1
    domain.record_statuses = {"verification": "mismatch", "spf": "missing", "dkim": "error"}
    domain.record_details = {
        "verification": {
            "found": ["channels-verification=old"],
            "last_checked_at": rfc3339(now),
            "last_verified_at": rfc3339(now - timedelta(days=1)),
        },
        "spf": {"found": [], "last_checked_at": rfc3339(now)},
        "dkim": {"found": None, "last_checked_at": rfc3339(now)},
    }
    integration = ready.email_integration
    integration.unhealthy_since = now
    integration.failed_checks = 3
    integration.last_checked_at = now
    integration.last_check_ok = False
    integration.last_check_message = "The provider refused the credentials (401)."
    db.session.commit()
    return ready, channel


@pytest.mark.parametrize("path", PAGES)
def test_the_banner_names_the_domain_at_risk_and_the_unhealthy_integration(console, troubled, path):
    """Each page lists what needs attention, with links, since when and what happens next."""
    ready, _ = troubled
    banner = soup(console.get(path)).find(class_="recheck-warnings")
    assert banner is not None
    text = " ".join(banner.get_text().split())
    assert "The domain example.com is at risk since" in text
    assert "after 2 more failed check(s) they stop" in text
    assert f"The integration {ready.email_integration.name} is unhealthy since" in text
    assert "The provider refused the credentials (401)." in text


def test_support_staff_see_the_banner_too(support_console, troubled):
    """Read-only viewers see the same warnings (no action in them)."""
    ready, _ = troubled
    open_tenant_in_session(support_console, ready.tenant.id)
    banner = soup(support_console.get("/channels")).find(class_="recheck-warnings")
    assert banner is not None and "example.com" in banner.get_text()


def test_no_banner_when_all_is_well(console, tenant):
    """Nothing at risk, nothing unhealthy: no banner."""
    factories.make_ready_tenant(tenant)
    for path in PAGES:
        assert soup(console.get(path)).find(class_="recheck-warnings") is None


def test_badges_on_rows(console, troubled):
    """Channels: "Domain at risk" and "Unhealthy" (its integration); domains: "At risk" and the
    SPF/DKIM warning; integrations: "Unhealthy" (still "Active")."""
    ready, channel = troubled
    row = soup(console.get("/channels")).find("tr", id=f"channel-{channel.id}")
    assert row.find(class_="badge-at-risk").get_text() == "Domain at risk"
    assert row.find(class_="badge-unhealthy").get_text() == "Unhealthy"
    row = soup(console.get("/email-domains")).find("tr", id=f"domain-{ready.domain.id}")
    assert row.find(class_="badge-at-risk").get_text() == "At risk"
    assert row.find(class_="badge-record-warning").get_text() == "SPF/DKIM to fix"
    row = soup(console.get("/integrations")).find(
        "tr", id=f"integration-{ready.email_integration.id}"
    )
    assert row.find(class_="badge-available").get_text() == "Active"
    assert row.find(class_="badge-unhealthy").get_text() == "Unhealthy"


def test_the_domain_page_shows_each_record_state(console, troubled):
    """Status in words, the hint, what was found and when it was last checked and found."""
    ready, _ = troubled
    page = soup(console.get(f"/email-domains/{ready.domain.id}"))
    assert page.find(id="domain-at-risk") is not None
    ownership = page.find("tr", id="record-verification")
    text = " ".join(ownership.get_text().split())
    assert "Wrong value" in text and "change it to the value shown" in text
    assert "Found: channels-verification=old" in text
    assert "Checked" in text and "last found" in text
    spf = " ".join(page.find("tr", id="record-spf").get_text().split())
    assert "Not found" in spf and "publish it" in spf
    dkim = " ".join(page.find("tr", id="record-dkim").get_text().split())
    assert "DNS did not answer" in dkim and "never counts against the domain" in dkim
