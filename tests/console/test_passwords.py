"""Passwords: the one policy on every path that sets one (account page, team page, the
``create-user`` CLI), and the change a password chosen by someone else needs at first sign-in
(before anything else, htmx requests included; the seed-demo admin excepted)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import cli as cli_module
from core.extensions import db
from core.models import AuditEvent, PlatformEvent, User
from core.rules.passwords import GUESSABLE, PERSONAL, TOO_SHORT
from tests.console.conftest import ConsoleClient
from tests.console.helpers import PASSWORD, csrf_token, field_errors, sign_in, soup

GIVEN = "a-long-initial-password"  # chosen by the admin who adds a teammate
OWN = "mauve pelican outgrows tuesday"  # chosen by the new admin
REQUIRED = "/account/password/required"

# (password, what the refusal starts with) — one of each kind of the policy's refusals.
REFUSED = [
    ("short", TOO_SHORT),
    ("password123", GUESSABLE),
    ("qwertyuiop", GUESSABLE),
    ("sunshine2024", GUESSABLE),
]


def events(action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def user_named(email: str) -> User | None:
    db.session.rollback()
    return db.session.scalar(select(User).where(User.email == email))


def browser(app) -> ConsoleClient:
    app.test_client_class = ConsoleClient
    return app.test_client()


def add_admin(console, email="new.admin@example.org", password=GIVEN, name="New Admin"):
    """The team page's form."""
    data = {"csrf_token": csrf_token(console, "/team"), "email": email, "name": name}
    return console.post("/team", data=data | {"password": password})


def change(client, current, new, confirm=None, next_url=None, page="/account"):
    """The password form (the account page's, or the required change's: the same POST)."""
    data = {
        "csrf_token": csrf_token(client, page),
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }
    if next_url:
        data["next"] = next_url
    return client.post("/account/password", data=data)


# --- the policy on every path ---------------------------------------------------------------


@pytest.mark.parametrize(("password", "starts_with"), REFUSED)
def test_account_page_refuses_what_the_policy_refuses(console, admin, password, starts_with):
    """Changing one's own password: the policy's message next to the new password."""
    response = change(console, PASSWORD, password)
    assert response.status_code == 422
    [message] = field_errors(response)["new_password"]
    assert message.startswith(starts_with)
    assert sign_in(browser(console.application), admin.email).status_code == 303  # unchanged


def test_account_page_refuses_a_password_built_on_ones_email(console, admin):
    """admin@example.org may not choose a password built on "admin"."""
    response = change(console, PASSWORD, "admin-horse-battery-42")
    assert field_errors(response)["new_password"] == [PERSONAL]


def test_account_page_refuses_the_current_password_as_the_new_one(console):
    """The new password must differ from the current one (it would change nothing)."""
    response = change(console, PASSWORD, PASSWORD)
    assert response.status_code == 422
    assert field_errors(response)["new_password"] == [
        "Choose a password other than your current one."
    ]


@pytest.mark.parametrize(("password", "starts_with"), REFUSED)
def test_team_page_refuses_what_the_policy_refuses(console, password, starts_with):
    """Adding an admin: the initial password follows the same policy; nobody is created."""
    response = add_admin(console, password=password)
    assert response.status_code == 422
    [message] = field_errors(response)["password"]
    assert message.startswith(starts_with)
    assert user_named("new.admin@example.org") is None


def test_team_page_refuses_a_password_built_on_the_new_admins_name(console):
    """The policy knows the new account's email and name."""
    response = add_admin(console, email="rosalind@example.org", password="rosalind-rocks-99")
    assert field_errors(response)["password"] == [PERSONAL]
    response = add_admin(console, name="Hypatia Jones", password="hypatia-of-alexandria")
    assert field_errors(response)["password"] == [PERSONAL]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.mark.parametrize(("password", "starts_with"), REFUSED)
def test_create_user_cli_refuses_what_the_policy_refuses(cli, tenant, password, starts_with):
    """create-user: non-zero exit with the policy's message; nobody is created."""
    result = cli("create-user", "x@example.org", "--password", password, "--tenant", tenant.slug)
    assert result.exit_code != 0
    assert f"password: {starts_with}" in result.output
    assert user_named("x@example.org") is None


