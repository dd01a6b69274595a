"""Who must have a second factor (DESIGN §7): the tenant's policy (set by an admin, audited,
behind step-up; admins without a factor can do nothing but enroll), support staff (refused at
the tenant switcher until enrolled), and ``flask reset-mfa`` for a locked-out user."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, ConsoleSession, Passkey, RecoveryCode, TotpFactor
from core.services import console_sessions, mfa
from tests import factories
from tests.console.conftest import another_browser, make_console_user
from tests.console.helpers import (
    PASSWORD,
    csrf_token,
    field_errors,
    htmx_headers,
    open_tenant_in_session,
    sign_in,
)


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def set_policy(console, on: bool):
    token = csrf_token(console, "/team")
    data = {"csrf_token": token}
    if on:
        data["require_mfa"] = "y"
    return console.post("/team/mfa-policy", data=data)


def test_turning_the_policy_on_needs_a_factor_of_ones_own(console, admin, tenant):
    """An admin without a factor cannot require one of everyone (422, inline message)."""
    refused = set_policy(console, True)
    assert refused.status_code == 422
    assert "your own account first" in " ".join(field_errors(refused)["require_mfa"])
    db.session.rollback()
    assert not db.session.get(type(tenant), tenant.id).require_mfa


def test_the_policy_is_audited_and_behind_step_up(app, console, admin, tenant):
    """With a factor, the policy turns on (tenant.mfa_policy_changed in the tenant's log);
    eleven minutes after sign-in, turning it off waits for a confirmation first."""
    factories.enroll_totp(admin)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert set_policy(console, True).status_code == 303
        [changed] = events(tenant.id, "tenant.mfa_policy_changed")
        assert changed.changes["require_mfa"] == {"before": False, "after": True}
        assert changed.actor_id == admin.id
        clock.move_to(start + timedelta(minutes=11))
        asked = set_policy(console, False)
        assert asked.headers["Location"].endswith("/account/confirm")
        db.session.rollback()
        assert db.session.get(type(tenant), tenant.id).require_mfa
        token = csrf_token(console, "/account/confirm")
        console.post("/account/confirm", data={"csrf_token": token, "password": PASSWORD})
    db.session.rollback()
    assert not db.session.get(type(tenant), tenant.id).require_mfa
    assert len(events(tenant.id, "tenant.mfa_policy_changed")) == 2


@pytest.fixture
def policy_on(tenant, admin):
    """The tenant requires MFA (its first admin has an app)."""
    factories.enroll_totp(admin)
    tenant.require_mfa = True
    db.session.commit()
    return tenant


def test_an_admin_without_a_factor_can_only_enroll(app, client, policy_on):
    """At sign-in, an admin without a factor goes to enrollment: every other page (and htmx
    request) sends them there; the account page, setting up an app and signing out work; once
    the app is confirmed, everything opens."""
    colleague = make_console_user("colleague@example.org", "admin", policy_on)
    assert sign_in(client, colleague.email).status_code == 303
    for path in ("/channels", "/api-keys", "/team", "/audit"):
        sent = client.get(path)
        assert sent.status_code == 303 and "/account" in sent.headers["Location"], path
    page = client.get("/account")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count("requires two-factor authentication for every admin") == 1
    assert "Required for your account" in text
    blocked = client.post("/api-keys", headers=htmx_headers(client, "/account"), data={})
    assert blocked.status_code == 403 and "/account" in blocked.headers["HX-Redirect"]
    token = csrf_token(client, "/account")
    assert client.post("/account/totp", data={"csrf_token": token}).status_code == 303
    secret = mfa.pending_totp_secret(colleague.id)
    token = csrf_token(client, "/account/totp")
    confirmed = client.post(
        "/account/totp/confirm", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert confirmed.status_code == 200  # the recovery codes, once
    assert client.get("/channels").status_code == 200


def test_a_session_started_before_the_policy_is_held_too(app, console, admin, tenant):
    """An admin already signed in when the policy is turned on is sent to enrollment at their
    next request (no session escapes the policy)."""
    other_admin = make_console_user("second@example.org", "admin", tenant)
    other = another_browser(app, other_admin.email)
    assert other.get("/channels").status_code == 200
    factories.enroll_totp(admin)
    assert set_policy(console, True).status_code == 303
    assert "/account" in other.get("/channels").headers["Location"]


def test_without_the_policy_nobody_is_held(client, tenant):
    """Policy off: an admin without a factor uses the console as before."""
    user = make_console_user("free@example.org", "admin", tenant)
    sign_in(client, user.email)
    assert client.get("/channels").status_code == 200


class TestSupportStaff:
    """Support staff must enroll before they open any tenant."""

    def test_the_switcher_refuses_and_sends_them_to_enrollment(self, client, support_user, tenant):
        """Without a factor: the switcher page and opening a tenant both send them to the
        account page (no tenant opened, nothing recorded in the tenant's log)."""
        sign_in(client, support_user.email)
        page = client.get("/support/tenants")
        assert page.status_code == 303 and "/account" in page.headers["Location"]
        token = csrf_token(client, "/account")
        opened = client.post(f"/support/tenants/{tenant.id}/open", data={"csrf_token": token})
        assert opened.status_code == 303 and "/account" in opened.headers["Location"]
        assert events(tenant.id, "support.tenant_opened") == []
        followed = client.get("/account")
        assert "need two-factor authentication to open a tenant" in followed.get_data(as_text=True)

    def test_a_tenant_opened_before_is_closed_without_a_factor(self, client, support_user, tenant):
        """A tenant chosen earlier (factor since removed or reset) shows nothing either."""
        sign_in(client, support_user.email)
        open_tenant_in_session(client, tenant.id)  # opened just now, as the reason form does
        shown = client.get("/channels", follow_redirects=True)
        assert tenant.name not in shown.get_data(as_text=True)
        assert shown.request.path == "/account"

    def test_with_a_factor_the_switcher_opens_tenants(self, support_console, tenant):
        """With a factor: the switcher answers and a tenant opens (with a reason)."""
        assert support_console.get("/support/tenants").status_code == 200
        token = csrf_token(support_console, "/support/tenants")
        opened = support_console.post(
            f"/support/tenants/{tenant.id}/open",
            data={"csrf_token": token, "reason": "Ticket 4711"},
        )
        assert opened.status_code == 303 and opened.headers["Location"].endswith("/channels")
        assert support_console.get("/channels").status_code == 200


class TestResetMfa:
    """``flask --app app reset-mfa EMAIL``: the operator's way out for a locked-out user."""

    @pytest.fixture
    def cli(self, app):
        runner = app.test_cli_runner()
        return lambda *args: runner.invoke(args=list(args))

    def test_it_removes_every_factor_and_session_and_is_audited(self, app, cli, admin, tenant):
        """App, passkeys, recovery codes and sessions go; audited user.mfa_reset in the tenant's
        log by the operator; the user then signs in with the password alone."""
        factories.enroll_totp(admin)
        mfa.regenerate_recovery_codes(admin)
        db.session.add(
            Passkey(user_id=admin.id, name="Phone", credential_id="aWQ", public_key="cA")
        )
        db.session.commit()
        console_sessions.start_session(admin, None, "")
        db.session.commit()
        result = cli("reset-mfa", "ADMIN@example.org")
        assert result.exit_code == 0, result.output
        assert "1 passkey(s) and 10 unused recovery code(s) removed, 1 session(s)" in result.output
        db.session.rollback()
        assert db.session.get(TotpFactor, admin.id) is None
        assert db.session.scalars(select(Passkey)).all() == []
        assert db.session.scalars(select(RecoveryCode)).all() == []
        assert db.session.scalars(select(ConsoleSession)).all() == []
        [event] = events(tenant.id, "user.mfa_reset")
        assert (event.actor_type, event.actor_name) == ("system", "cli reset-mfa")
        assert event.changes["passkeys"] == {"before": 1, "after": 0}
        app.test_client_class = type(app.test_client())
        client = app.test_client()
        assert sign_in(client, admin.email).headers["Location"].endswith("/channels")

    def test_an_unknown_email_fails(self, cli, app):
        result = cli("reset-mfa", "nobody@example.org")
        assert result.exit_code == 1 and "No user with the email" in result.output

    def test_support_staff_resets_go_to_the_platform_log(self, cli, support_user, caplog):
        """Support staff belong to no tenant: the reset is logged on channels.auth."""
        factories.enroll_totp(support_user)
        with caplog.at_level(logging.INFO, logger="channels.auth"):
            assert cli("reset-mfa", support_user.email).exit_code == 0
        assert any("user.mfa_reset" in r.getMessage() for r in caplog.records)
        assert not mfa.has_factor(support_user.id)
