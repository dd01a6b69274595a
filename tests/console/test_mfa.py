"""Second factors (DESIGN §7, issue 13 point 3): setting up an authenticator app (QR code as
server-side SVG, the seed as text, confirmed by a code), the sign-in's second step, a code
working once (replay refused), wrong codes limited per account, recovery codes (shown once,
single use, audited), removing factors, and the audit events of each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, ConsoleSession, RecoveryCode, TotpFactor
from core.services import mfa
from tests import factories
from tests.conftest import base_config
from tests.console.conftest import another_browser
from tests.console.helpers import csrf_token, field_errors, sign_in, soup


@pytest.fixture
def clock():
    """Time stands still at the start of a 30-second step (``clock.t0``), until the test
    moves it with ``clock.move_to(moment)``. Request it before the clients (it must be
    running before anyone signs in)."""
    now = datetime.now(UTC)
    t0 = now.replace(microsecond=0) - timedelta(seconds=now.second % 30) + timedelta(seconds=30)
    with time_machine.travel(t0, tick=False) as traveller:
        traveller.t0 = t0
        yield traveller


def code_at(secret: str, moment: datetime) -> str:
    """The authenticator app's code at ``moment``."""
    return pyotp.TOTP(secret).at(moment)


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
            .order_by(AuditEvent.created_at)
        )
    )


def verify(client, code: str):
    """Submit the sign-in's second step with ``code``."""
    token = csrf_token(client, "/login/verify")
    return client.post("/login/verify", data={"csrf_token": token, "code": code})


def set_up_app(console) -> tuple[str, object]:
    """Start setting up an app through the account page; the seed as the page shows it, and
    the setup page."""
    token = csrf_token(console, "/account")
    started = console.post("/account/totp", data={"csrf_token": token})
    assert started.status_code == 303 and started.headers["Location"].endswith("/account/totp")
    page = console.get("/account/totp")
    assert page.status_code == 200
    secret = soup(page).select_one("#totp-secret").get_text().replace(" ", "")
    return secret, page


def confirm_app(console, code: str):
    token = csrf_token(console, "/account/totp")
    return console.post("/account/totp/confirm", data={"csrf_token": token, "code": code})


def test_setting_up_an_app_shows_a_server_side_qr_code_and_the_seed(console, admin):
    """The setup page draws the otpauth URI as an inline SVG (no img, no script) and shows the
    seed as text; the seed is stored encrypted, and the app is inactive until confirmed."""
    secret, page = set_up_app(console)
    html = soup(page)
    svg = html.select_one(".qr-code svg")
    assert svg is not None and svg.find("path") is not None
    assert html.select(".qr-code img") == [] and html.find("script", src=None) is None
    assert len(secret) == 32 and pyotp.TOTP(secret).now()
    db.session.rollback()
    row = db.session.get(TotpFactor, admin.id)
    assert row.confirmed_at is None and secret not in row.secret_encrypted
    assert not mfa.has_factor(admin.id)


def test_confirming_the_app_turns_it_on_and_shows_ten_recovery_codes_once(
    clock, console, admin, tenant
):
    """A current code confirms the app: ten recovery codes are shown on that page (never
    cached), stored only hashed; the account page does not show them again; audited."""
    secret, _ = set_up_app(console)
    good = code_at(secret, clock.t0)
    wrong = confirm_app(console, "000000" if good != "000000" else "111111")
    assert wrong.status_code == 422 and "code" in field_errors(wrong)
    shown = confirm_app(console, good)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    codes = [item.get_text() for item in soup(shown).select("#recovery-codes li")]
    assert len(codes) == 10 and len(set(codes)) == 10
    db.session.rollback()
    stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert mfa.has_factor(admin.id)
    account = console.get("/account").get_data(as_text=True)
    assert not any(code in account for code in codes) and secret not in account
    assert "10 of 10 unused" in account
    assert console.get("/account/totp").status_code == 303  # the seed is never shown again
    [enrolled] = events(tenant.id, "user.factor_enrolled")
    assert enrolled.changes["factor"] == {"before": None, "after": "totp"}


def test_enrolling_ends_every_other_session(clock, app, console, admin):
    """Enrolling a factor signs the user's other browsers out (this one stays)."""
    phone = another_browser(app, admin.email)
    secret, _ = set_up_app(console)
    assert confirm_app(console, code_at(secret, clock.t0)).status_code == 200
    assert phone.get("/channels").status_code == 303
    assert console.get("/channels").status_code == 200


