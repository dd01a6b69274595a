"""Team: admins add admins (email, name, initial password) and remove them; the last admin
stays; a removed admin's session stops working; every change is audited."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.extensions import db
from core.models import AuditEvent, User
from tests.console.conftest import ConsoleClient, make_console_user
from tests.console.helpers import PASSWORD, csrf_token, field_errors, htmx_headers, sign_in, soup

NEW_PASSWORD = "a-long-initial-password"


def add_admin(console, email="new.admin@example.org", name="New Admin", password=NEW_PASSWORD):
    """Submit the team page's form."""
    data = {
        "csrf_token": csrf_token(console, "/team"),
        "email": email,
        "name": name,
        "password": password,
    }
    return console.post("/team", data=data)


def team_events(tenant_id: str, action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        )
    )


def signed_in_client(app, email: str) -> ConsoleClient:
    """Another browser, signed in as ``email``."""
    app.test_client_class = ConsoleClient
    other = app.test_client()
    assert sign_in(other, email).status_code == 303
    return other


def test_team_page_lists_the_tenants_admins_only(console, admin, tenant, other_tenant):
    """The table lists this tenant's admins (you marked), never another tenant's."""
    make_console_user("colleague@example.org", "admin", tenant)
    make_console_user("stranger@example.org", "admin", other_tenant)
    page = soup(console.get("/team"))
    emails = [row.find_all("td")[0].get_text() for row in page.select(".team-table tbody tr")]
    assert emails == ["admin@example.org", "colleague@example.org"]
    assert "You" in page.find("tr", id=f"user-{admin.id}").th.get_text()
    assert page.find("form", attrs={"action": "/team"}) is not None


def test_adding_an_admin_creates_an_account_that_can_sign_in(app, console, admin, tenant):
    """The new admin belongs to the tenant, is audited by the adding admin, and signs in."""
    response = add_admin(console)
    assert response.status_code == 303 and response.headers["Location"] == "/team"
    user = db.session.scalar(select(User).where(User.email == "new.admin@example.org"))
    assert (user.role, user.tenant_id, user.name) == ("admin", tenant.id, "New Admin")
    [event] = team_events(tenant.id, "user.create")
    assert (event.actor_type, event.actor_id, event.resource_id) == ("user", admin.id, user.id)
    assert event.changes["email"] == {"before": None, "after": "new.admin@example.org"}
    assert NEW_PASSWORD not in json.dumps(event.changes)
    assert "is now an admin" in console.get("/team").get_data(as_text=True)
    other = app.test_client()  # signs in with the chosen password (email case-insensitive)
    data = {
        "csrf_token": csrf_token(other, "/login"),
        "email": "New.Admin@example.org",
        "password": NEW_PASSWORD,
    }
    assert other.post("/login", data=data).status_code == 303
    # The password was chosen by someone else: changed first (tests/console/test_passwords.py).
    assert other.get("/team").headers["Location"] == "/account/password/required?next=/team"


def test_invalid_additions_show_every_error_and_create_nothing(console, tenant):
    """Bad email, short password, an email already taken: 422, errors inline, nothing saved."""
    response = add_admin(console, email="not-an-email", password="short")
    assert response.status_code == 422
    errors = field_errors(response)
    assert set(errors) == {"email", "password"}
    page = soup(response)
    assert not page.find(id="password").get("value")  # a password is never echoed back
    assert page.find(id="email")["value"] == "not-an-email"  # what was typed is kept
    taken = add_admin(console, email="ADMIN@example.org")
    assert taken.status_code == 422 and "already exists" in field_errors(taken)["email"][0]
    assert team_events(tenant.id, "user.create") == []


def test_removing_an_admin_ends_their_session(app, console, admin, tenant):
    """htmx remove: the row goes, user.delete is audited, and their open session stops working."""
    colleague = make_console_user("colleague@example.org", "admin", tenant)
    theirs = signed_in_client(app, colleague.email)
    assert theirs.get("/channels").status_code == 200
    response = console.post(f"/team/{colleague.id}/remove", headers=htmx_headers(console, "/team"))
    assert response.status_code == 200
    assert f'id="user-{colleague.id}"' not in response.get_data(as_text=True)
    assert "no longer an admin" in soup(response).find(id="flash").get_text()
    assert db.session.get(User, colleague.id) is None
    [event] = team_events(tenant.id, "user.delete")
    assert (event.actor_id, event.resource_id) == (admin.id, colleague.id)
    assert event.changes["email"] == {"before": colleague.email, "after": None}
    after = theirs.get("/channels")
    assert after.status_code == 303 and after.headers["Location"].startswith("/login")


