"""Email domain verification against a real DNS server (dnslib) that the test runs on 127.0.0.1.

The app resolves through ``DNS_NAMESERVERS="127.0.0.1:<port>"``: real UDP queries, real answers
and real timeouts; no resolver is patched.
"""

from __future__ import annotations

import socket

import pytest

from tests import factories
from tests.api.assertions import assert_error
from tests.conftest import base_config


@pytest.fixture
def app_config(database_url, zone):
    """The app resolves through the test's DNS server only."""
    config = base_config(database_url)
    config.update(DNS_NAMESERVERS=f"127.0.0.1:{zone.port}", DNS_TIMEOUT=2.0)
    return config


@pytest.fixture
def domain(api, setup):
    """A domain added through the API (pending), with its DNS records to publish."""
    response = api.post("/api/email_domains", json={"domain": "Mail.Example.NET."})
    assert response.status_code == 201
    return response.get_json()


def records_of(domain_body) -> dict[str, dict]:
    return {record["purpose"]: record for record in domain_body["dns_records"]}


def publish(zone, domain_body, *purposes):
    for purpose in purposes:
        record = records_of(domain_body)[purpose]
        zone.publish(record["host"], record["type"], record["value"])


def test_a_new_domain_is_pending_with_its_records(domain):
    """POST: lower-case, no trailing dot, pending; verification TXT, SPF TXT, DKIM CNAME."""
    assert domain["domain"] == "mail.example.net"
    assert domain["status"] == "pending"
    records = records_of(domain)
    assert set(records) == {"verification", "spf", "dkim"}
    assert records["verification"]["type"] == "TXT"
    assert records["verification"]["host"].endswith(".mail.example.net")
    assert records["spf"]["type"] == "TXT" and records["spf"]["value"].startswith("v=spf1 ")
    assert records["dkim"]["type"] == "CNAME"
    assert all(record["status"] == "pending" for record in domain["dns_records"])
    assert all(
        set(record)
        == {
            "type",
            "host",
            "value",
            "purpose",
            "status",
            "found",
            "last_checked_at",
            "last_verified_at",
            "hint",
        }
        for record in domain["dns_records"]
    )
    assert all(
        record["found"] is None and record["last_checked_at"] is None and record["hint"]
        for record in domain["dns_records"]
    )


def test_verification_record_found_verifies_and_channels_become_available(api, setup, zone, domain):
    """Verification TXT published: verified; the channel that was pending becomes available."""
    channel = factories.make_channel(
        setup,
        "email",
        email_domain_id=domain["id"],
        send_from_email="hi@mail.example.net",
        is_default=False,
    )
    assert channel.status == "pending_verification"
    publish(zone, domain, "verification")

    response = api.post(f"/api/email_domains/{domain['id']}/verify")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "verified" and body["verified_at"] and body["last_checked_at"]
    statuses = {r["purpose"]: r["status"] for r in body["dns_records"]}
    assert statuses == {"verification": "verified", "spf": "missing", "dkim": "missing"}
    assert api.get(f"/api/channels/{channel.id}").get_json()["status"] == "available"
    events = api.get("/api/audit_events?action=email_domain.verify").get_json()["data"]
    assert events[0]["changes"]["status"] == {"before": "pending", "after": "verified"}


def test_a_pending_default_becomes_available_on_verification(api, setup, zone, domain):
    """The first email channel on a pending domain is the default; it is available once verified."""
    created = api.post(
        "/api/channels",
        json=setup.email_payload(
            email_domain_id=domain["id"], send_from_email="a@mail.example.net"
        ),
    ).get_json()
    assert created["status"] == "pending_verification"
    publish(zone, domain, "verification")
    api.post(f"/api/email_domains/{domain['id']}/verify")
    channel = api.get(f"/api/channels/{created['id']}").get_json()
    assert channel["status"] == "available" and channel["is_default"] is True


def test_every_record_published_is_reported_verified(api, zone, domain):
    """SPF and DKIM found too: every record's status is verified."""
    publish(zone, domain, "verification", "spf", "dkim")
    body = api.post(f"/api/email_domains/{domain['id']}/verify").get_json()
    assert {r["status"] for r in body["dns_records"]} == {"verified"}
    assert (
        api.get(f"/api/email_domains/{domain['id']}").get_json()["dns_records"]
        == body["dns_records"]
    )


def test_spf_among_other_txt_records_is_found(api, zone, domain):
    """An SPF record written by hand with our include among other mechanisms counts."""
    include = records_of(domain)["spf"]["value"].split()[1]
    zone.publish("mail.example.net", "TXT", "google-site-verification=abc")
    zone.publish("mail.example.net", "TXT", f"v=spf1 include:_spf.google.com {include} -all")
    body = api.post(f"/api/email_domains/{domain['id']}/verify").get_json()
    statuses = {r["purpose"]: r["status"] for r in body["dns_records"]}
    assert statuses["spf"] == "verified"
    assert statuses["verification"] == "missing" and body["status"] == "failed"