# --- the change a password chosen by someone else needs ---------------------------------------


def test_an_admin_added_on_the_team_page_must_change_the_password_first(app, console, admin):
    """Signed in with the given password: every console page sends them to the change page
    (with where they were going); the change done, the console works and the old password
    no longer signs in. Audited: the creation says so, the change clears it."""
    assert add_admin(console).status_code == 303
    user = user_named("new.admin@example.org")
    assert user.password_change_required is True
    [created] = events("user.create")
    assert created.changes["password_change_required"] == {"before": None, "after": True}

    newcomer = browser(app)
    assert sign_in(newcomer, user.email, GIVEN).status_code == 303
    for path in ("/channels", "/integrations?status=active", "/team", "/account", "/audit"):
        response = newcomer.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith(REQUIRED), path
    assert newcomer.get("/").headers["Location"] == REQUIRED
    page = newcomer.get(REQUIRED)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = soup(page)
    assert html.find("h1").get_text() == "Choose your own password"
    assert html.find("nav", attrs={"aria-label": "Main"}) is None  # nothing else to go to
    assert html.find("form", attrs={"action": "/logout"}) is not None

    response = change(newcomer, GIVEN, OWN, next_url="/integrations", page=REQUIRED)
    assert response.status_code == 303 and response.headers["Location"] == "/integrations"
    assert newcomer.get("/integrations").status_code == 200
    assert newcomer.get(REQUIRED).headers["Location"] == "/account"
    assert user_named(user.email).password_change_required is False
    [changed] = events("user.password_changed")
    assert changed.actor_id == user.id
    assert changed.changes["password_change_required"] == {"before": True, "after": False}
    assert sign_in(browser(app), user.email, GIVEN).status_code == 422
    assert sign_in(browser(app), user.email, OWN).status_code == 303


def test_writes_and_htmx_requests_wait_for_the_change_too(app, console, admin):
    """A POST is sent to the change page without doing anything; an htmx request gets 403 and
    HX-Redirect to it (with the page it came from), never the fragment."""
    add_admin(console)
    newcomer = browser(app)
    sign_in(newcomer, "new.admin@example.org", GIVEN)
    token = csrf_token(newcomer, REQUIRED)
    response = newcomer.post("/api-keys", data={"csrf_token": token, "name": "Sneaky"})
    assert response.status_code == 303 and response.headers["Location"] == REQUIRED
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://localhost/channels?q=a"}
    response = newcomer.get("/channels?q=ab", headers=htmx)
    assert response.status_code == 403
    assert response.headers["HX-Redirect"] == f"{REQUIRED}?next=/channels?q%3Dab"
    assert "<nav" not in response.get_data(as_text=True)
    write = newcomer.post("/team", headers=htmx | {"X-CSRFToken": token}, data={})
    assert write.status_code == 403
    assert write.headers["HX-Redirect"] == f"{REQUIRED}?next=/channels?q%3Da"
    assert events("api_key.create") == [] and len(events("user.create")) == 1


def test_signing_out_stays_possible_and_the_change_keeps_the_policy(app, console, admin):
    """Before changing, the user may sign out; the change page refuses a weak password (on
    the change page again, 422) and the given one reused."""
    add_admin(console)
    newcomer = browser(app)
    sign_in(newcomer, "new.admin@example.org", GIVEN)
    weak = change(newcomer, GIVEN, "password123", page=REQUIRED)
    assert weak.status_code == 422
    assert soup(weak).find("h1").get_text() == "Choose your own password"
    assert field_errors(weak)["new_password"][0].startswith(GUESSABLE)
    same = change(newcomer, GIVEN, GIVEN, page=REQUIRED)
    assert field_errors(same)["new_password"] == ["Choose a password other than your current one."]
    wrong = change(newcomer, "not-the-given-one", OWN, page=REQUIRED)
    assert field_errors(wrong)["current_password"] == ["This is not your current password."]
    assert user_named("new.admin@example.org").password_change_required is True
    token = csrf_token(newcomer, REQUIRED)
    response = newcomer.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert newcomer.get("/channels").headers["Location"].startswith("/login")


