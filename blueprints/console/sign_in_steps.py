"""What stands between a correct password and a console session, and what a signed-in user
must do before anything else: the one place for both.

**Before the session** (``proceed``): after the password, a user with a second factor is not
signed in yet. The browser's signed session holds only a *pending sign-in* (``PENDING_KEY``:
the user's id, when the password was checked, where to go next) for ``PENDING_MINUTES``; the
second-factor page (``/login/verify``) asks for a code from the authenticator app, a recovery
code, or a passkey. Only when it passes does ``finish`` start the server-side session (audited
``user.signed_in`` with the method, e.g. ``password+totp``). Wrong codes are limited per
account (``RATELIMIT_MFA``) and audited. A passkey alone also signs in (``/login/passkey``,
user verification required): it replaces both password and code.

**After the session** (``required_step``, run by the console's ``before_request``): an admin
whose tenant requires MFA and who has no factor can only reach the enrollment pages (the
account page, setting up a factor, confirming, signing out) until they have one; every other
page sends them there. Support staff without a factor may sign in, but the tenant switcher
sends them to enrollment (blueprints/console/support.py).

Another step (e.g. a required password change) is one more check in ``proceed`` or
``required_step``, not another flow.
"""

from __future__ import annotations

import time

from flask import flash, g, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField

from blueprints.console import bp
from blueprints.console.passkey_challenges import issue, take
from blueprints.console.responses import safe_local_url, see_other
from blueprints.console.writes import console_write
from core.extensions import db
from core.limits import client_ip
from core.models import User
from core.services import console_sessions, mfa, passkeys

PENDING_KEY = "pending_sign_in"
PENDING_MINUTES = 5
ENROLL_MESSAGE = (
    "{tenant} requires two-factor authentication for every admin. Set up an authenticator app "
    "or a passkey to continue."
)
# What a user who must enroll may still reach.
ENROLLMENT_ENDPOINTS = {
    "console.logout",
    "console.account_password_required",
    "console.account_change_password",
    "console.account_index",
    "console.account_totp_begin",
    "console.account_totp_setup",
    "console.account_totp_confirm",
    "console.account_passkey_options",
    "console.account_passkey_register",
    "console.account_confirm",
    "console.account_confirm_options",
    "console.account_recovery_codes",
}


class SecondFactorForm(FlaskForm):
    """A code from the authenticator app or a recovery code, or a passkey's answer."""

    code = StringField("Authentication code")
    passkey = HiddenField()


# --- before the session -------------------------------------------------------------------------


def proceed(user: User, next_url: str | None, method: str = "password"):
    """The password was right: sign in now, or ask for the second factor first."""
    if mfa.has_factor(user.id):
        session.clear()  # nothing of the anonymous session survives, as at sign-in
        session[PENDING_KEY] = {"user": user.id, "at": int(time.time()), "next": next_url}
        return see_other(url_for("console.login_verify"))
    return finish(user, next_url, method)


def finish(user: User, next_url: str | None, method: str):
    """Start the server-side session (one transaction with its audit event) and go on."""
    from blueprints.console.auth import begin_browser_session

    with console_write():
        record, token = console_sessions.start_session(
            user, client_ip(), request.user_agent.string, method
        )
        started = (record.id, token)
    begin_browser_session(user, *started)
    return see_other(next_url or url_for("console.channels_index"))


def pending_user() -> tuple[User | None, str | None]:
    """The user whose password was right and whose second factor is awaited, and ``next``."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None, None
    if time.time() - float(pending.get("at") or 0) > PENDING_MINUTES * 60:
        session.pop(PENDING_KEY, None)
        return None, None
    user = (
        db.session.get(User, pending.get("user")) if isinstance(pending.get("user"), str) else None
    )
    return user, safe_local_url(pending.get("next"))


def _verify_page(form: SecondFactorForm, user: User, next_url, status: int = 200):
    return (
        render_template(
            "auth/verify.html",
            form=form,
            has_totp=mfa.factors_of(user.id).totp is not None,
            has_passkeys=bool(passkeys.passkeys_of(user.id)),
            next_url=next_url,
        ),
        status,
    )


@bp.route("/login/verify", methods=["GET", "POST"])
def login_verify():
    """The second step of signing in: a code (app or recovery) or a passkey."""
    user, next_url = pending_user()
    if current_user.is_authenticated:
        return see_other(next_url or url_for("console.channels_index"))
    if user is None:
        flash("Sign in again: the second step waits only a few minutes.", "info")
        return see_other(url_for("console.login"))
    form = SecondFactorForm()
    if request.method == "GET" or not form.validate():
        return _verify_page(form, user, next_url, 200 if request.method == "GET" else 422)
    if form.passkey.data:
        challenge = take("second-factor", user.id)
        _, error = passkeys.verify_assertion(form.passkey.data, challenge, user, "sign-in")
        factor = None if error else "passkey"
    else:
        result = mfa.check_code(user, form.code.data, "sign-in")
        factor, error = result.factor, result.error
    db.session.commit()  # the audit event of the attempt, passed or failed
    if factor is None:
        form.code.errors = [error]
        form.code.data = form.passkey.data = ""  # a code or an answer is never shown back
        return _verify_page(form, user, next_url, 422)
    session.pop(PENDING_KEY, None)
    return finish(user, next_url, f"password+{factor}")


@bp.post("/login/verify/passkey-options")
def login_verify_options():
    """Passkey options for the pending user's second step (their passkeys only)."""
    user, _ = pending_user()
    if user is None:
        return {"error": "Sign in again."}, 401
    return issue("second-factor", passkeys.authentication_options(user), user.id)


@bp.post("/login/passkey/options")
def login_passkey_options():
    """Options to sign in with any passkey of this site (discoverable, verification required)."""
    return issue("sign-in", passkeys.authentication_options(None))


@bp.post("/login/passkey")
def login_passkey():
    """Sign in with a passkey alone: no email, password or code."""
    next_url = safe_local_url(request.form.get("next"))
    if current_user.is_authenticated:
        return see_other(next_url or url_for("console.channels_index"))
    form = SecondFactorForm()
    challenge = take("sign-in")
    user, error = (None, "Sign in again.")
    if form.validate():
        user, error = passkeys.verify_assertion(form.passkey.data, challenge, None, "sign-in")
    db.session.commit()  # the audit event of the attempt, passed or failed
    if user is None or error:
        from blueprints.console.auth import render_login

        return render_login(
            errors=[error or "This passkey was not accepted."], next_url=next_url, status=422
        )
    return finish(user, next_url, "passkey")


# --- after the session --------------------------------------------------------------------------


def must_enroll(user: User) -> bool:
    """Whether the signed-in user must set up a factor before anything else (an admin of a
    tenant that requires MFA, without one)."""
    if user.role != "admin" or user.tenant is None or not user.tenant.require_mfa:
        return False
    if "must_enroll" not in g:
        g.must_enroll = not mfa.has_factor(user.id)
    return g.must_enroll


def required_step():
    """A redirect to what the signed-in user must do first, or None to go on."""
    if request.endpoint in ENROLLMENT_ENDPOINTS or request.endpoint == "static":
        return None
    if not must_enroll(current_user):
        return None
    target = url_for("console.account_index", _anchor="factors")
    message = ENROLL_MESSAGE.format(tenant=current_user.tenant.name)
    if request.method == "GET" and ("info", message) not in session.get("_flashes", []):
        flash(message, "info")  # once, however many pages were tried before enrolling
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 403)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)