def test_removal_without_javascript_confirms_first(console, tenant):
    """No JS: a confirmation page, then a POST and a 303 back to the team."""
    colleague = make_console_user("colleague@example.org", "admin", tenant)
    page = console.get(f"/team/{colleague.id}/remove?next=/team")
    assert "Remove colleague@example.org from the team?" in page.get_data(as_text=True)
    token = csrf_token(console, "/team")
    response = console.post(
        f"/team/{colleague.id}/remove", data={"csrf_token": token, "next": "/team"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/team"
    assert db.session.get(User, colleague.id) is None


def test_the_last_admin_cannot_remove_themselves(console, admin, tenant):
    """Alone in the team: no Remove button; removal is refused with a message; nothing changes,
    nothing audited."""
    row = soup(console.get("/team")).find("tr", id=f"user-{admin.id}")
    assert row.select_one(".row-actions a") is None and "Last admin" in row.get_text()
    token = csrf_token(console, "/team")
    response = console.post(f"/team/{admin.id}/remove", data={"csrf_token": token})
    assert response.status_code == 303
    assert "last admin" in console.get("/team").get_data(as_text=True)
    assert db.session.get(User, admin.id) is not None
    htmx = console.post(f"/team/{admin.id}/remove", headers=htmx_headers(console, "/team"))
    assert htmx.status_code == 200 and f'id="user-{admin.id}"' in htmx.get_data(as_text=True)
    assert "last admin" in soup(htmx).find(id="flash").get_text()
    assert team_events(tenant.id, "user.delete") == []


def test_an_admin_may_leave_when_another_remains(console, admin, tenant):
    """Removing yourself (not the last): signed out, sent to sign-in, audited."""
    make_console_user("colleague@example.org", "admin", tenant)
    token = csrf_token(console, "/team")
    response = console.post(f"/team/{admin.id}/remove", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert console.get("/team").status_code == 303
    assert len(team_events(tenant.id, "user.delete")) == 1


def test_self_removal_over_htmx_redirects_to_sign_in(console, admin, tenant):
    """The htmx answer to removing yourself is an HX-Redirect to the sign-in page."""
    make_console_user("colleague@example.org", "admin", tenant)
    response = console.post(f"/team/{admin.id}/remove", headers=htmx_headers(console, "/team"))
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/login"


def test_other_tenants_admins_are_unknown_here(console, other_tenant):
    """Another tenant's admin id: 404 for the confirmation and the removal; they stay."""
    stranger = make_console_user("stranger@example.org", "admin", other_tenant)
    make_console_user("helper@example.org", "admin", other_tenant)
    assert console.get(f"/team/{stranger.id}/remove").status_code == 404
    token = csrf_token(console, "/team")
    assert (
        console.post(f"/team/{stranger.id}/remove", data={"csrf_token": token}).status_code == 404
    )
    assert console.post("/team/not-an-id/remove", data={"csrf_token": token}).status_code == 404
    assert db.session.get(User, stranger.id) is not None


def test_support_reads_the_team_but_cannot_change_it(support_console, tenant):
    """Support staff see the admins, no form and no remove button; writes are 403."""
    colleague = make_console_user("colleague@example.org", "admin", tenant)
    token = csrf_token(support_console, "/support/tenants")
    data = {"csrf_token": token, "reason": "Ticket 12"}
    support_console.post(f"/support/tenants/{tenant.id}/open", data=data)
    page = soup(support_console.get("/team"))
    assert colleague.email in page.get_text()
    assert page.find("form", attrs={"action": "/team"}) is None
    assert page.find(attrs={"hx-post": True}) is None
    assert (
        support_console.post(
            "/team", data={"csrf_token": token, "email": "x@example.org", "password": PASSWORD}
        ).status_code
        == 403
    )
    assert (
        support_console.post(f"/team/{colleague.id}/remove", data={"csrf_token": token}).status_code
        == 403
    )
    assert support_console.get(f"/team/{colleague.id}/remove").status_code == 403
    assert db.session.get(User, colleague.id) is not None
