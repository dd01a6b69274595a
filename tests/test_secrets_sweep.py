"""Secrets never leave: a scripted tour of every API endpoint and every console page with
integrations whose secrets are known markers, API keys whose values are known, and passwords
typed into the console (a failed sign-in, a teammate's initial password, one's own change).

Captured: every response body and header, every log record (the app's logger, Werkzeug's and
the root logger, at DEBUG), and every row of every table. No integration secret and no API key
may appear anywhere — except the one console response that shows a newly created key once
(and the Authorization headers we send). The same for second factors: the authenticator app's
seed after confirmation, recovery codes after the page that shows them, passkey material.
Credentials at rest are Fernet tokens, and CREDENTIALS_KEY rotation keeps old tokens readable
while new writes use the first key.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from core.extensions import db
from core.models import AuditEvent, Integration, Passkey
from core.services import mfa
from tests import factories
from tests.console.conftest import ConsoleClient, make_console_user
from tests.console.helpers import PASSWORD, csrf_token, open_tenant_in_session, sign_in
from tests.reliability.sweep import get_urls

HOOK = "http://127.0.0.1:9/sweep"
SECRET_FIELDS = {
    "smtp": ("email", "password", {"host": "smtp.example.com", "username": "mailer"}),
    "sendgrid": ("email", "api_key", {}),
    "mailgun": ("email", "api_key", {"domain": "mg.example.com"}),
    "ses": ("email", "secret_access_key", {"access_key_id": "AKIAEXAMPLE", "region": "eu-west-1"}),
    "postmark": ("email", "server_token", {}),
    "twilio": ("sms", "auth_token", {"account_sid": "AC123"}),
    "vonage": ("sms", "api_secret", {"api_key": "vonage-public"}),
    "messagebird": ("sms", "access_key", {}),
}


class Capture(logging.Handler):
    """Keeps every formatted log record (message, arguments and exception text)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}")
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def logs(app):
    """Every log line written during the test, from every logger that could carry a secret."""
    capture = Capture()
    loggers = [
        app.logger,
        logging.getLogger(),
        logging.getLogger("werkzeug"),
        logging.getLogger("sqlalchemy"),
    ]
    saved = [(lg, lg.level) for lg in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in saved:
        logger.removeHandler(capture)
        logger.setLevel(level)


class Recorder:
    """Wraps a client: keeps every response's status, headers and body."""

    def __init__(self, client, headers=None):
        self.client, self.headers, self.seen = client, headers or {}, []

    def __call__(self, method: str, url: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.client.open(url, method=method, headers=headers, **kwargs)
        body = response.get_data(as_text=True)
        self.seen.append((f"{method} {url} -> {response.status_code}", str(response.headers), body))
        response.close()
        return response, body


def test_no_secret_and_no_api_key_appears_in_any_response_log_or_row(app, setup, logs):
    """Every endpoint and page, as API caller, admin and support: secrets appear nowhere."""
    markers = {}
    api_key = factories.make_api_key(setup.tenant)
    read_key = factories.make_api_key(setup.tenant, scope="read")
    api = Recorder(app.test_client(), {"Authorization": f"Bearer {api_key}"})
    integration_ids = {}

    # --- the API: create, read, update, check, fail, delete -----------------------------------
    for provider, (channel_type, secret_field, others) in SECRET_FIELDS.items():
        marker = f"SECRET-{provider}-{uuid.uuid4().hex}"
        markers[provider] = marker
        body = {
            "name": f"{provider} integration",
            "channel_type": channel_type,
            "provider": provider,
            "credentials": {**others, secret_field: marker},
        }
        response, _ = api("POST", "/api/integrations", json=body)
        assert response.status_code == 201, response.get_json()
        integration_ids[provider] = response.get_json()["id"]
        # A failing create with the secret in it: the 422 must not echo it.
        bad = {**body, "name": "", "credentials": {**body["credentials"], "unknown": marker}}
        assert api("POST", "/api/integrations", json=bad)[0].status_code == 422
        # Rotate the secret through PATCH; the new one is a marker too.
        rotated = f"ROTATED-{provider}-{uuid.uuid4().hex}"
        markers[f"{provider}-rotated"] = rotated
        response, _ = api(
            "PATCH",
            f"/api/integrations/{integration_ids[provider]}",
            json={"credentials": {secret_field: rotated}},
        )
        assert response.status_code == 200
        # The masked value sent back keeps the stored secret.
        api(
            "PATCH",
            f"/api/integrations/{integration_ids[provider]}",
            json={"name": f"{provider} renamed", "credentials": {secret_field: "********"}},
        )
    console_integration = factories.make_integration(setup.tenant, "email")
    channel = factories.make_channel(setup, "email", name="Swept")
    api("POST", f"/api/integrations/{console_integration.id}/check")
    api("POST", f"/api/channels/{channel.id}/test", json={"to": "someone@example.com"})
    api(
        "POST",
        "/api/channels",
        json=setup.email_payload(name="Via API"),
        headers={"Idempotency-Key": "k1"},
    )
    api(
        "POST",
        "/api/channels",
        json=setup.email_payload(name="Via API"),
        headers={"Idempotency-Key": "k1"},
    )
    api("PATCH", f"/api/channels/{channel.id}", json={"metadata": {"a": "b"}})
    api("POST", "/api/email_domains", json={"domain": "sweep.example"})
    api(
        "POST",
        "/api/phone_numbers",
        json={"phone_number": "+14155550999", "integration_id": setup.sms_integration.id},
    )
    api(
        "POST",
        "/api/integrations",
        json={"name": "bad"},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    api("GET", "/api/channels", headers={"Authorization": f"Bearer {api_key}x"})  # a wrong key: 401
    api("DELETE", f"/api/integrations/{integration_ids['postmark']}")
    # Webhook endpoints: the secret is answered on creation and rotation, never again.
    made, _ = api("POST", "/api/webhook_endpoints", json={"url": HOOK, "events": ["*"]})
    endpoint_id = made.get_json()["id"]
    webhook_secrets = [made.get_json()["secret"]]
    rotated, _ = api("POST", f"/api/webhook_endpoints/{endpoint_id}/rotate_secret")
    webhook_secrets.append(rotated.get_json()["secret"])
    tested, _ = api("POST", f"/api/webhook_endpoints/{endpoint_id}/test")
    delivery_id = tested.get_json()["id"]
    api("PATCH", f"/api/webhook_endpoints/{endpoint_id}", json={"description": "swept"})
    api("POST", "/api/webhook_endpoints", json={"url": "ftp://x", "events": ["*"]})  # a 422
    api("POST", f"/api/webhook_deliveries/{delivery_id}/retry")

    ids = {
        "channel_id": channel.id,
        "integration_id": integration_ids["smtp"],
        "domain_id": setup.domain.id,
        "phone_number_id": setup.number.id,
        "endpoint_id": endpoint_id,
        "delivery_id": delivery_id,
    }
    for url in get_urls(app, ids, prefix="/api/"):
        api("GET", url)
    for integration_id in integration_ids.values():
        api("GET", f"/api/integrations/{integration_id}")
    api("GET", "/api/audit_events?limit=200")

    # --- the console: every page as the tenant's admin, then as support staff -------------------
    app.test_client_class = ConsoleClient
    admin_client = app.test_client()
    admin = make_console_user("sweep-admin@example.org", "admin", setup.tenant)
    assert sign_in(admin_client, admin.email).status_code == 303
    console = Recorder(admin_client)
    ids.update(user_id=admin.id)
    from core.models import ApiKey

    ids["key_id"] = db.session.scalar(select(ApiKey.id).where(ApiKey.tenant_id == setup.tenant.id))
    pages = get_urls(app, ids)
    pages = [p for p in pages if not p.startswith("/api/")]
    for integration_id in integration_ids.values():
        pages += [f"/integrations/{integration_id}/edit", f"/integrations/{integration_id}/delete"]
    for url in pages:
        console("GET", url)
        console("GET", url, headers={"HX-Request": "true"})
    smtp_id = integration_ids["smtp"]
    console(
        "POST",
        f"/integrations/{smtp_id}/edit",
        data={
            "csrf_token": csrf_token(admin_client, f"/integrations/{smtp_id}/edit"),
            "name": "smtp edited",
            "host": "",
            "port": "587",
            "password": markers["smtp"],
        },
    )
    # The one response allowed to show a key: creating one in the console shows it once.
    created, created_page = console(
        "POST",
        "/api-keys",
        data={
            "csrf_token": csrf_token(admin_client, "/api-keys"),
            "name": "Shown once",
            "scope": "write",
        },
    )
    new_key = next(
        (
            w
            for w in created_page.replace('"', " ").replace("<", " ").replace(">", " ").split()
            if w.startswith("chk_") and w.count("_") >= 2 and len(w) > 30
        ),
        None,
    )
    assert created.status_code == 200 and new_key, "the new key is shown once"
    console("GET", "/api-keys")
    # The console shows a webhook secret once too: on creation and on rotation.
    hooks_token = csrf_token(admin_client, "/webhooks")
    made_page = console(
        "POST", "/webhooks", data={"csrf_token": hooks_token, "url": HOOK, "events": ["*"]}
    )[1]
    rotated_page = console(
        "POST", f"/webhooks/{endpoint_id}/rotate", data={"csrf_token": hooks_token}
    )[1]
    for page in (made_page, rotated_page):
        shown = page.split('id="webhook-secret">', 1)[1].split("<", 1)[0]
        assert shown.startswith("whsec_"), "the new secret is shown once"
        webhook_secrets.append(shown)
    console("GET", "/webhooks")
    console("GET", f"/webhooks/{endpoint_id}")

    # Passwords: a failed sign-in, a refused and an accepted initial password of a teammate,
    # a refused and an accepted change of one's own — never shown back, logged or stored.
    passwords = {name: f"{name} {uuid.uuid4().hex}" for name in ("typo", "team", "mine")}
    stranger = Recorder(app.test_client())
    stranger(
        "POST",
        "/login",
        data={
            "csrf_token": csrf_token(stranger.client, "/login"),
            "email": admin.email,
            "password": passwords["typo"],
        },
    )
    for email in ("", "teammate@example.org"):  # refused (no email), then added
        console(
            "POST",
            "/team",
            data={
                "csrf_token": csrf_token(admin_client, "/team"),
                "email": email,
                "name": "Teammate",
                "password": passwords["team"],
            },
        )
    for confirm in ("not the same", passwords["mine"]):  # refused, then changed
        console(
            "POST",
            "/account/password",
            data={
                "csrf_token": csrf_token(admin_client, "/account"),
                "current_password": PASSWORD,
                "new_password": passwords["mine"],
                "confirm_password": confirm,
            },
        )
    console("GET", "/audit")

    support_client = app.test_client()
    support = make_console_user("sweep-support@example.org", "support")
    assert sign_in(support_client, support.email).status_code == 303
    factories.enroll_totp(support)  # needed to open a tenant
    open_tenant_in_session(support_client, setup.tenant.id)
    support_recorder = Recorder(support_client)
    for url in pages:
        support_recorder("GET", url)

    # --- nothing anywhere -----------------------------------------------------------------------
    secrets = list(markers.values()) + list(passwords.values()) + webhook_secrets
    keys = [api_key, read_key, new_key]
    exposures = []
    shown_once = (  # the responses that may show a secret: its creation or rotation
        "POST /api-keys ",
        "POST /api/webhook_endpoints ",
        f"POST /api/webhook_endpoints/{endpoint_id}/rotate_secret ",
        "POST /webhooks ",
        f"POST /webhooks/{endpoint_id}/rotate ",
    )
    for recorder in (api, console, support_recorder, stranger):
        for label, headers, body in recorder.seen:
            if label.startswith(shown_once) and label.count("->") == 1:
                for value in [new_key, *webhook_secrets]:
                    if value in body:  # each shows its own secret exactly once
                        assert body.count(value) == 1, label
                        body = body.replace(value, "")
            for value in secrets + keys:
                if value in headers or value in body:
                    exposures.append((label, value[:20]))
    for line in logs.lines:
        for value in secrets + keys:
            if value in line:
                exposures.append(("log", line[:200]))
    assert not exposures, exposures
    assert len(api.seen) + len(console.seen) + len(support_recorder.seen) > 80
    assert logs.lines  # the capture works (requests and audit write log lines)
    counts = (len(api.seen), len(console.seen), len(support_recorder.seen), len(logs.lines))
    print("sweep: {} API, {} admin, {} support responses, {} log lines".format(*counts))

    # At rest: no marker and no key in any column of any table.
    db.session.rollback()
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)).all():
            dumped = repr(tuple(row))
            for value in secrets + keys:
                assert value not in dumped, (table.name, value[:20])


def test_credentials_are_encrypted_at_rest(app, api):
    """The credentials column holds a Fernet token of the first key, not the secret."""
    marker = f"AT-REST-{uuid.uuid4().hex}"
    response = api.post(
        "/api/integrations",
        json={
            "name": "At rest",
            "channel_type": "email",
            "provider": "sendgrid",
            "credentials": {"api_key": marker},
        },
    )
    assert response.status_code == 201
    raw = db.session.execute(
        text("SELECT credentials_encrypted FROM integrations WHERE id = :id"),
        {"id": response.get_json()["id"]},
    ).scalar_one()
    assert marker not in raw
    first_key = app.config["CREDENTIALS_KEY"].split(",")[0]
    assert marker in Fernet(first_key.encode()).decrypt(raw.encode()).decode()


def test_credentials_key_rotation(app, api):
    """Two keys "new,old": old tokens still decrypt; new writes (and updates) use the new key."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app.config["CREDENTIALS_KEY"] = old
    before = api.post(
        "/api/integrations",
        json={
            "name": "Old",
            "channel_type": "sms",
            "provider": "twilio",
            "credentials": {"account_sid": "AC1", "auth_token": "old-secret"},
        },
    ).get_json()

    app.config["CREDENTIALS_KEY"] = f"{new},{old}"
    assert api.get(f"/api/integrations/{before['id']}").status_code == 200  # old token readable
    after = api.post(
        "/api/integrations",
        json={
            "name": "New",
            "channel_type": "sms",
            "provider": "twilio",
            "credentials": {"account_sid": "AC2", "auth_token": "new-secret"},
        },
    ).get_json()
    tokens = {
        row.id: row.credentials_encrypted
        for row in db.session.scalars(
            select(Integration).where(Integration.id.in_([before["id"], after["id"]]))
        )
    }
    assert "new-secret" in Fernet(new.encode()).decrypt(tokens[after["id"]].encode()).decode()
    with pytest.raises(InvalidToken):
        Fernet(old.encode()).decrypt(tokens[after["id"]].encode())
    assert "old-secret" in Fernet(old.encode()).decrypt(tokens[before["id"]].encode()).decode()
    # Changing the old integration re-encrypts it with the new key.
    assert (
        api.patch(
            f"/api/integrations/{before['id']}", json={"credentials": {"auth_token": "rotated"}}
        ).status_code
        == 200
    )
    db.session.expire_all()
    token = db.session.get(Integration, before["id"]).credentials_encrypted
    assert "rotated" in Fernet(new.encode()).decrypt(token.encode()).decode()
    # Once every token is re-encrypted, the old key can go.
    app.config["CREDENTIALS_KEY"] = new
    assert api.get("/api/integrations").status_code == 200


def test_no_second_factor_secret_appears_after_it_was_shown(app, setup, logs):
    """MFA material: the authenticator app's seed (once confirmed), recovery codes (after the one
    page that shows them) and passkey material (credential id, public key) appear in no
    response, log line or audit row, through enrollment, sign-in with each factor, failures,
    step-up, regeneration and a tour of every console page and the audit API; at rest the seed
    is encrypted and the codes are hashed."""
    app.test_client_class = ConsoleClient
    client = app.test_client()
    admin = make_console_user("mfa-sweep@example.org", "admin", setup.tenant)
    console = Recorder(client)
    shown_once: dict[str, set[str]] = {}  # response label -> secrets it may show

    assert sign_in(client, admin.email).status_code == 303
    console("POST", "/account/totp", data={"csrf_token": csrf_token(client, "/account")})
    _, setup_page = console("GET", "/account/totp")  # the seed, before confirmation: allowed
    seed = mfa.pending_totp_secret(admin.id)
    assert seed and mfa.format_secret(seed) in setup_page
    console.seen.clear()  # from here on, the seed is a secret that must never be shown
    confirmed, page = console(
        "POST",
        "/account/totp/confirm",
        data={"csrf_token": csrf_token(client, "/account/totp"), "code": pyotp.TOTP(seed).now()},
    )
    first_codes = [li.get_text() for li in soup_of(page).select("#recovery-codes li")]
    assert confirmed.status_code == 200 and len(first_codes) == 10
    shown_once[console.seen[-1][0]] = set(first_codes)

    credential_id, public_key = f"CRED{uuid.uuid4().hex}", f"PUBKEY{uuid.uuid4().hex}"
    db.session.add(
        Passkey(
            user_id=admin.id, name="Sweep key", credential_id=credential_id, public_key=public_key
        )
    )
    db.session.commit()

    # Sign-ins with each factor, and failures; the options of a passkey ceremony.
    for code in (first_codes[0], first_codes[0], "000000", first_codes[1]):
        console("POST", "/logout", data={"csrf_token": csrf_token(client, "/account")})
        sign_in(client, admin.email)
        console("POST", "/login/verify/passkey-options", headers=_csrf(client, "/login/verify"))
        console(
            "POST",
            "/login/verify",
            data={"csrf_token": csrf_token(client, "/login/verify"), "code": code},
        )
    console("POST", "/login/passkey/options", headers=_csrf(client, "/account"))
    # Step-up with a recovery code, then with the passkey's (bogus) answer, then regeneration.
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11), tick=False):
        console(
            "POST", "/account/recovery-codes", data={"csrf_token": csrf_token(client, "/account")}
        )
        console(
            "POST", "/account/confirm/passkey-options", headers=_csrf(client, "/account/confirm")
        )
        console(
            "POST",
            "/account/confirm",
            data={
                "csrf_token": csrf_token(client, "/account/confirm"),
                "passkey": f'{{"id": "{credential_id}"}}',
            },
        )
        regenerated, page = console(
            "POST",
            "/account/confirm",
            data={"csrf_token": csrf_token(client, "/account/confirm"), "code": first_codes[2]},
        )
    new_codes = [li.get_text() for li in soup_of(page).select("#recovery-codes li")]
    assert regenerated.status_code == 200 and len(new_codes) == 10
    shown_once[console.seen[-1][0]] = set(new_codes)
    console("POST", "/account/passkeys/options", headers=_csrf(client, "/account"))
    # Registration options name the owner's credentials (excludeCredentials), to them only.
    shown_once[console.seen[-1][0]] = {credential_id}

    ids = {"user_id": admin.id, "passkey_id": db.session.scalar(select(Passkey.id))}
    for url in [p for p in get_urls(app, ids) if not p.startswith("/api/")]:
        console("GET", url)
        console("GET", url, headers={"HX-Request": "true"})
    api = Recorder(
        app.test_client(), {"Authorization": f"Bearer {factories.make_api_key(setup.tenant)}"}
    )
    api("GET", "/api/audit_events?limit=200")

    secrets = [seed, mfa.format_secret(seed), credential_id, public_key, *first_codes, *new_codes]
    exposures = []
    for recorder in (console, api):
        for label, headers, body in recorder.seen:
            for value in secrets:
                if value in shown_once.get(label, set()) and recorder is console:
                    continue
                if value in headers or value in body:
                    exposures.append((label, value[:24]))
    for line in logs.lines:
        exposures += [("log", line[:200]) for value in secrets if value in line]
    assert not exposures, exposures
    db.session.rollback()
    audit_rows = repr(db.session.execute(select(AuditEvent.__table__)).all())
    assert not [value for value in secrets if value in audit_rows]
    assert "user.recovery_code_used" in audit_rows and "user.mfa_failed" in audit_rows
    # At rest: the seed only encrypted, the codes only hashed (passkeys are public material).
    for table in db.metadata.sorted_tables:
        dumped = repr(db.session.execute(select(table)).all())
        for value in [seed, *first_codes, *new_codes]:
            assert value not in dumped, (table.name, value[:20])


def soup_of(html: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")


def _csrf(client, path: str) -> dict:
    return {"X-CSRFToken": csrf_token(client, path)}