def test_users_who_chose_their_own_password_are_never_stopped(console, admin):
    """Someone who chose their password (here: an admin made by the tests' factory as the
    account page would) goes straight to the console."""
    assert admin.password_change_required is False
    assert console.get("/channels").status_code == 200


def test_create_user_cli_users_must_change_the_password_first(app, cli, tenant):
    """The operator chose it: admins and support staff made by create-user change it at first
    sign-in; a support user's creation is in the platform log."""
    for args in (("--tenant", tenant.slug), ("--role", "support")):
        email = f"{args[1]}@example.org"
        result = cli("create-user", email, "--password", GIVEN, *args)
        assert result.exit_code == 0, result.output
        assert user_named(email).password_change_required is True
        client = browser(app)
        assert sign_in(client, email, GIVEN).status_code == 303
        assert client.get("/channels").headers["Location"].startswith(REQUIRED)
    db.session.rollback()
    [created] = db.session.scalars(
        select(PlatformEvent).where(PlatformEvent.action == "user.create")
    ).all()
    assert (created.action, created.actor_name) == ("user.create", "cli")
    assert created.changes["password_change_required"] == {"before": None, "after": True}
    assert GIVEN not in str(created.changes)


def test_the_seed_demo_admin_is_exempt(app, cli):
    """seed-demo's admin signs in with the printed password and goes straight to the console,
    so the README's walk-through stays one command."""
    assert cli("seed-demo").exit_code == 0
    assert user_named(cli_module.DEMO_EMAIL).password_change_required is False
    client = browser(app)
    assert sign_in(client, cli_module.DEMO_EMAIL, cli_module.DEMO_PASSWORD).status_code == 303
    assert client.get("/channels").status_code == 200


def test_the_gate_reads_the_flag_of_the_signed_in_user(app, console, admin):
    """Setting the flag on a signed-in user (e.g. by an operator) stops them at their next
    request: the gate reads the account, not something cached at sign-in."""
    db.session.rollback()
    db.session.get(User, admin.id).password_change_required = True
    db.session.commit()
    assert console.get("/channels").headers["Location"].startswith(REQUIRED)


# --- an operator's reset ----------------------------------------------------------------------


def test_reset_password_cli_sets_a_temporary_password_that_must_be_changed(
    app, cli, console, admin, tenant
):
    """reset-password EMAIL: the policy applies; every session of the user ends (this signed-in
    browser too); the temporary password signs in and leads to the change page; audited."""
    weak = cli("reset-password", admin.email, "--password", "password123")
    assert weak.exit_code != 0 and f"password: {GUESSABLE}" in weak.output
    assert console.get("/channels").status_code == 200  # a refused reset changes nothing

    result = cli("reset-password", "ADMIN@example.org", "--password", GIVEN)
    assert result.exit_code == 0, result.output
    assert "1 session ended" in result.output
    assert console.get("/channels").headers["Location"].startswith("/login")
    client = browser(app)
    assert sign_in(client, admin.email, PASSWORD).status_code == 422
    assert sign_in(client, admin.email, GIVEN).status_code == 303
    assert client.get("/channels").headers["Location"].startswith(REQUIRED)
    [event] = events("user.password_reset")
    assert (event.tenant_id, event.resource_id, event.actor_name) == (tenant.id, admin.id, "cli")
    assert event.changes == {
        "password": {"before": "********", "after": "********"},
        "sessions": {"before": 1, "after": 0},
        "password_change_required": {"before": False, "after": True},
    }


def test_reset_password_cli_asks_for_the_password_without_echo(app, cli, support_user):
    """Without --password it is asked for twice (hidden); a support user's reset is in the
    platform log; an unknown email is a clear error."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reset-password", support_user.email], input=f"{GIVEN}\n{GIVEN}\n")
    assert result.exit_code == 0, result.output
    assert GIVEN not in result.output
    db.session.rollback()
    [event] = db.session.scalars(
        select(PlatformEvent).where(PlatformEvent.action == "user.password_reset")
    ).all()
    assert event.resource_id == support_user.id and GIVEN not in str(event.changes)
    unknown = cli("reset-password", "nobody@example.org", "--password", GIVEN)
    assert unknown.exit_code != 0 and "No user with the email" in unknown.output
