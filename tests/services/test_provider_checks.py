"""Live provider checks and test sends, against real local SMTP and HTTP servers."""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from email import message_from_string

import botocore.auth
import pytest
from sqlalchemy import select

from app import create_app
from core.extensions import db
from core.models import AuditEvent, Channel
from core.providers import DEFAULT_BASE_URLS
from core.providers.endpoints import parse_base_urls
from core.providers.outcome import ProviderFailure, scrub
from core.providers.ses import sigv4_headers
from core.providers.transport import network_failure
from core.services import channels as channel_service
from core.services import provider_checks
from core.services.provider_checks import check_credentials
from core.settings import SettingsError
from tests import factories
from tests.conftest import base_config
from tests.services.fake_providers import (
    CHANNEL_TYPE,
    GOOD,
    HTTP_PROVIDERS,
    SMTP_PASSWORD,
    SMTP_USER,
    WRONG_SECRET,
    ProviderServer,
    SilentServer,
    SmtpServer,
    bad_credentials,
    closed_port,
    make_tls_files,
)


@pytest.fixture(scope="module")
def provider_server():
    """One fake provider API server for the module."""
    with ProviderServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(CA file, server TLS context) for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def app_config(database_url, provider_server, tls):
    """Providers point at the local fake; the test CA is trusted; short timeouts."""
    provider_server.reset()
    config = base_config(database_url)
    config.update(
        PROVIDER_BASE_URLS=provider_server.base_urls(),
        PROVIDER_TIMEOUT=3.0,
        PROVIDER_CA_FILE=tls[0],
    )
    return config


@pytest.fixture(scope="module")
def checks_app(provider_server, tls):
    """One app for the checks that touch no database (they only call providers).

    Tests change its configuration with ``monkeypatch.setitem`` so nothing leaks between them.
    """
    config = base_config("sqlite://")
    config.update(
        PROVIDER_BASE_URLS=provider_server.base_urls(),
        PROVIDER_TIMEOUT=3.0,
        PROVIDER_CA_FILE=tls[0],
    )
    application = create_app(config)
    with application.app_context():
        yield application


@pytest.fixture
def provider_app(checks_app, provider_server):
    """``checks_app`` with the fake provider's request log cleared."""
    provider_server.reset()
    return checks_app


