"""Console email domains: add, DNS records with copy buttons, verify through a real DNS
server, channels following, delete."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import EmailDomain
from core.services.email_domains import dns_records
from tests import factories
from tests.conftest import base_config
from tests.console.helpers import csrf_token, field_errors, htmx_headers, soup


@pytest.fixture
def app_config(database_url, zone):
    """The app resolves through the test's DNS server only."""
    config = base_config(database_url)
    config.update(DNS_NAMESERVERS=f"127.0.0.1:{zone.port}", DNS_TIMEOUT=2.0)
    return config


def _add(console, domain: str):
    token = csrf_token(console, "/email-domains")
    return console.post("/email-domains", data={"csrf_token": token, "domain": domain})


def test_add_shows_records_with_copy_buttons(console, tenant):
    """Adding normalises the domain and leads to its DNS records, each with copy buttons."""
    response = _add(console, "Mail.Example.NET.")
    assert response.status_code == 303
    domain = db.session.scalar(select(EmailDomain).where(EmailDomain.tenant_id == tenant.id))
    assert domain.domain == "mail.example.net"
    page = soup(console.get(response.headers["Location"]))
    assert "Domain mail.example.net added." in page.find(id="flash").get_text()
    for record in dns_records(domain):
        row = page.find("tr", id=f"record-{record['purpose']}")
        assert row.find(id=f"record-{record['purpose']}-value").get_text() == record["value"]
        targets = [b["data-copy"] for b in row.find_all("button", attrs={"data-copy": True})]
        assert targets == [
            f"#record-{record['purpose']}-host",
            f"#record-{record['purpose']}-value",
        ]
        assert "Not checked" in row.get_text()


def test_add_errors_inline(console):
    """An invalid domain: 422 with the message next to the field and the text kept."""
    response = _add(console, "not a domain")
    assert response.status_code == 422
    assert field_errors(response)["domain"] == ["Enter a domain name such as example.com."]
    assert soup(response).find("input", id="domain")["value"] == "not a domain"


def test_verify_fragment_shows_statuses_and_channels_follow(console, tenant, zone):
    """Verify (htmx): record statuses, domain verified, its pending channel becomes available."""
    ready = factories.make_ready_tenant(tenant)
    domain = factories.make_domain(tenant, "mail.example.net", verified=False)
    channel = factories.make_channel(
        ready,
        "email",
        name="News",
        send_from_email="news@mail.example.net",
        email_domain_id=domain.id,
    )
    assert channel.status == "pending_verification"
    verification = dns_records(domain)[0]
    zone.publish(verification["host"], verification["type"], verification["value"])
    url = f"/email-domains/{domain.id}"
    response = console.post(f"{url}/verify", headers=htmx_headers(console, url))
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)
    page = soup(response)
    records = page.find(id="domain-records")
    assert "Verified" in records.find(class_="domain-status").get_text()
    assert "Found" in records.find("tr", id="record-verification").get_text()
    assert "Not found" in records.find("tr", id="record-spf").get_text()
    assert "Available" in records.find("a", string="News").parent.get_text()
    assert "Channels whose status changed: News." in page.find(id="flash").get_text()


def test_verify_without_js_redirects_with_flash(console, tenant, zone):
    """No JS: POST verify, 303 back to the domain, the flash says it is not verified."""
    domain = factories.make_domain(tenant, "mail.example.net", verified=False)
    token = csrf_token(console, f"/email-domains/{domain.id}")
    response = console.post(f"/email-domains/{domain.id}/verify", data={"csrf_token": token})
    assert response.status_code == 303
    text = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "not verified yet" in text


def test_delete_refused_while_used(console, tenant):
    """Deleting a domain a channel uses names the channel; an unused one is removed."""
    ready = factories.make_ready_tenant(tenant)
    factories.make_channel(ready, "email", name="Support Email")
    refused = console.delete(
        f"/email-domains/{ready.domain.id}/delete", headers=htmx_headers(console, "/email-domains")
    )
    assert "Support Email" in soup(refused).find(id="flash").get_text()
    assert db.session.get(EmailDomain, ready.domain.id) is not None
    unused = factories.make_domain(tenant, "spare.example.org")
    token = csrf_token(console, "/email-domains")
    gone = console.post(f"/email-domains/{unused.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert db.session.get(EmailDomain, unused.id) is None


def test_csrf_isolation_and_read_only(console, tenant, other_tenant):
    """No CSRF token: 400; another tenant's domain: 404."""
    theirs = factories.make_domain(other_tenant, "theirs.example.com")
    assert console.post("/email-domains", data={"domain": "x.example.com"}).status_code == 400
    assert console.get(f"/email-domains/{theirs.id}").status_code == 404
    headers = htmx_headers(console, "/email-domains")
    assert console.post(f"/email-domains/{theirs.id}/verify", headers=headers).status_code == 404


def test_support_staff_cannot_verify(support_console, tenant):
    """Read-only users get 403 on verify and add."""
    domain = factories.make_domain(tenant, "mail.example.net", verified=False)
    token = csrf_token(support_console, "/email-domains")
    response = support_console.post(
        f"/email-domains/{domain.id}/verify", data={"csrf_token": token}
    )
    assert response.status_code == 403
    assert support_console.post("/email-domains", data={"csrf_token": token}).status_code == 403
