"""Server-side console sessions (DESIGN §7): a copied cookie dies with its session; idle and
absolute timeouts on the server; htmx gets the sign-in redirect; last-seen is written at most
once a minute; removing an admin ends their sessions; authentication events are audited."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from app import create_app
from core.db_types import utcnow
from core.extensions import db
from core.models import AuditEvent, ConsoleSession, PlatformEvent
from core.services.console_sessions import hash_token
from tests.conftest import base_config
from tests.console.conftest import ConsoleClient, another_browser, make_console_user
from tests.console.helpers import csrf_token, htmx_headers, sign_in, soup


def sessions_of(user_id: str) -> list[ConsoleSession]:
    """The user's session rows as the database has them now."""
    db.session.rollback()  # a fresh snapshot: the server writes on connections of its own
    return list(db.session.scalars(select(ConsoleSession).where(ConsoleSession.user_id == user_id)))


def move_session(user_id: str, **ago: timedelta) -> None:
    """Pretend the user's sessions started / were last seen that long ago (no sleeping)."""
    db.session.rollback()  # the test's snapshot may predate the server's own writes
    now = utcnow()
    values = {column: now - delta for column, delta in ago.items()}
    db.session.execute(
        update(ConsoleSession).where(ConsoleSession.user_id == user_id).values(**values)
    )
    db.session.commit()


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    """The tenant's audit events of ``action``, as committed now."""
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def copy_of_cookie(app, client) -> ConsoleClient:
    """A second browser holding a copy of ``client``'s session cookie (what an attacker stole)."""
    app.test_client_class = ConsoleClient
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, console, admin):
    """The issue's replay: the copy works while the session lives, and after sign-out it gets
    the sign-in page, not 200; the session's row is gone."""
    thief = copy_of_cookie(app, console)
    assert thief.get("/channels").status_code == 200
    assert (
        console.post("/logout", data={"csrf_token": csrf_token(console, "/channels")}).status_code
        == 303
    )
    replayed = thief.get("/channels")
    assert replayed.status_code == 303
    assert replayed.headers["Location"].startswith("/login")
    assert sessions_of(admin.id) == []


def test_the_database_holds_only_a_hash_of_the_token(console, admin):
    """The cookie's token is 256-bit random; the row stores its SHA-256, never the token."""
    with console.session_transaction() as stored:
        token = stored["_user_id"]
    [record] = sessions_of(admin.id)
    assert len(token) >= 43 and record.token_hash == hash_token(token)
    assert token not in (record.id, record.token_hash, record.user_agent, record.ip)


def test_each_sign_in_is_a_session_of_its_own(app, console, admin):
    """Two browsers, two rows; signing one out leaves the other signed in."""
    laptop = another_browser(app, admin.email)
    assert len(sessions_of(admin.id)) == 2
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/channels")})
    assert laptop.get("/channels").status_code == 303
    assert console.get("/channels").status_code == 200
    assert len(sessions_of(admin.id)) == 1


def test_idle_session_expires_on_the_server(console, admin):
    """Unused for SESSION_IDLE_MINUTES (30): the sign-in page, with a message; the row goes."""
    move_session(admin.id, last_seen_at=timedelta(minutes=30, seconds=1))
    response = console.get("/channels")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert sessions_of(admin.id) == []
    assert "Your session has ended" in soup(console.get("/login")).find(id="flash").get_text()


def test_a_session_in_use_stays_and_is_touched(console, admin):
    """Last seen 29 minutes ago: still signed in, and last_seen_at moves to now."""
    move_session(admin.id, last_seen_at=timedelta(minutes=29))
    assert console.get("/channels").status_code == 200
    [record] = sessions_of(admin.id)
    assert utcnow() - record.last_seen_at < timedelta(seconds=30)


def test_absolute_lifetime_ends_even_a_busy_session(console, admin):
    """Started SESSION_MAX_HOURS (12) ago: over, however recently it was used."""
    move_session(admin.id, created_at=timedelta(hours=12, seconds=1), last_seen_at=timedelta(0))
    assert console.get("/channels").status_code == 303
    assert sessions_of(admin.id) == []


