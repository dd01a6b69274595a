"""Sign-in and sign-out: sessions, CSRF, safe ``next`` redirects, cookie flags."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import create_app
from core.extensions import db
from core.models import ConsoleSession
from core.services.console_sessions import hash_token
from tests import factories
from tests.conftest import base_config
from tests.console.conftest import make_console_user
from tests.console.helpers import csrf_token, sign_in, soup


def test_login_page_has_labelled_fields_and_csrf(client):
    """The sign-in page renders a form with labelled inputs and a CSRF token, and no nav."""
    response = client.get("/login")
    assert response.status_code == 200
    page = soup(response)
    assert page.find("label", attrs={"for": "email"}).get_text() == "Email"
    assert page.find("label", attrs={"for": "password"}).get_text() == "Password"
    assert page.find("input", attrs={"name": "csrf_token"})["value"]
    assert page.find("nav", attrs={"aria-label": "Main"}) is None


def test_sign_in_redirects_to_channels_and_records_last_login(client, admin):
    """Valid credentials: 303 to the channels table, last_login_at is set."""
    response = sign_in(client, admin.email)
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels"
    assert admin.last_login_at is not None
    page = soup(client.get("/channels"))
    assert page.find("nav", attrs={"aria-label": "Main"}) is not None
    assert admin.email in page.find(class_="user-menu").get_text()


def test_sign_in_is_case_insensitive_on_email(client, admin):
    """The email matches whatever its case."""
    assert sign_in(client, admin.email.upper()).status_code == 303


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@example.org", "wrong-password-123"), ("nobody@example.org", "correct-horse-battery")],
)
def test_bad_credentials_show_one_message_and_keep_the_email(client, admin, email, password):
    """Wrong password and unknown email answer the same 422 message; the email stays typed."""
    response = sign_in(client, email, password)
    assert response.status_code == 422
    page = soup(response)
    assert "Incorrect email or password." in page.find(class_="form-errors").get_text()
    assert page.find("input", attrs={"name": "email"})["value"] == email
    assert page.find("input", attrs={"name": "password"}).get("value", "") == ""
    assert client.get("/channels").status_code == 303  # still signed out


def test_empty_fields_show_errors_next_to_them(client):
    """Missing email and password: each input gets its error, linked by aria-describedby."""
    response = client.post(
        "/login", data={"csrf_token": csrf_token(client), "email": "", "password": ""}
    )
    assert response.status_code == 422
    page = soup(response)
    email = page.find("input", attrs={"name": "email"})
    assert email["aria-invalid"] == "true"
    assert "email-error" in email["aria-describedby"]
    assert page.find(id="email-error").get_text() == "Enter your email address."
    assert page.find(id="password-error").get_text() == "Enter your password."


def test_sign_in_without_csrf_token_is_rejected(client, admin):
    """A sign-in POST without its CSRF token is refused with 400 (no login CSRF)."""
    response = client.post(
        "/login", data={"email": admin.email, "password": "correct-horse-battery"}
    )
    assert response.status_code == 400
    assert client.get("/channels").status_code == 303


def test_sign_in_starts_a_new_session(client, admin):
    """Everything in the anonymous session is dropped on sign-in, including its CSRF token."""
    old_token = csrf_token(client)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    assert sign_in(client, admin.email).status_code == 303
    with client.session_transaction() as session:
        assert "planted" not in session
        # The cookie names the user only through a server-side session of theirs (DESIGN §7).
        token = session["_user_id"]
    assert token != admin.id
    record = db.session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token))
    )
    assert record is not None and record.user_id == admin.id
    assert csrf_token(client, "/channels") != old_token


def test_sign_out_ends_the_session(console):
    """POST /logout (with CSRF) signs out; the console then asks to sign in again."""
    token = csrf_token(console, "/channels")
    response = console.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "You are signed out." in soup(console.get("/login")).get_text()
    assert console.get("/channels").status_code == 303


def test_sign_out_needs_post_and_csrf(console):
    """GET /logout is not allowed and a POST without token is 400: no drive-by sign-out."""
    assert console.get("/logout").status_code == 405
    assert console.post("/logout").status_code == 400
    assert console.get("/channels").status_code == 200


def test_anonymous_pages_redirect_to_sign_in_with_next(client):
    """An anonymous visit to a console page goes to /login?next=<that page>."""
    response = client.get("/channels?status=disabled")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/channels?status%3Ddisabled"


def test_anonymous_htmx_request_gets_401_with_hx_redirect(client):
    """htmx requests are not answered with the sign-in page swapped into a fragment."""
    response = client.get(
        "/channels?q=a",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/channels?q=a"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/channels?q%3Da"
    assert soup(response).find(class_="error-message").get_text() == "Sign in to continue."


def test_root_redirects_to_the_channels_table(console):
    """/ is the channels table."""
    response = console.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/channels"


def test_signed_in_user_visiting_login_goes_on(console):
    """A signed-in user opening /login is sent to the console (or a safe next)."""
    assert console.get("/login").headers["Location"] == "/channels"
    assert console.get("/login?next=/channels/new").headers["Location"] == "/channels/new"


def test_next_to_a_local_path_is_followed(client, admin):
    """next= with a relative path of this site is where sign-in leads."""
    response = sign_in(client, admin.email, next_url="/channels?channel_type=sms")
    assert response.headers["Location"] == "/channels?channel_type=sms"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "http://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "///evil.example",
        " //evil.example",
        "https:evil.example",
    ],
)
def test_next_never_leaves_the_site(client, admin, target):
    """Open-redirect attempts through next= end on the channels table."""
    response = sign_in(client, admin.email, next_url=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/channels"


def test_next_is_carried_through_the_login_form(client):
    """The next= of the sign-in URL is kept in the form (escaped) for the POST."""
    page = soup(client.get("/login?next=/channels?q=%22x%22"))
    assert page.find("input", attrs={"name": "next"})["value"] == '/channels?q="x"'
    unsafe = soup(client.get("/login?next=//evil.example"))
    assert unsafe.find("input", attrs={"name": "next"}) is None


def test_session_cookie_is_httponly_and_lax(client, admin):
    """The session cookie is HttpOnly and SameSite=Lax (not Secure in tests: plain http)."""
    response = sign_in(client, admin.email)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_outside_development(database_url):
    """In production the session cookie is also Secure."""
    config = base_config(database_url) | {
        "ENV": "production",
        "CREDENTIALS_KEY": "x" * 43 + "=",
    }
    production = create_app(config)
    assert production.config["SESSION_COOKIE_SECURE"] is True
    with production.app_context():
        make_console_user("prod@example.org", "admin", factories.make_tenant())
        client = production.test_client()
        response = sign_in(client, "prod@example.org")
        cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        db.session.remove()
        db.engine.dispose()


def test_deleted_user_session_is_signed_out(console, admin):
    """A session whose user no longer exists is anonymous."""
    db.session.delete(admin)
    db.session.commit()
    assert console.get("/channels").status_code == 303