@pytest.fixture
def enrolled(admin):
    """The admin with an active authenticator app; its seed."""
    return factories.enroll_totp(admin)


def test_sign_in_asks_for_the_second_factor_before_any_session(client, admin, enrolled, tenant):
    """With a factor, the right password leads to the second step, and nothing else opens:
    no session row, no console page, no user.signed_in yet."""
    response = sign_in(client, admin.email)
    assert response.status_code == 303 and response.headers["Location"].endswith("/login/verify")
    assert client.get("/login/verify").status_code == 200
    assert client.get("/channels").status_code == 303
    db.session.rollback()
    assert db.session.scalars(select(ConsoleSession)).all() == []
    assert events(tenant.id, "user.signed_in") == []


def test_a_current_code_completes_the_sign_in(client, admin, enrolled, tenant):
    """The app's current code: signed in (user.signed_in with password+totp, mfa verified)."""
    sign_in(client, admin.email, next_url="/team")
    done = verify(client, pyotp.TOTP(enrolled).now())
    assert done.status_code == 303 and done.headers["Location"] == "/team"
    assert client.get("/channels").status_code == 200
    [signed_in] = events(tenant.id, "user.signed_in")
    assert signed_in.changes["method"]["after"] == "password+totp"
    [verified] = events(tenant.id, "user.mfa_verified")
    assert verified.changes["factor"]["after"] == "totp"


def test_a_code_works_once_a_replay_in_its_window_is_refused(
    clock, app, client, admin, enrolled, tenant
):
    """The same code, used again within its 30-second window (another browser that saw it), is
    refused; so is the previous step's code once a newer one was used; the next one passes."""
    t0 = clock.t0
    sign_in(client, admin.email)
    assert verify(client, code_at(enrolled, t0)).status_code == 303
    app.test_client_class = type(client)
    thief = app.test_client()
    sign_in(thief, admin.email)
    replay = verify(thief, code_at(enrolled, t0))
    assert replay.status_code == 422
    assert "used already" in " ".join(field_errors(replay)["code"])
    older = verify(thief, code_at(enrolled, t0 - timedelta(seconds=30)))
    assert older.status_code == 422
    clock.move_to(t0 + timedelta(seconds=30))
    assert verify(thief, code_at(enrolled, t0 + timedelta(seconds=30))).status_code == 303
    failed = events(tenant.id, "user.mfa_failed")
    assert len(failed) == 2 and all(e.changes["factor"]["after"] == "totp" for e in failed)


def test_a_wrong_code_is_refused_and_audited_without_a_session(client, admin, enrolled, tenant):
    """A wrong code: 422 with the message next to the field, audited, no session."""
    sign_in(client, admin.email)
    good = pyotp.TOTP(enrolled).now()
    refused = verify(client, "123456" if good != "123456" else "654321")
    assert refused.status_code == 422 and field_errors(refused)["code"]
    assert client.get("/channels").status_code == 303
    [failed] = events(tenant.id, "user.mfa_failed")
    assert failed.changes["purpose"]["after"] == "sign-in"
    assert "123456" not in str(failed.changes) and good not in str(failed.changes)


def test_the_second_step_expires(clock, client, admin, enrolled):
    """The pending sign-in lasts a few minutes: later, the code alone opens nothing."""
    sign_in(client, admin.email)
    clock.move_to(clock.t0 + timedelta(minutes=6))
    late = verify(client, pyotp.TOTP(enrolled).now())
    assert late.status_code == 303 and late.headers["Location"].startswith("/login")
    assert client.get("/channels").status_code == 303