def test_no_records_fails_with_every_record_missing(api, setup, zone, domain):
    """Nothing published: failed, every record missing, channels stay pending."""
    channel = factories.make_channel(
        setup, "email", email_domain_id=domain["id"], send_from_email="hi@mail.example.net"
    )
    response = api.post(f"/api/email_domains/{domain['id']}/verify")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "failed" and body["verified_at"] is None and body["last_checked_at"]
    assert {r["purpose"]: r["status"] for r in body["dns_records"]} == {
        "verification": "missing",
        "spf": "missing",
        "dkim": "missing",
    }
    assert api.get(f"/api/channels/{channel.id}").get_json()["status"] == "pending_verification"


def test_a_wrong_token_is_a_mismatch(api, zone, domain):
    """A verification TXT with another token does not verify: ``mismatch``, with what was found
    and a hint."""
    host = records_of(domain)["verification"]["host"]
    zone.publish(host, "TXT", "channels-verification=someone-elses-token")
    body = api.post(f"/api/email_domains/{domain['id']}/verify").get_json()
    assert body["status"] == "failed"
    record = records_of(body)["verification"]
    assert record["status"] == "mismatch"
    assert record["found"] == ["channels-verification=someone-elses-token"]
    assert "another value" in record["hint"]
    assert record["last_checked_at"] and record["last_verified_at"] is None


def test_a_verified_domain_is_at_risk_not_failed_when_a_later_check_fails(api, setup, zone, domain):
    """Records removed after verification: ``at_risk`` (DESIGN §9), never failed by "Verify";
    its channels still send; the record statuses tell the truth."""
    channel = factories.make_channel(
        setup, "email", email_domain_id=domain["id"], send_from_email="hi@mail.example.net"
    )
    publish(zone, domain, "verification")
    api.post(f"/api/email_domains/{domain['id']}/verify")
    zone.records.clear()
    for _ in range(4):
        body = api.post(f"/api/email_domains/{domain['id']}/verify").get_json()
        assert body["status"] == "at_risk" and body["at_risk_since"]
    record = records_of(body)["verification"]
    assert record["status"] == "missing" and record["last_verified_at"]
    assert api.get(f"/api/channels/{channel.id}").get_json()["status"] == "available"


def test_verify_accepts_an_empty_json_body(api, zone, domain):
    """POST verify with an empty JSON object is fine (without a body: the other tests)."""
    publish(zone, domain, "verification")
    response = api.post(f"/api/email_domains/{domain['id']}/verify", json={})
    assert response.status_code == 200 and response.get_json()["status"] == "verified"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"domain": "not a domain"}, "domain"),
        ({"domain": "example.test"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"domain": "example.com", "status": "verified"}, "status"),
    ],
    ids=["spaces", "reserved tld", "empty", "read-only status"],
)
def test_bad_domains_are_422(api, setup, body, field):
    """Domain names are validated; a tenant cannot declare a domain verified."""
    error = assert_error(api.post("/api/email_domains", json=body), 422, "validation_error")
    assert field in error["fields"]


def test_a_duplicate_domain_is_422(api, domain):
    """The same domain twice (in another spelling) for one tenant: 422."""
    error = assert_error(
        api.post("/api/email_domains", json={"domain": "MAIL.example.net"}), 422, "validation_error"
    )
    assert list(error["fields"]) == ["domain"]


class TestUnreachableDns:
    """A nameserver that does not answer: a clear result in time, never a 500."""

    @pytest.fixture
    def app_config(self, database_url):
        """DNS_NAMESERVERS points at a UDP port nobody listens on; DNS_TIMEOUT is small."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # now nobody listens there
        config = base_config(database_url)
        config.update(DNS_NAMESERVERS=f"127.0.0.1:{port}", DNS_TIMEOUT=0.3)
        return config

    def test_unanswered_lookups_are_errors_not_500s(self, api, setup):
        """Every record status is ``error``; the domain is not verified; the response is 200."""
        domain = api.post("/api/email_domains", json={"domain": "example.net"}).get_json()
        response = api.post(f"/api/email_domains/{domain['id']}/verify")
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "failed"
        assert {r["status"] for r in body["dns_records"]} == {"error"}


class TestSilentDns:
    """A nameserver that receives queries and never answers: the lookups time out."""

    @pytest.fixture
    def silent_port(self):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]
        sink.close()

    @pytest.fixture
    def app_config(self, database_url, silent_port):
        config = base_config(database_url)
        config.update(DNS_NAMESERVERS=f"127.0.0.1:{silent_port}", DNS_TIMEOUT=0.2)
        return config

    def test_timeouts_are_errors(self, api, setup):
        """Timed-out lookups: every record status ``error``, 200, domain failed."""
        domain = api.post("/api/email_domains", json={"domain": "example.net"}).get_json()
        response = api.post(f"/api/email_domains/{domain['id']}/verify")
        assert response.status_code == 200
        assert {r["status"] for r in response.get_json()["dns_records"]} == {"error"}
