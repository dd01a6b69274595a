"""Sign-in and sign-out: server-side sessions loaded through Flask-Login; CSRF on both forms.

Flask-Login's ``_user_id`` session key holds the session's random token, never the user's id
(Flask-Login's "alternative token" pattern): ``load_user`` resumes the server-side session of
that token (core.services.console_sessions), which enforces the idle and absolute timeouts. A
token whose session ended (sign-out, revoked, expired, account removed) loads nobody, and the
rest of that browser session (support tenant, CSRF token) is dropped with it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, g, make_response, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from blueprints.console import bp, sign_in_steps
from blueprints.console.forms import LoginForm
from blueprints.console.responses import (
    current_path,
    safe_local_url,
    see_other,
)
from blueprints.console.writes import console_write
from core.extensions import login_manager
from core.http import rate_limited
from core.limits import SIGNIN_MESSAGE, signin_rate_limits
from core.models import User
from core.services import accounts, console_sessions

SIGN_IN_FAILED = "Incorrect email or password."
SESSION_ENDED = "Your session has ended. Sign in again to continue."
# Where Flask-Login keeps what its user_loader receives: here, the session token.
LOGIN_KEY = "_user_id"


@login_manager.user_loader
def load_user(token: str) -> User | None:
    """The user of the request's live server-side session, or None (the browser session is
    then cleared: nothing of an ended session survives in the cookie)."""
    resumed = console_sessions.resume_session(token)
    if resumed.user is None:
        session.clear()
        g.console_session_ended = True
        return None
    g.console_session_id = resumed.session_id
    return resumed.user


def current_session_id() -> str | None:
    """The id of the signed-in request's server-side session (None when signed out)."""
    return g.get("console_session_id") if current_user.is_authenticated else None


def begin_browser_session(user: User, session_id: str, token: str) -> None:
    """Hold the new server-side session in a fresh browser session."""
    session.clear()  # a new session on sign-in: nothing of the anonymous one survives
    login_user(user)
    session[LOGIN_KEY] = token  # login_user stored the user's id; the token replaces it
    g.console_session_id = session_id


@login_manager.unauthorized_handler
def sign_in_required():
    """Anonymous request: to the sign-in page (htmx: 401 with HX-Redirect, not a swapped page)."""
    next_url = current_path() if request.method == "GET" else None
    if g.pop("console_session_ended", False):
        flash(SESSION_ENDED, "info")
    if request.headers.get("HX-Request") == "true":
        page = request.headers.get("HX-Current-URL")
        target = url_for("console.login", next=safe_local_url(_path_of(page)))
        response = make_response(
            render_template("error.html", status=401, message="Sign in to continue."), 401
        )
        response.headers["HX-Redirect"] = target
        return response
    if next_url == url_for("console.home"):
        next_url = None
    return see_other(url_for("console.login", next=next_url))


def _path_of(url: str | None) -> str | None:
    """The path and query of a URL of this site (None for another host)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/login", methods=["GET", "POST"])
@signin_rate_limits  # RATELIMIT_SIGNIN per account and per IP, on POSTs (core.limits)
def login():
    """Show the sign-in form; on valid credentials start a fresh session and go to ``next``."""
    next_url = safe_local_url(request.values.get("next"))
    if current_user.is_authenticated:
        return see_other(next_url or url_for("console.channels_index"))
    form = LoginForm()
    if form.validate_on_submit():
        with console_write():
            user = accounts.authenticate_user(form.email.data, form.password.data)
            if user is None:
                console_sessions.record_failed_sign_in(form.email.data)
        if user is not None:
            # The next step: the session, or first the second factor (sign_in_steps).
            return sign_in_steps.proceed(user, next_url)
        form.form_errors.append(SIGN_IN_FAILED)
    status = 422 if request.method == "POST" else 200
    return render_template("login.html", form=form, next_url=next_url), status


def render_login(errors: list[str], next_url: str | None, status: int):
    """The sign-in form (empty) with ``errors`` above it."""
    form = LoginForm(formdata=None)
    form.form_errors.extend(errors)
    return render_template("login.html", form=form, next_url=next_url), status


@bp.errorhandler(429)
def sign_in_rate_limited(exc):
    """Too many sign-in attempts: the sign-in form again with the reason inline, the email
    kept (never the password), 429 with Retry-After. Other console 429s: the usual page."""
    if request.endpoint != "console.login":
        return rate_limited(exc)
    form = LoginForm(formdata=None)
    form.email.data = (request.form.get("email") or "")[:254]
    form.form_errors.append(exc.description or SIGNIN_MESSAGE)
    next_url = safe_local_url(request.values.get("next"))
    page = make_response(render_template("login.html", form=form, next_url=next_url), 429)
    return rate_limited(exc, page)


@bp.post("/logout")
def logout():
    """End the session for good: its server-side row goes, so a copy of the cookie opens
    nothing (POST with CSRF, so that no other site can sign a user out)."""
    if current_user.is_authenticated:
        with console_write():
            console_sessions.end_session(current_user, current_session_id())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return see_other(url_for("console.login"))
