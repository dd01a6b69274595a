"""The account page: change one's password (other sessions end, this one stays), see one's
active sessions, sign one out (htmx and without JavaScript) or all the others; all audited."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, ConsoleSession, User
from tests.conftest import base_config
from tests.console.conftest import another_browser, make_console_user
from tests.console.helpers import PASSWORD, csrf_token, field_errors, htmx_headers, sign_in, soup

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
NEW_PASSWORD = "a-brand-new-passphrase"


def session_ids(user_id: str) -> list[str]:
    """The ids of the user's session rows as the database has them now."""
    db.session.rollback()  # a fresh snapshot: the server writes on connections of its own
    return list(
        db.session.scalars(select(ConsoleSession.id).where(ConsoleSession.user_id == user_id))
    )


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    """The tenant's audit events of ``action``, as committed now."""
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def change_password(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    """Submit the account page's password form."""
    data = {
        "csrf_token": csrf_token(client, "/account"),
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }
    return client.post("/account/password", data=data)


def current_session_id(client) -> str:
    """The id of the session ``client`` is signed in with, as the account page marks it."""
    row = soup(client.get("/account")).find("span", string="This session").find_parent("tr")
    return row["id"].removeprefix("session-")


def test_the_header_links_to_the_account_page(console):
    """The user menu's identity is a link to /account."""
    link = soup(console.get("/channels")).find(class_="user-menu").find("a", href="/account")
    assert link is not None and "admin@example.org" in link.get_text()


def test_account_page_lists_the_sessions_this_one_marked(app, client, admin):
    """Every live session: browser (from the User-Agent), IP, started, last seen; this one
    marked, with the sign-out form instead of a revoke button."""
    client.environ_base["HTTP_USER_AGENT"] = FIREFOX
    assert sign_in(client, admin.email).status_code == 303
    another_browser(app, admin.email, SAFARI_IPHONE)
    page = soup(client.get("/account"))
    rows = page.select("#sessions tbody tr")
    assert len(rows) == 2
    texts = {row.th.get_text(" ", strip=True) for row in rows}
    assert texts == {"Firefox 133 on Windows This session", "Safari 17 on iOS"}
    mine = next(row for row in rows if "This session" in row.get_text())
    assert mine.find("form", action="/logout") is not None
    assert "127.0.0.1" in mine.get_text() and mine.find("time")["datetime"].endswith("Z")
    other = next(row for row in rows if row is not mine)
    form = other.find("form")
    assert form["action"].endswith("/revoke") and form["hx-post"] == form["action"]
    assert page.find("button", string="Sign out everywhere else") is not None


def test_alone_there_is_no_sign_out_everywhere_else(console):
    """With a single session the button would do nothing, so it is not offered."""
    page = soup(console.get("/account"))
    assert len(page.select("#sessions tbody tr")) == 1
    assert page.find("button", string="Sign out everywhere else") is None


def test_password_change_ends_the_other_sessions_but_not_this_one(app, console, admin, tenant):
    """Current password right, new one valid: 303 with a message; this browser stays signed
    in, the others (and a copy of their cookie) are out; the new password signs in, the old
    one no longer; audited user.password_changed with the number of sessions ended."""
    laptop = another_browser(app, admin.email, CHROME_MAC)
    phone = another_browser(app, admin.email, SAFARI_IPHONE)
    mine = current_session_id(console)
    response = change_password(console)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    flash = soup(console.get("/account")).find(id="flash").get_text()
    assert "Your password is changed. 2 other sessions signed out." in flash
    assert console.get("/channels").status_code == 200
    for browser in (laptop, phone):
        assert browser.get("/channels").status_code == 303
    assert session_ids(admin.id) == [mine]
    [event] = events(tenant.id, "user.password_changed")
    assert event.actor_id == admin.id
    assert event.changes == {
        "password": {"before": "********", "after": "********"},
        "other_sessions": {"before": 2, "after": 0},
    }
    assert NEW_PASSWORD not in str(event.changes)
    assert sign_in(app.test_client(), admin.email).status_code == 422
    assert sign_in(app.test_client(), admin.email, NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field", "message"),
    [
        ("wrong-password-123", NEW_PASSWORD, None, "current_password", "not your current"),
        (PASSWORD, "short", None, "new_password", "at least 10 characters"),
        (PASSWORD, NEW_PASSWORD, "something-else-entirely", "confirm_password", "differ"),
        ("", NEW_PASSWORD, None, "current_password", "Enter your current password."),
    ],
)
def test_password_change_errors_show_next_to_the_field(
    app, console, admin, tenant, current, new, confirm, field, message
):
    """A refused change: 422 with the error next to its field; nothing changes, no session
    ends, nothing audited, the password fields come back empty."""
    laptop = another_browser(app, admin.email)
    hash_before = admin.password_hash
    response = change_password(console, current, new, confirm)
    assert response.status_code == 422
    assert message in " ".join(field_errors(response)[field])
    assert all(not box.get("value") for box in soup(response).select("input[type=password]"))
    db.session.rollback()
    assert db.session.get(User, admin.id).password_hash == hash_before
    assert laptop.get("/channels").status_code == 200
    assert events(tenant.id, "user.password_changed") == []


def test_sign_out_one_session_with_htmx(app, console, admin, tenant):
    """htmx: the row is swapped out (empty answer + flash), that browser is signed out, this
    one stays; audited user.session_revoked."""
    laptop = another_browser(app, admin.email, CHROME_MAC)
    mine = current_session_id(console)
    [other] = [sid for sid in session_ids(admin.id) if sid != mine]
    response = console.post(
        f"/account/sessions/{other}/revoke", headers=htmx_headers(console, "/account")
    )
    assert response.status_code == 200
    page = soup(response)
    assert page.find("tr") is None
    assert "The session in Chrome 131 on macOS is signed out." in page.find(id="flash").get_text()
    assert laptop.get("/channels").status_code == 303
    assert console.get("/channels").status_code == 200
    [event] = events(tenant.id, "user.session_revoked")
    assert event.changes == {"session_id": {"before": other, "after": None}}


def test_sign_out_one_session_without_javascript(app, console, admin):
    """No JS: the row's form posts and comes back to the account page (303)."""
    laptop = another_browser(app, admin.email)
    mine = current_session_id(console)
    page = soup(console.get("/account"))
    form = next(f for f in page.select("#sessions form") if f["action"] != "/logout")
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    response = console.post(form["action"], data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert laptop.get("/channels").status_code == 303
    assert session_ids(admin.id) == [mine]


def test_sessions_of_others_and_this_one_cannot_be_revoked(app, console, admin, tenant):
    """Another user's session, an unknown id, or this very session (that is signing out):
    404, and every session stays."""
    colleague = make_console_user("co@example.org", "admin", tenant)
    colleague_browser = another_browser(app, colleague.email)
    [theirs] = session_ids(colleague.id)
    mine = current_session_id(console)
    token = csrf_token(console, "/account")
    for target in (theirs, mine, "not-a-session"):
        response = console.post(f"/account/sessions/{target}/revoke", data={"csrf_token": token})
        assert response.status_code == 404, target
    assert colleague_browser.get("/channels").status_code == 200
    assert console.get("/channels").status_code == 200


def test_sign_out_everywhere_else(app, console, admin, tenant):
    """Every other session ends (303 back with a message), this one stays; audited once with
    how many there were."""
    others = [another_browser(app, admin.email) for _ in range(3)]
    mine = current_session_id(console)
    token = csrf_token(console, "/account")
    response = console.post(
        "/account/sessions/revoke-others", data={"csrf_token": token, "next": "/account"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert "3 other sessions signed out." in soup(console.get("/account")).find(id="flash").text
    assert all(browser.get("/channels").status_code == 303 for browser in others)
    assert session_ids(admin.id) == [mine]
    [event] = events(tenant.id, "user.sessions_revoked")
    assert event.changes == {"other_sessions": {"before": 3, "after": 0}}


def test_sign_out_everywhere_else_with_htmx_redraws_the_card(app, console, admin):
    """htmx: the sessions card comes back with only this session in it."""
    another_browser(app, admin.email)
    response = console.post(
        "/account/sessions/revoke-others", headers=htmx_headers(console, "/account")
    )
    page = soup(response)
    assert response.status_code == 200 and page.find("html") is None
    rows = page.select("#sessions tbody tr")
    assert len(rows) == 1 and "This session" in rows[0].get_text()
    assert "1 other session signed out." in page.find(id="flash").get_text()


def test_support_staff_manage_their_own_account(app, support_console, support_user, caplog):
    """Support staff (read-only on tenants) may change their own password; with no tenant to
    audit in, the event is an app log line."""
    logger = logging.getLogger("channels.auth")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="channels.auth")
    try:
        assert support_console.get("/account").status_code == 200
        assert change_password(support_console).status_code == 303
    finally:
        logger.removeHandler(caplog.handler)
    assert any(
        r.getMessage().startswith("user.password_changed") and support_user.email in r.getMessage()
        for r in caplog.records
    )
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent)) is None


class TestRateLimit:
    """With rate limiting on (RATELIMIT_SIGNIN at 3 per minute)."""

    @pytest.fixture
    def app_config(self, database_url, request):
        """Rate limiting on for these tests (the general suite runs without it)."""
        return base_config(database_url) | {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_SIGNIN": "3 per minute",
            "RATELIMIT_KEY_NAMESPACE": f"{request.node.nodeid}:",
        }

    def test_password_guessing_through_the_form_is_rate_limited(self, console):
        """A stolen session cannot guess the current password faster than sign-in allows:
        past RATELIMIT_SIGNIN, the change is refused with 429 and Retry-After."""
        for _ in range(3):
            assert change_password(console, current="guess-number-x").status_code == 422
        refused = change_password(console, current="guess-number-y")
        assert refused.status_code == 429 and refused.headers["Retry-After"]