@pytest.fixture
def console_log():
    """Records what the console provider writes to the log."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("channels.console_provider")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def smtp_credentials(port: int, **overrides) -> dict:
    data = {"host": "127.0.0.1", "port": port, "use_tls": False}
    data.update(overrides)
    return data


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", {}),
        ('{"sendgrid": "http://a:1/"}', {"sendgrid": "http://a:1"}),
        (
            "sendgrid=http://a:1, twilio=http://b:2",
            {"sendgrid": "http://a:1", "twilio": "http://b:2"},
        ),
        ({"ses": "http://c/{region}"}, {"ses": "http://c/{region}"}),
    ],
)
def test_base_urls_accept_json_pairs_and_dicts(value, expected):
    """PROVIDER_BASE_URLS may be a JSON object, provider=url pairs or a dict."""
    assert parse_base_urls(value) == expected


@pytest.mark.parametrize(
    "value", ["{not json", "[1]", "sendgrid", "smtp=http://x", '{"nope": "x"}']
)
def test_base_urls_reject_nonsense(value):
    """A malformed or unknown-provider setting is refused with a reason."""
    with pytest.raises(ValueError):
        parse_base_urls(value)


def test_invalid_base_urls_setting_stops_the_app_before_any_check():
    """A broken PROVIDER_BASE_URLS refuses at start with a clear message; no check sees it."""
    with pytest.raises(SettingsError) as refused:
        create_app({**base_config("sqlite://"), "PROVIDER_BASE_URLS": "sendgrid"})
    assert "PROVIDER_BASE_URLS" in refused.value.message


def test_sigv4_matches_the_aws_test_suite_vector(monkeypatch):
    """SigV4 signing reproduces AWS's published get-vanilla example."""
    # The suite signs at a fixed instant: botocore's clock is frozen there (botocore signs).
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: datetime(2015, 8, 30, 12, 36)
    )
    headers = sigv4_headers(
        "GET",
        "https://example.amazonaws.com/",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="service",
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    assert headers["x-amz-date"] == "20150830T123600Z"


@pytest.mark.parametrize(
    "method, url, signature",
    [
        (
            "POST",
            "https://example.amazonaws.com/",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_sigv4_matches_more_aws_test_suite_vectors(monkeypatch, method, url, signature):
    """SigV4 signing reproduces AWS's post-vanilla and get-vanilla-query-order-key-case."""
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: datetime(2015, 8, 30, 12, 36)
    )
    headers = sigv4_headers(
        method,
        url,
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="service",
    )
    assert headers["authorization"].endswith(
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


def test_scrub_removes_plain_and_url_encoded_secrets():
    """Secrets never survive in a message, even URL-encoded."""
    text = f"bad key {WRONG_SECRET} in ?api_secret=WRONG-s3cr3t%2Fvalue%2B1"
    cleaned = scrub(text, [WRONG_SECRET])
    assert WRONG_SECRET not in cleaned and "WRONG-s3cr3t" not in cleaned
    assert cleaned.count("********") == 2


def test_dns_failure_is_described_in_plain_words(provider_app):
    """An unresolvable host name is reported as such."""
    message = network_failure("SendGrid", "api.sendgrid.invalid", socket.gaierror(-2, "Name"))
    assert (
        message
        == "Could not reach SendGrid: the host name api.sendgrid.invalid could not be resolved."
    )


# --- HTTP providers -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_http_provider_accepts_good_credentials(provider_app, provider_server, provider):
    """Each provider's credential-check endpoint is called and a 200 means ok."""
    result = check_credentials(provider, GOOD[provider])
    assert result.ok, result.message
    assert provider_server.received, "the provider was not called"


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_http_provider_rejects_bad_credentials_without_leaking_them(
    provider_app, provider_server, provider
):
    """401/403 reads as rejected credentials; the wrong secret never appears in the message."""
    result = check_credentials(provider, bad_credentials(provider))
    assert not result.ok
    assert "rejected the credentials" in result.message
    assert "WRONG-s3cr3t" not in result.message


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_http_provider_unreachable(provider_app, provider, monkeypatch):
    """A closed port reads as 'connection was refused'."""
    port = closed_port()
    urls = {key: f"http://127.0.0.1:{port}" for key in DEFAULT_BASE_URLS}
    monkeypatch.setitem(provider_app.config, "PROVIDER_BASE_URLS", urls)
    result = check_credentials(provider, GOOD[provider])
    assert not result.ok
    assert result.message.endswith(f"at 127.0.0.1:{port}: the connection was refused.")


@pytest.mark.parametrize("provider", ["sendgrid", "twilio", "ses"])
def test_http_provider_timeout(provider_app, provider, monkeypatch):
    """A server that never answers reads as a timeout after PROVIDER_TIMEOUT."""
    monkeypatch.setitem(provider_app.config, "PROVIDER_TIMEOUT", 0.3)
    with SilentServer() as silent:
        urls = {key: f"http://127.0.0.1:{silent.port}" for key in DEFAULT_BASE_URLS}
        monkeypatch.setitem(provider_app.config, "PROVIDER_BASE_URLS", urls)
        result = check_credentials(provider, GOOD[provider])
    assert not result.ok
    assert "did not answer within 0.3 seconds" in result.message


def test_http_provider_unexpected_status(provider_app, provider_server):
    """A 5xx is an unexpected status, with the provider's own text."""
    provider_server.force_status = 503
    result = check_credentials("postmark", GOOD["postmark"])
    assert not result.ok
    assert result.message == (
        "Postmark answered with an unexpected status (HTTP 503: internal trouble)."
    )


def test_providers_are_called_the_documented_way(provider_app, provider_server):
    """Check endpoints, methods and auth schemes are each provider's real ones."""
    for provider in HTTP_PROVIDERS:
        assert check_credentials(provider, GOOD[provider]).ok
    calls = {(r["method"], r["path"]) for r in provider_server.received}
    assert calls == {
        ("GET", "/sendgrid/v3/scopes"),
        ("GET", "/mailgun-us/v3/domains/mg.example.com"),
        ("GET", "/ses/eu-west-1/v2/email/account"),
        ("GET", "/postmark/server"),
        ("GET", "/twilio/2010-04-01/Accounts/AC0123456789.json"),
        ("GET", "/vonage/account/get-balance"),
        ("GET", "/messagebird/balance"),
    }
    headers = {r["path"].split("/")[1]: r["headers"] for r in provider_server.received}
    assert headers["sendgrid"]["authorization"] == "Bearer SG.good-key"
    assert headers["postmark"]["x-postmark-server-token"] == "pm-good-token"
    assert headers["messagebird"]["authorization"] == "AccessKey mb-good-key"
    assert headers["ses"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDGOOD/")


def test_mailgun_region_picks_the_eu_endpoint(provider_app, provider_server):
    """region=eu calls the EU base URL."""
    assert check_credentials("mailgun", {**GOOD["mailgun"], "region": "eu"}).ok
    assert provider_server.received[-1]["path"].startswith("/mailgun-eu/")


def test_mailgun_unknown_domain_is_named(provider_app, provider_server):
    """A good key without the domain says which domain is missing."""
    result = check_credentials("mailgun", {**GOOD["mailgun"], "domain": "other.example.com"})
    assert not result.ok
    assert result.message == (
        "Mailgun accepted the API key but has no domain other.example.com in the US region."
    )


def test_console_provider_is_always_ok(provider_app):
    """The console provider has nothing to connect to."""
    assert check_credentials("console", {}).ok


# --- SMTP -----------------------------------------------------------------------------------


def test_smtp_plain_without_auth(provider_app):
    """A plain SMTP server without AUTH: connecting is enough."""
    with SmtpServer() as server:
        result = check_credentials("smtp", smtp_credentials(server.port))
    assert result.ok
    assert result.message == f"Connected to 127.0.0.1:{server.port}."


def test_smtp_auth_without_tls(provider_app):
    """AUTH on a plain connection (auth_require_tls off) signs in."""
    with SmtpServer(auth=True) as server:
        good = check_credentials(
            "smtp", smtp_credentials(server.port, username=SMTP_USER, password=SMTP_PASSWORD)
        )
        bad = check_credentials(
            "smtp", smtp_credentials(server.port, username=SMTP_USER, password=WRONG_SECRET)
        )
    assert good.ok and good.message.endswith("and signed in.")
    assert not bad.ok
    assert bad.message.startswith("The SMTP server rejected the username or password (535")
    assert "WRONG" not in bad.message


def test_smtp_starttls_with_auth(provider_app, tls):
    """STARTTLS, certificate verified against the configured CA, then AUTH."""
    with SmtpServer(tls_context=tls[1], auth=True) as server:
        result = check_credentials(
            "smtp",
            smtp_credentials(server.port, use_tls=True, username=SMTP_USER, password=SMTP_PASSWORD),
        )
    assert result.ok, result.message
    assert "with STARTTLS and signed in" in result.message


def test_smtp_starttls_untrusted_certificate(provider_app, tls, monkeypatch):
    """Without the CA the server's certificate is not trusted, and that is said."""
    monkeypatch.setitem(provider_app.config, "PROVIDER_CA_FILE", None)
    with SmtpServer(tls_context=tls[1]) as server:
        result = check_credentials("smtp", smtp_credentials(server.port, use_tls=True))
    assert not result.ok
    assert "certificate" in result.message


def test_smtp_auth_requires_tls_first(provider_app, tls):
    """A server that offers AUTH only after STARTTLS explains what to change."""
    with SmtpServer(tls_context=tls[1], auth=True) as server:
        result = check_credentials(
            "smtp", smtp_credentials(server.port, username=SMTP_USER, password=SMTP_PASSWORD)
        )
    assert not result.ok
    assert "authentication" in result.message.lower() or "STARTTLS" in result.message


def test_smtp_starttls_not_offered(provider_app):
    """Use STARTTLS against a server without it: a clear message."""
    with SmtpServer() as server:
        result = check_credentials("smtp", smtp_credentials(server.port, use_tls=True))
    assert not result.ok
    assert "does not offer STARTTLS" in result.message


def test_smtp_unreachable_and_timeout(provider_app, monkeypatch):
    """Closed port: refused; a silent server: timeout."""
    port = closed_port()
    refused = check_credentials("smtp", smtp_credentials(port))
    monkeypatch.setitem(provider_app.config, "PROVIDER_TIMEOUT", 0.3)
    with SilentServer() as silent:
        silent_result = check_credentials("smtp", smtp_credentials(silent.port))
    assert (
        refused.message
        == f"Could not reach the SMTP server at 127.0.0.1:{port}: the connection was refused."
    )
    assert silent_result.message == (
        f"The SMTP server did not answer within 0.3 seconds (127.0.0.1:{silent.port})."
    )


@pytest.mark.parametrize("host", ["a..b", "é" * 70, "x" * 64 + ".com", "\udc00", ".."])
def test_smtp_host_the_idna_codec_refuses_is_a_failure_not_a_crash(provider_app, host):
    """A host stored before the host rule, refused by smtplib's IDNA codec: a sentence."""
    result = check_credentials("smtp", smtp_credentials(25, host=host))
    assert not result.ok
    assert result.message.startswith("The SMTP host ")
    assert result.message.endswith("is not a host name nor an IP address.")


# --- the service: stored and audited ----------------------------------------------------------


def test_check_integration_stores_and_audits(app, tenant):
    """The outcome lands on the integration and in the audit log, without secrets."""
    integration = factories.make_integration(
        tenant, provider="sendgrid", credentials={"api_key": WRONG_SECRET}
    )
    outcome = provider_checks.check_integration(tenant.id, integration.id, factories.ACTOR)
    db.session.commit()
    assert outcome.result.ok is False
    assert integration.last_check_ok is False
    assert integration.last_checked_at is not None
    assert integration.last_check_message == outcome.result.message
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "integration.check"))
    assert event.resource_id == integration.id
    assert event.changes["last_check_ok"] == {"before": None, "after": False}
    assert "WRONG" not in str(event.changes)


def test_check_integration_of_other_tenant_is_not_found(app, tenant, other_tenant):
    """Another tenant's integration id behaves like an unknown one."""
    from core.errors import NotFound

    integration = factories.make_integration(other_tenant)
    with pytest.raises(NotFound):
        provider_checks.check_integration(tenant.id, integration.id, factories.ACTOR)


def test_provider_failure_carries_its_message():
    """ProviderFailure keeps the sentence it was raised with."""
    assert ProviderFailure("x").message == "x"


# --- API: POST /api/integrations/{id}/check -----------------------------------------------------


def test_api_check_returns_the_integration_with_last_check(app, api, tenant, provider_server):
    """200 with the integration and last_check {ok, message, checked_at}; secrets masked."""
    integration = factories.make_integration(
        tenant, provider="twilio", channel_type="sms", credentials=GOOD["twilio"]
    )
    response = api.post(f"/api/integrations/{integration.id}/check")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["id"] == integration.id
    assert body["last_check"]["ok"] is True
    assert body["last_check"]["message"] == "Twilio accepted the account SID and auth token."
    assert body["last_check"]["checked_at"].endswith("Z")
    assert body["credentials"]["auth_token"] == "********"
    assert "tw-good-token" not in response.get_data(as_text=True)
    again = api.get(f"/api/integrations/{integration.id}").json
    assert again["last_check"] == body["last_check"]


def test_api_check_isolation_and_scope(app, client, api, tenant, other_tenant):
    """Another tenant's id and unknown ids are 404; a read key gets 403."""
    theirs = factories.make_integration(other_tenant)
    mine = factories.make_integration(tenant)
    assert api.post(f"/api/integrations/{theirs.id}/check").status_code == 404
    assert api.post("/api/integrations/not-an-id/check").status_code == 404
    reader = factories.ApiClient(client, factories.make_api_key(tenant, scope="read"))
    response = reader.post(f"/api/integrations/{mine.id}/check")
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


# --- test sends -----------------------------------------------------------------------------


def _http_channel(tenant, provider: str) -> Channel:
    """An available channel of the provider's type on the fake provider."""
    integration = factories.make_integration(
        tenant, CHANNEL_TYPE[provider], provider=provider, credentials=GOOD[provider]
    )
    if CHANNEL_TYPE[provider] == "sms":
        return factories.make_phone_number(tenant, integration, create_channel=True).channel
    domain = factories.make_domain(tenant, f"{provider}.example.com")
    outcome = channel_service.create_channel(
        tenant.id,
        {
            "name": f"{provider} email",
            "channel_type": "email",
            "integration_id": integration.id,
            "send_from_email": f"hello@{domain.domain}",
            "email_domain_id": domain.id,
        },
        factories.ACTOR,
    )
    db.session.commit()
    return outcome.channel


SEND_CALLS = {
    "sendgrid": ("POST", "/sendgrid/v3/mail/send"),
    "mailgun": ("POST", "/mailgun-us/v3/mg.example.com/messages"),
    "ses": ("POST", "/ses/eu-west-1/v2/email/outbound-emails"),
    "postmark": ("POST", "/postmark/email"),
    "twilio": ("POST", "/twilio/2010-04-01/Accounts/AC0123456789/Messages.json"),
    "vonage": ("POST", "/vonage/sms/json"),
    "messagebird": ("POST", "/messagebird/messages"),
}


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_api_test_send_calls_the_providers_send_endpoint(
    app, api, tenant, provider_server, provider
):
    """Each HTTP provider's real send endpoint receives the message for the recipient."""
    channel = _http_channel(tenant, provider)
    to = "dev@example.org" if channel.channel_type == "email" else "+14155550999"
    response = api.post(f"/api/channels/{channel.id}/test", json={"to": to})
    assert response.status_code == 200
    assert response.json["ok"] is True, response.json
    sent = provider_server.received[-1]
    assert (sent["method"], sent["path"]) == SEND_CALLS[provider]
    payload = sent["body"].decode()
    assert to.lstrip("+") in payload or to in payload or "dev%40example.org" in payload


@pytest.mark.parametrize("provider", ["sendgrid", "vonage"])
def test_api_test_send_reports_refusal_as_not_ok(app, api, tenant, provider_server, provider):
    """Refused by the provider: 200 with ok false and the reason; the secret is scrubbed."""
    channel = _http_channel(tenant, provider)
    from core.services.integrations import update_integration

    update_integration(
        tenant.id,
        channel.integration_id,
        {"credentials": bad_credentials(provider)},
        factories.ACTOR,
    )
    db.session.commit()
    to = "dev@example.org" if channel.channel_type == "email" else "+14155550999"
    response = api.post(f"/api/channels/{channel.id}/test", json={"to": to})
    assert response.status_code == 200
    assert response.json["ok"] is False
    assert "WRONG" not in response.json["message"]
    expected = (
        "Vonage refused the message: Bad Credentials." if provider == "vonage" else "rejected"
    )
    assert expected in response.json["message"]


def test_smtp_test_send_is_received(app, api, tenant, tls):
    """The SMTP test message arrives over STARTTLS+AUTH, From the channel's address."""
    with SmtpServer(tls_context=tls[1], auth=True) as server:
        integration = factories.make_integration(
            tenant,
            provider="smtp",
            credentials=smtp_credentials(
                server.port, use_tls=True, username=SMTP_USER, password=SMTP_PASSWORD
            ),
        )
        domain = factories.make_domain(tenant, "mail.example.com")
        channel = channel_service.create_channel(
            tenant.id,
            {
                "name": "SMTP",
                "channel_type": "email",
                "integration_id": integration.id,
                "send_from_email": "hello@mail.example.com",
                "email_domain_id": domain.id,
            },
            factories.ACTOR,
        ).channel
        db.session.commit()
        response = api.post(f"/api/channels/{channel.id}/test", json={"to": "Dev@Example.org"})
    assert response.status_code == 200
    assert response.json == {
        "ok": True,
        "message": f"Sent to Dev@example.org through 127.0.0.1:{server.port}.",
    }
    [received] = server.messages
    assert received["rcpt_tos"] == ["Dev@example.org"]
    assert received["tls"] and received["authenticated"]
    message = message_from_string(received["content"])
    assert message["From"] == "hello@mail.example.com"
    assert message["Subject"] == "Test message from Channels"
    assert "SMTP" in message.get_payload()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "channel.test_send"))
    assert event.changes == {
        "to": "Dev@example.org",
        "ok": True,
        "message": response.json["message"],
    }


@pytest.mark.parametrize("channel_type", ["email", "sms"])
def test_console_test_send_writes_to_the_log(app, api, setup, console_log, channel_type):
    """The console provider logs the message (logger channels.console_provider)."""
    channel = factories.make_channel(setup, channel_type)
    to = "dev@example.org" if channel_type == "email" else "+442071838750"
    response = api.post(f"/api/channels/{channel.id}/test", json={"to": to})
    assert response.status_code == 200
    assert response.json["ok"] is True
    [record] = console_log
    assert record.name == "channels.console_provider"
    assert to in record.getMessage() and channel.id in record.getMessage()


@pytest.mark.parametrize(
    "channel_type, body, field",
    [
        ("email", {"to": "not an address"}, "to"),
        ("email", {"to": "+14155550123"}, "to"),
        ("sms", {"to": "dev@example.org"}, "to"),
        ("sms", {"to": "4155550123"}, "to"),
        ("sms", {}, "to"),
        ("email", {"to": "a@example.org", "cc": "b@example.org"}, "cc"),
    ],
)
def test_api_test_send_validates_the_recipient(app, api, setup, channel_type, body, field):
    """An email address for email channels, E.164 for SMS; unknown fields rejected (422)."""
    channel = factories.make_channel(setup, channel_type)
    response = api.post(f"/api/channels/{channel.id}/test", json=body)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_api_test_send_refuses_unavailable_channels(app, api, setup):
    """Disabled and pending-verification channels answer 409 and send nothing."""
    disabled = factories.make_channel(setup, "email")
    channel_service.update_channel(
        setup.tenant.id, disabled.id, {"status": "disabled"}, factories.ACTOR
    )
    pending_domain = factories.make_domain(setup.tenant, "pending.example.com", verified=False)
    pending = factories.make_channel(
        setup, "email", send_from_email="a@pending.example.com", email_domain_id=pending_domain.id
    )
    db.session.commit()
    first = api.post(f"/api/channels/{disabled.id}/test", json={"to": "dev@example.org"})
    second = api.post(f"/api/channels/{pending.id}/test", json={"to": "dev@example.org"})
    assert (first.status_code, first.json["error"]["code"]) == (409, "conflict")
    assert "disabled" in first.json["error"]["message"]
    assert second.status_code == 409
    assert "pending.example.com is not verified" in second.json["error"]["message"]


def test_api_test_send_isolation_scope_and_body(app, client, api, setup, other_tenant):
    """Other tenant's channel: 404; read key: 403; non-JSON: 415; not an object: 400."""
    other = factories.make_ready_tenant(other_tenant, "other.example.com")
    theirs = factories.make_channel(other, "email")
    mine = factories.make_channel(setup, "email")
    assert api.post(f"/api/channels/{theirs.id}/test", json={"to": "a@b.org"}).status_code == 404
    reader = factories.ApiClient(client, factories.make_api_key(setup.tenant, scope="read"))
    assert reader.post(f"/api/channels/{mine.id}/test", json={"to": "a@b.org"}).status_code == 403
    assert api.post(f"/api/channels/{mine.id}/test", data="to=a").status_code == 415
    assert api.post(f"/api/channels/{mine.id}/test", json=["a"]).status_code == 400