def test_an_expired_write_is_refused_too(console, admin, tenant):
    """A POST of an expired session does not run (the sign-in page, nothing written)."""
    token = csrf_token(console, "/team")
    move_session(admin.id, last_seen_at=timedelta(hours=1))
    response = console.post(
        "/team", data={"csrf_token": token, "email": "x@example.org", "password": "p" * 12}
    )
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert events(tenant.id, "user.create") == []


def test_expired_htmx_request_gets_the_sign_in_redirect(console, admin):
    """htmx: 401 with HX-Redirect to the sign-in page (and next), as for any anonymous htmx
    request, never a page swapped into a fragment."""
    headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/channels?q=a"}
    move_session(admin.id, last_seen_at=timedelta(minutes=31))
    response = console.get("/channels?q=a", headers=headers)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/channels?q%3Da"


def test_expired_htmx_write_gets_the_sign_in_redirect(console, admin, setup):
    """An htmx POST of an expired session (SQLite: a write request) is answered at once."""
    headers = htmx_headers(console, "/channels")
    move_session(admin.id, last_seen_at=timedelta(minutes=31))
    response = console.post("/account/sessions/revoke-others", headers=headers)
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")


@pytest.fixture
def updates():
    """Every UPDATE of console_sessions sent to the database (any connection)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE CONSOLE_SESSIONS"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


def test_last_seen_is_written_at_most_once_a_minute(console, admin, updates):
    """Ten requests within the minute write nothing; once the minute has passed, the next
    request writes once and the one after it nothing again."""
    for _ in range(10):
        assert console.get("/channels").status_code == 200
    assert updates == []
    move_session(admin.id, last_seen_at=timedelta(minutes=1, seconds=1))
    updates.clear()
    for _ in range(3):
        assert console.get("/channels").status_code == 200
        # Each production request has a session (and snapshot) of its own; the test shares one.
        db.session.rollback()
    assert len(updates) == 1


def test_a_write_request_touches_without_waiting(console, admin, updates):
    """A stale session's POST (SQLite: BEGIN IMMEDIATE) touches it on the side and goes on."""
    token = csrf_token(console, "/account")
    move_session(admin.id, last_seen_at=timedelta(minutes=5))
    updates.clear()
    response = console.post("/account/sessions/revoke-others", data={"csrf_token": token})
    assert response.status_code == 303 and len(updates) == 1


def test_removing_an_admin_ends_all_their_sessions(app, console, admin, tenant):
    """Both of a removed admin's browsers (and a copy of a cookie) get the sign-in page."""
    colleague = make_console_user("colleague@example.org", "admin", tenant)
    phone = another_browser(app, colleague.email)
    laptop = another_browser(app, colleague.email)
    stolen = copy_of_cookie(app, laptop)
    assert len(sessions_of(colleague.id)) == 2
    token = csrf_token(console, "/team")
    console.post(f"/team/{colleague.id}/remove", data={"csrf_token": token})
    assert sessions_of(colleague.id) == []
    for browser in (phone, laptop, stolen):
        assert browser.get("/channels").status_code == 303


def test_sign_in_and_sign_out_are_audited(console, admin, tenant):
    """user.signed_in and user.signed_out in the tenant's log, by the user, with the session."""
    [signed_in] = events(tenant.id, "user.signed_in")
    [session_id] = [record.id for record in sessions_of(admin.id)]
    assert (signed_in.actor_id, signed_in.resource_id) == (admin.id, admin.id)
    assert signed_in.changes["session_id"]["after"] == session_id
    console.post("/logout", data={"csrf_token": csrf_token(console, "/channels")})
    [signed_out] = events(tenant.id, "user.signed_out")
    assert signed_out.actor_id == admin.id
    assert signed_out.changes["session_id"]["before"] == session_id


def test_failed_sign_in_of_a_known_account_is_audited(client, admin, tenant):
    """A wrong password for an existing admin: user.sign_in_failed (with the IP), by the
    sign-in form, not by the user; an unknown email leaves no trace in any tenant."""
    assert sign_in(client, admin.email, "wrong-password-123").status_code == 422
    assert sign_in(client, "nobody@example.org", "wrong-password-123").status_code == 422
    [failed] = events(tenant.id, "user.sign_in_failed")
    assert failed.resource_id == admin.id
    assert (failed.actor_type, failed.actor_name) == ("system", "sign-in")
    assert failed.ip == "127.0.0.1"
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.resource_id.is_(None))) is None


