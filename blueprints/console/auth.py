"""Sign-in and sign-out (Flask-Login sessions; CSRF on both forms)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, make_response, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from blueprints.console import bp
from blueprints.console.forms import LoginForm
from blueprints.console.responses import (
    current_path,
    safe_local_url,
    see_other,
)
from blueprints.console.writes import console_write
from core.extensions import db, login_manager
from core.http import rate_limited
from core.limits import SIGNIN_MESSAGE, signin_rate_limits
from core.models import User
from core.services import accounts
from core.tenancy import lookup_id

SIGN_IN_FAILED = "Incorrect email or password."


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user of a session (None when the user no longer exists)."""
    clean = lookup_id(user_id)
    return db.session.get(User, clean) if clean is not None else None


@login_manager.unauthorized_handler
def sign_in_required():
    """Anonymous request: to the sign-in page (htmx: 401 with HX-Redirect, not a swapped page)."""
    next_url = current_path() if request.method == "GET" else None
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
        with console_write():  # last_login_at
            user = accounts.authenticate_user(form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a new session on sign-in: nothing of the anonymous one survives
            login_user(user)
            return see_other(next_url or url_for("console.channels_index"))
        form.form_errors.append(SIGN_IN_FAILED)
    status = 422 if request.method == "POST" else 200
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
    """End the session (POST with CSRF, so that no other site can sign a user out)."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return see_other(url_for("console.login"))
