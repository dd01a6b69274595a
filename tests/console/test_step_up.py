"""Step-up (DESIGN §7, issue 13 point 4): sensitive actions need an authentication within
REAUTH_MINUTES; otherwise the user confirms (password, app code, recovery code) and the kept
action completes without the form being typed again. The kept form is encrypted in the
session's row and gone afterwards; confirmations are audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from core.extensions import db
from core.models import ApiKey, AuditEvent, ConsoleSession, Integration, User
from core.services import integrations as integration_service
from core.services import mfa
from tests import factories
from tests.console.helpers import PASSWORD, csrf_token, field_errors, htmx_headers, soup


@pytest.fixture
def clock():
    """Time stands still from before sign-in (``clock.t0``) until moved."""
    t0 = datetime.now(UTC).replace(microsecond=0)
    with time_machine.travel(t0, tick=False) as traveller:
        traveller.t0 = t0
        yield traveller


def later(clock, minutes: float) -> None:
    clock.move_to(clock.t0 + timedelta(minutes=minutes))


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def pending_of(user_id: str) -> str | None:
    db.session.rollback()
    return db.session.scalar(
        select(ConsoleSession.pending_action).where(ConsoleSession.user_id == user_id)
    )


def create_key(console, name: str = "Billing backend", scope: str = "read"):
    token = csrf_token(console, "/api-keys")
    return console.post("/api-keys", data={"csrf_token": token, "name": name, "scope": scope})


def confirm(console, **fields):
    token = csrf_token(console, "/account/confirm")
    return console.post("/account/confirm", data={"csrf_token": token, **fields})


def test_within_reauth_minutes_the_action_runs_at_once(clock, console, tenant):
    """Nine minutes after sign-in, creating a key needs no confirmation."""
    later(clock, 9)
    created = create_key(console)
    assert created.status_code == 200 and "chk_" in created.get_data(as_text=True)


def test_after_reauth_minutes_the_action_waits_and_completes_after_the_password(
    clock, console, admin, tenant
):
    """Eleven minutes after sign-in: the key is not created yet, the browser goes to the
    confirmation (which names the action), the form is kept encrypted; the password then
    creates the key exactly as posted (name, scope), shown once; the kept form is gone and a
    second confirmation creates nothing more; audited user.step_up."""
    later(clock, 11)
    asked = create_key(console, "Billing backend", "read")
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/account/confirm")
    db.session.rollback()
    assert db.session.scalars(select(ApiKey)).all() == []
    kept = pending_of(admin.id)
    assert kept and "Billing backend" not in kept
    page = console.get("/account/confirm")
    assert "create an API key" in page.get_data(as_text=True)

    done = confirm(console, password=PASSWORD)
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    db.session.rollback()
    [key] = db.session.scalars(select(ApiKey)).all()
    assert (key.name, key.scope) == ("Billing backend", "read")
    assert key.prefix in done.get_data(as_text=True)
    assert pending_of(admin.id) is None
    [stepped] = events(tenant.id, "user.step_up")
    assert stepped.changes["method"]["after"] == "password"

    confirm(console, password=PASSWORD)
    db.session.rollback()
    assert len(db.session.scalars(select(ApiKey)).all()) == 1
    # Confirmed: the next sensitive action within REAUTH_MINUTES runs at once.
    later(clock, 15)
    assert create_key(console, "Second").status_code == 200


def test_a_wrong_password_keeps_the_action_waiting_and_is_audited(clock, console, admin, tenant):
    """A wrong password: 422 next to the field, nothing done, still waiting; audited."""
    later(clock, 11)
    create_key(console)
    refused = confirm(console, password="not-my-password")
    assert refused.status_code == 422 and field_errors(refused)["password"]
    db.session.rollback()
    assert db.session.scalars(select(ApiKey)).all() == []
    assert pending_of(admin.id)
    assert events(tenant.id, "user.step_up_failed")
    assert confirm(console, password=PASSWORD).status_code == 200


def test_an_expired_waiting_action_does_not_run(clock, console, admin):
    """A kept action older than its time to live is not run by a late confirmation."""
    later(clock, 11)
    create_key(console)
    later(clock, 11 + 16)
    done = confirm(console, password=PASSWORD)
    assert done.status_code == 303
    db.session.rollback()
    assert db.session.scalars(select(ApiKey)).all() == []


def test_an_htmx_revoke_is_sent_to_the_confirmation_and_then_completes(clock, console, tenant):
    """A row action from htmx gets HX-Redirect to the confirmation; after it, the key is
    revoked and the browser is sent back to the page it came from."""
    key_id = None
    factories.make_api_key(tenant, name="Old key")
    db.session.rollback()
    key_id = db.session.scalar(select(ApiKey.id))
    later(clock, 11)
    headers = htmx_headers(console, "/api-keys")
    asked = console.post(f"/api-keys/{key_id}/revoke", headers=headers, data={"next": "/api-keys"})
    assert asked.headers["HX-Redirect"].endswith("/account/confirm")
    db.session.rollback()
    assert db.session.get(ApiKey, key_id).revoked_at is None
    done = confirm(console, password=PASSWORD)
    assert done.status_code == 303 and done.headers["Location"] == "/api-keys"
    db.session.rollback()
    assert db.session.get(ApiKey, key_id).revoked_at is not None


def test_new_credentials_wait_encrypted_and_are_dropped_after(clock, console, admin, setup):
    """Editing an integration's credentials: the new secret waits only encrypted in the
    session row, is saved after the confirmation, and is not kept anywhere after."""
    integration = factories.make_integration(
        setup.tenant, provider="sendgrid", credentials={"api_key": "SG.old-secret-value"}
    )
    later(clock, 11)
    token = csrf_token(console, f"/integrations/{integration.id}/edit")
    asked = console.post(
        f"/integrations/{integration.id}/edit",
        data={
            "csrf_token": token,
            "name": "Renamed",
            "credentials-api_key": "SG.brand-new-secret-9f8e7d",
        },
    )
    assert asked.status_code == 303
    kept = pending_of(admin.id)
    assert kept and "SG.brand-new-secret-9f8e7d" not in kept
    page = console.get("/account/confirm").get_data(as_text=True)
    assert "SG.brand-new-secret-9f8e7d" not in page
    done = confirm(console, password=PASSWORD)
    assert done.status_code == 303
    db.session.rollback()
    saved = db.session.get(Integration, integration.id)
    assert saved.name == "Renamed"
    assert integration_service.credentials_of(saved)["api_key"] == "SG.brand-new-secret-9f8e7d"
    assert pending_of(admin.id) is None


def test_adding_an_admin_completes_with_the_initial_password(clock, console, tenant):
    """Adding an admin after the window: after the confirmation the admin exists with the
    initial password typed before it (nothing typed again)."""
    later(clock, 11)
    token = csrf_token(console, "/team")
    console.post(
        "/team",
        data={
            "csrf_token": token,
            "email": "newcomer@example.org",
            "name": "Newcomer",
            "password": "initial-pass-123",
        },
    )
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.email == "newcomer@example.org")) is None
    assert confirm(console, password=PASSWORD).status_code == 303
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.email == "newcomer@example.org"))


class TestConfirmWithAFactor:
    """The confirmation also takes the app's code or a recovery code."""

    @pytest.fixture
    def secret(self, admin):
        return factories.enroll_totp(admin)

    def test_an_app_code_confirms(self, clock, console, admin, secret, tenant):
        later(clock, 11)
        create_key(console)
        done = confirm(console, code=pyotp.TOTP(secret).now())
        assert done.status_code == 200
        [stepped] = events(tenant.id, "user.step_up")
        assert stepped.changes["method"]["after"] == "totp"

    def test_a_recovery_code_confirms_once(self, clock, console, admin, secret, tenant):
        codes = mfa.regenerate_recovery_codes(admin)
        db.session.commit()
        later(clock, 11)
        create_key(console)
        assert confirm(console, code=codes[0]).status_code == 200
        later(clock, 22)
        create_key(console, "Again")
        assert confirm(console, code=codes[0]).status_code == 422
        assert events(tenant.id, "user.recovery_code_used")

    def test_the_page_offers_the_code_field(self, clock, console, secret):
        later(clock, 11)
        create_key(console)
        page = soup(console.get("/account/confirm"))
        assert page.find("input", attrs={"name": "code"}) is not None


def test_creating_an_integration_waits_but_showing_its_fields_does_not(clock, console, tenant):
    """ "Show fields" (no JavaScript) re-renders the new-integration form without asking; saving
    the integration with its secret waits for the confirmation, then is created as typed."""
    later(clock, 11)
    token = csrf_token(console, "/integrations/new")
    form = {
        "csrf_token": token,
        "name": "Mail",
        "channel_type": "email",
        "provider": "postmark",
        "credentials-server_token": "pm-secret-token-123",
    }
    shown = console.post("/integrations/new", data={**form, "change_provider": "1"})
    assert shown.status_code == 200 and "Server token" in shown.get_data(as_text=True)
    asked = console.post("/integrations/new", data=form)
    assert asked.headers["Location"].endswith("/account/confirm")
    db.session.rollback()
    assert db.session.scalars(select(Integration)).all() == []
    assert confirm(console, password=PASSWORD).status_code == 303
    db.session.rollback()
    [created] = db.session.scalars(select(Integration)).all()
    assert integration_service.credentials_of(created)["server_token"] == "pm-secret-token-123"