@pytest.fixture
def auth_log(caplog):
    """Records of the ``channels.auth`` logger (which does not propagate to the root)."""
    logger = logging.getLogger("channels.auth")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="channels.auth")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_support_staff_authentication_goes_to_the_platform_log(client, support_user, auth_log):
    """Support staff have no tenant: their sign-in, failure (with its reason class) and
    sign-out are platform log rows and app log lines, and no tenant's audit log gets them."""
    sign_in(client, support_user.email, "wrong-password-123")
    assert sign_in(client, support_user.email).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client, "/support/tenants")})
    lines = [r.getMessage() for r in auth_log.records]
    actions = ("user.sign_in_failed", "user.signed_in", "user.signed_out")
    for action in actions:
        assert any(line.startswith(action) and support_user.email in line for line in lines)
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent)) is None
    rows = db.session.scalars(select(PlatformEvent).order_by(PlatformEvent.created_at)).all()
    assert [(row.action, row.resource_id) for row in rows] == [
        (action, support_user.id) for action in actions
    ]
    assert rows[0].changes == {"reason": "wrong_password"}
    assert "wrong-password-123" not in " ".join(lines) + repr([row.changes for row in rows])


def test_support_tenant_choice_ends_with_the_session(app, support_console, support_user, tenant):
    """The tenant a support user opened does not outlive the session (copied cookie included)."""
    token = csrf_token(support_console, "/support/tenants")
    data = {"csrf_token": token, "reason": "Ticket 12"}
    support_console.post(f"/support/tenants/{tenant.id}/open", data=data)
    assert support_console.get("/channels").status_code == 200
    stolen = copy_of_cookie(app, support_console)
    move_session(support_user.id, last_seen_at=timedelta(hours=2))
    assert stolen.get("/channels").status_code == 303
    with stolen.session_transaction() as stored:
        assert "support_tenant_id" not in stored


def test_console_pages_are_never_cached(console):
    """Every console page (and the sign-in page) is Cache-Control: no-store; static files not."""
    for path in ("/channels", "/account", "/team", "/audit"):
        assert console.get(path).headers["Cache-Control"] == "no-store", path
    assert console.get("/channels/no-such-id/edit").headers["Cache-Control"] == "no-store"
    static = console.get("/static/app.css")
    assert "no-store" not in (static.headers.get("Cache-Control") or "")
    static.close()


def test_sign_in_page_is_never_cached(client):
    """The sign-in page (with its CSRF token) is no-store as well."""
    assert client.get("/login").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_IDLE_MINUTES", "soon"),
        ("SESSION_IDLE_MINUTES", "0"),
        ("SESSION_MAX_HOURS", "-1"),
        ("SESSION_MAX_HOURS", ""),
        ("SESSION_MAX_HOURS", "inf"),
    ],
)
def test_a_bad_timeout_setting_stops_the_app_with_its_name(database_url, name, value):
    """Timeouts are typed at start-up (core.settings): a bad value never reaches a request."""
    with pytest.raises(RuntimeError, match=name):
        create_app(base_config(database_url) | {name: value})


def test_timeout_settings_come_from_the_environment(database_url, monkeypatch):
    """SESSION_IDLE_MINUTES / SESSION_MAX_HOURS from the environment, as numbers; Flask's own
    cookie is accepted no longer than a session may last."""
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "15")
    monkeypatch.setenv("SESSION_MAX_HOURS", "8")
    configured = create_app(base_config(database_url))
    assert configured.config["SESSION_IDLE_MINUTES"] == 15
    assert configured.config["SESSION_MAX_HOURS"] == 8
    assert configured.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)


def test_the_idle_timeout_follows_the_setting(app, console, admin):
    """With SESSION_IDLE_MINUTES=5 (read at request time), six idle minutes end the session."""
    app.config["SESSION_IDLE_MINUTES"] = 5
    move_session(admin.id, last_seen_at=timedelta(minutes=4))
    assert console.get("/channels").status_code == 200
    move_session(admin.id, last_seen_at=timedelta(minutes=6))
    assert console.get("/channels").status_code == 303