class TestRecoveryCodes:
    """Recovery codes: in place of the app's code, once each, audited."""

    @pytest.fixture
    def codes(self, admin, enrolled):
        codes = mfa.regenerate_recovery_codes(admin)
        db.session.commit()
        return codes

    def test_a_recovery_code_signs_in_once(self, app, client, admin, codes, tenant):
        """A code signs in (typed in capitals with spaces, as people do); the same code a
        second time is refused; user.recovery_code_used records how many are left."""
        sign_in(client, admin.email)
        typed = codes[3].upper().replace("-", " ")
        assert verify(client, typed).status_code == 303
        [used] = events(tenant.id, "user.recovery_code_used")
        assert used.changes["recovery_codes"] == {"before": 10, "after": 9}
        assert codes[3] not in str(used.changes)
        app.test_client_class = type(client)
        again = app.test_client()
        sign_in(again, admin.email)
        assert verify(again, codes[3]).status_code == 422
        assert verify(again, codes[4]).status_code == 303

    def test_regenerating_replaces_the_codes(self, admin, codes, client):
        """New codes: the old ones stop working."""
        new = mfa.regenerate_recovery_codes(admin)
        db.session.commit()
        sign_in(client, admin.email)
        assert verify(client, codes[0]).status_code == 422
        assert verify(client, new[0]).status_code == 303

    def test_the_account_page_regenerates_them(self, console_with_factor, admin, tenant):
        """ "Generate new codes" shows ten new ones once (no-store), audited."""
        token = csrf_token(console_with_factor, "/account")
        shown = console_with_factor.post("/account/recovery-codes", data={"csrf_token": token})
        assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
        assert len(soup(shown).select("#recovery-codes li")) == 10
        assert events(tenant.id, "user.recovery_codes_regenerated")


@pytest.fixture
def console_with_factor(client, admin, enrolled):
    """The admin signed in with password and app code."""
    sign_in(client, admin.email)
    assert verify(client, pyotp.TOTP(enrolled).now()).status_code == 303
    return client


def test_removing_the_app_turns_mfa_off_and_is_audited(app, console_with_factor, admin, tenant):
    """Removing the only factor (MFA not required): the app and recovery codes go, other
    sessions end, user.factor_removed."""
    mfa.regenerate_recovery_codes(admin)
    db.session.commit()
    token = csrf_token(console_with_factor, "/account")
    removed = console_with_factor.post("/account/totp/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    db.session.rollback()
    assert not mfa.has_factor(admin.id)
    assert db.session.scalars(select(RecoveryCode)).all() == []
    [event] = events(tenant.id, "user.factor_removed")
    assert event.changes["factor"] == {"before": "totp", "after": None}


def test_the_last_factor_stays_while_the_tenant_requires_mfa(console_with_factor, admin, tenant):
    """With the tenant's policy on, the only factor cannot be removed (409-style refusal)."""
    tenant.require_mfa = True
    db.session.commit()
    token = csrf_token(console_with_factor, "/account")
    refused = console_with_factor.post(
        "/account/totp/remove", data={"csrf_token": token}, follow_redirects=True
    )
    assert "must keep a second factor" in refused.get_data(as_text=True)
    db.session.rollback()
    assert mfa.has_factor(admin.id)


class TestWrongCodesAreLimited:
    """RATELIMIT_MFA: wrong codes per account, wherever they are tried."""

    @pytest.fixture
    def app_config(self, database_url, request):
        return base_config(database_url) | {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_MFA": "3 per minute",
            "RATELIMIT_KEY_NAMESPACE": f"{request.node.nodeid}:",
        }

    def test_past_the_limit_even_the_right_code_is_refused(
        self, clock, app, client, admin, enrolled, tenant
    ):
        """Three wrong codes, then the right one is refused too (the account is locked for the
        window, whichever browser asks); audited user.mfa_rate_limited; after the window the
        right code passes."""
        good = pyotp.TOTP(enrolled).now()
        wrong = "000000" if good != "000000" else "111111"
        sign_in(client, admin.email)
        for _ in range(3):
            assert verify(client, wrong).status_code == 422
        app.test_client_class = type(client)
        other = app.test_client()
        sign_in(other, admin.email)
        locked = verify(other, good)
        assert locked.status_code == 422
        assert "Too many wrong codes" in " ".join(field_errors(locked)["code"])
        assert other.get("/channels").status_code == 303
        assert events(tenant.id, "user.mfa_rate_limited")
        clock.move_to(clock.t0 + timedelta(minutes=2))
        sign_in(other, admin.email)
        assert verify(other, pyotp.TOTP(enrolled).now()).status_code == 303

    def test_right_codes_are_not_counted(self, clock, client, app, admin, enrolled):
        """Only failures count: a user who types codes right is never held up."""
        for n in range(5):
            at = clock.t0 + timedelta(seconds=30 * n)
            clock.move_to(at)
            app.test_client_class = type(client)
            browser = app.test_client()
            sign_in(browser, admin.email)
            assert verify(browser, code_at(enrolled, at)).status_code == 303
