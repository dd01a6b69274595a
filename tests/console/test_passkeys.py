"""Passkeys in the console, with a software authenticator (tests/webauthn_authenticator.py):
registration (verified against the issued challenge, origin and RP id), passkey sign-in alone
(user verification required), passkey as the second factor, challenges used once, another
account's passkey refused, removal, and the audit events."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, ConsoleSession, Passkey
from tests.console.conftest import another_browser, make_console_user
from tests.console.helpers import csrf_token, sign_in, soup
from tests.webauthn_authenticator import SoftAuthenticator


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def options(client, url: str, page: str) -> dict:
    """The ceremony's options, fetched as webauthn.js does (POST with the CSRF header)."""
    response = client.post(url, headers={"X-CSRFToken": csrf_token(client, page)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["publicKey"]


def register(client, authenticator: SoftAuthenticator, name: str = "Laptop", **answer):
    created = authenticator.create(
        options(client, "/account/passkeys/options", "/account"), **answer
    )
    token = csrf_token(client, "/account")
    return client.post(
        "/account/passkeys", data={"csrf_token": token, "name": name, "credential": created}
    )


def passkey_sign_in(client, authenticator: SoftAuthenticator, **answer):
    assertion = authenticator.get(options(client, "/login/passkey/options", "/login"), **answer)
    token = csrf_token(client, "/login")
    return client.post("/login/passkey", data={"csrf_token": token, "passkey": assertion})


@pytest.fixture
def authenticator():
    return SoftAuthenticator()


@pytest.fixture
def registered(console, admin, authenticator):
    """The admin's passkey, registered through the account page; the console signs out."""
    assert register(console, authenticator).status_code == 200
    console.post("/logout", data={"csrf_token": csrf_token(console, "/account")})
    return authenticator


def test_registering_a_passkey(app, console, admin, tenant, authenticator):
    """The browser's answer is verified and stored under the given name; as the first factor
    it comes with recovery codes; other sessions end; user.factor_enrolled with the name."""
    phone = another_browser(app, admin.email)
    shown = register(console, authenticator, "Work laptop")
    assert shown.status_code == 200 and len(soup(shown).select("#recovery-codes li")) == 10
    db.session.rollback()
    [passkey] = db.session.scalars(select(Passkey)).all()
    assert (passkey.user_id, passkey.name, passkey.transports) == (
        admin.id,
        "Work laptop",
        ["internal"],
    )
    assert phone.get("/channels").status_code == 303
    [event] = events(tenant.id, "user.factor_enrolled")
    assert event.changes["factor"]["after"] == "passkey"
    assert event.changes["name"]["after"] == "Work laptop"
    page = console.get("/account").get_data(as_text=True)
    assert "Work laptop" in page and passkey.credential_id not in page


@pytest.mark.parametrize(
    "answer, why",
    [({"origin": "https://evil.example"}, "another origin")],
)
def test_a_registration_from_elsewhere_is_refused(console, authenticator, answer, why):
    """An answer made for another origin is refused (422), nothing stored."""
    refused = register(console, authenticator, **answer)
    assert refused.status_code == 422, why
    assert "could not be verified" in refused.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalars(select(Passkey)).all() == []


def test_a_registration_needs_the_issued_challenge_once(console, authenticator):
    """The same answer posted twice: the challenge was used by the first, the second is refused;
    an answer to options never issued is refused."""
    created = authenticator.create(options(console, "/account/passkeys/options", "/account"))
    token = csrf_token(console, "/account")
    data = {"csrf_token": token, "name": "Laptop", "credential": created}
    assert console.post("/account/passkeys", data=data).status_code == 200
    assert console.post("/account/passkeys", data={**data, "name": "Again"}).status_code == 422
    db.session.rollback()
    assert len(db.session.scalars(select(Passkey)).all()) == 1


def test_sign_in_with_a_passkey_alone(client, admin, tenant, registered):
    """No email, password or code: the passkey signs in (user.signed_in method passkey), and
    its counter and last use are recorded."""
    done = passkey_sign_in(client, registered)
    assert done.status_code == 303 and done.headers["Location"].endswith("/channels")
    assert client.get("/channels").status_code == 200
    db.session.rollback()
    passkey = db.session.scalars(select(Passkey)).one()
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    methods = [e.changes["method"]["after"] for e in events(tenant.id, "user.signed_in")]
    assert methods[-1] == "passkey"


def test_passkey_sign_in_requires_user_verification(client, registered, tenant):
    """Without user verification (no PIN or biometrics) the passkey alone is not enough."""
    refused = passkey_sign_in(client, registered, verified=False)
    assert refused.status_code == 422
    assert client.get("/channels").status_code == 303
    assert events(tenant.id, "user.mfa_failed")


def test_an_assertion_works_once(client, app, registered):
    """Replaying a captured assertion (its challenge was used) signs nobody in."""
    assertion = registered.get(options(client, "/login/passkey/options", "/login"))
    token = csrf_token(client, "/login")
    assert (
        client.post("/login/passkey", data={"csrf_token": token, "passkey": assertion}).status_code
        == 303
    )
    app.test_client_class = type(client)
    thief = app.test_client()
    thief_token = csrf_token(thief, "/login")
    options(thief, "/login/passkey/options", "/login")  # a challenge of its own
    replay = thief.post("/login/passkey", data={"csrf_token": thief_token, "passkey": assertion})
    assert replay.status_code == 422 and thief.get("/channels").status_code == 303


def test_a_passkey_as_the_second_factor(client, admin, tenant, registered):
    """After the password, the passkey completes the sign-in (method password+passkey)."""
    sign_in(client, admin.email)
    assertion = registered.get(options(client, "/login/verify/passkey-options", "/login/verify"))
    token = csrf_token(client, "/login/verify")
    done = client.post("/login/verify", data={"csrf_token": token, "passkey": assertion})
    assert done.status_code == 303
    methods = [e.changes["method"]["after"] for e in events(tenant.id, "user.signed_in")]
    assert methods[-1] == "password+passkey"


def test_another_accounts_passkey_is_no_second_factor(client, app, tenant, registered):
    """Someone who knows a colleague's password cannot finish with their own passkey."""
    colleague = make_console_user("colleague@example.org", "admin", tenant)
    own = SoftAuthenticator()
    app.test_client_class = type(client)
    theirs = app.test_client()
    sign_in(theirs, colleague.email)
    assert register(theirs, own).status_code == 200  # the colleague's own passkey
    sign_in(client, colleague.email)
    wrong = registered.get(options(client, "/login/verify/passkey-options", "/login/verify"))
    token = csrf_token(client, "/login/verify")
    refused = client.post("/login/verify", data={"csrf_token": token, "passkey": wrong})
    assert refused.status_code == 422 and client.get("/channels").status_code == 303
    [failed] = events(tenant.id, "user.mfa_failed")
    assert failed.resource_id == colleague.id


def test_assertion_options_name_no_credential(client, admin, registered):
    """The options carry no allowCredentials: a password alone reveals nothing of the account's
    authenticators."""
    sign_in(client, admin.email)
    second = options(client, "/login/verify/passkey-options", "/login/verify")
    alone = options(client, "/login/passkey/options", "/login")
    for found in (second, alone):
        assert not found.get("allowCredentials")
    assert json.dumps(second).count(registered.credential_id.hex()) == 0


def test_removing_a_passkey(client, admin, tenant, registered):
    """A recent sign-in removes the passkey (audited with its name); the account then has no
    factor (the recovery codes go too)."""
    passkey_sign_in(client, registered)
    db.session.rollback()
    passkey_id = db.session.scalar(select(Passkey.id))
    token = csrf_token(client, "/account")
    assert (
        client.post(
            f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": token}
        ).status_code
        == 303
    )
    db.session.rollback()
    assert db.session.scalars(select(Passkey)).all() == []
    [removed] = events(tenant.id, "user.factor_removed")
    assert removed.changes["name"]["before"] == "Laptop"
    # The session that removed it stays.
    assert db.session.scalars(select(ConsoleSession)).all()
