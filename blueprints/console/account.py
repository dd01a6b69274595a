"""The account page: one's own password, second factors and sessions (DESIGN §7).

Every signed-in user has one, support staff included: it changes their own account, never a
tenant's data, so ``requires_write`` does not apply. Changing the password ends every other
session of the user (this one stays); "Sign out" ends one other session (htmx: its row goes;
without JavaScript: a form POST and 303 back); "Sign out everywhere else" ends them all. The
current session is signed out with the usual sign-out form. Everything is audited by the
services (``user.password_changed``, ``user.session_revoked``, ``user.sessions_revoked``).

A password someone else chose (a teammate on the team page, an operator's ``create-user``) must
be changed at first sign-in: ``require_own_password`` (a before-request gate, so the sign-in flow
itself is untouched) sends every other console request to the change page until it is done —
htmx requests too (403 with ``HX-Redirect``); signing out stays possible. The change page asks
for the current password as well: the same service, rules and rate limit as the account page.
"""

from __future__ import annotations

from flask import flash, make_response, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import EqualTo, InputRequired

from blueprints.console import bp
from blueprints.console.auth import current_session_id
from blueprints.console.responses import (
    current_path,
    is_fragment_request,
    redirect_back,
    render_fragments,
    render_page,
    safe_local_url,
    see_other,
    send_elsewhere,
)
from blueprints.console.writes import console_write
from core.limits import password_change_rate_limit
from core.rules.passwords import LENGTH_HELP
from core.services import accounts, console_sessions, mfa

# What a user who must first change their password can still reach.
PASSWORD_CHANGE_ENDPOINTS = {
    "console.account_password_required",
    "console.account_change_password",
    "console.login",
    "console.logout",
}
MUST_CHANGE_MESSAGE = "Choose your own password before you continue."


@bp.before_request
def require_own_password():
    """A signed-in user whose password someone else chose goes to the change page first, from
    any console request but those of ``PASSWORD_CHANGE_ENDPOINTS``; htmx: 403 + HX-Redirect."""
    if not current_user.is_authenticated or not current_user.password_change_required:
        return None
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS:
        return None
    return send_elsewhere("console.account_password_required", MUST_CHANGE_MESSAGE)


@bp.app_template_global()
def password_help() -> str:
    """The password policy in a sentence, under every new-password field."""
    return LENGTH_HELP


class PasswordChangeForm(FlaskForm):
    """The current password and the new one twice; the service checks the password rules."""

    current_password = PasswordField(
        "Current password", validators=[InputRequired("Enter your current password.")]
    )
    new_password = PasswordField(
        "New password", validators=[InputRequired("Enter a new password.")]
    )
    confirm_password = PasswordField(
        "Repeat the new password",
        validators=[
            InputRequired("Enter the new password again."),
            EqualTo("new_password", "The two new passwords differ."),
        ],
    )


def _sessions_plural(count: int) -> str:
    """ "1 other session", "3 other sessions"."""
    return f"{count} other session" + ("" if count == 1 else "s")


def render_account(form: PasswordChangeForm | None = None, passkey_form=None, status: int = 200):
    """The account page: password form, second factors, sessions (with a form's errors)."""
    from blueprints.console.mfa import PasskeyForm

    return render_page(
        "account/index.html",
        form=form or PasswordChangeForm(formdata=None),
        passkey_form=passkey_form or PasskeyForm(formdata=None),
        factors=mfa.factors_of(current_user.id),
        mfa_required=mfa.mfa_required(current_user),
        sessions=console_sessions.list_sessions(current_user.id),
        current_session_id=current_session_id(),
        describe=console_sessions.describe_user_agent,
        next_url=url_for("console.account_index"),
        status=status,
    )


def _required_change(form: PasswordChangeForm, status: int = 200):
    """The page of a required change (the first sign-in's), with ``form``."""
    next_url = safe_local_url(request.values.get("next"))
    page = render_template("account/password_required.html", form=form, next_url=next_url)
    return make_response(page, status)


def _index(form: PasswordChangeForm, status: int = 200):
    """The account page with ``form`` (and its errors, on a failed change)."""
    return render_account(form, status=status)


@bp.get("/account")
def account_index():
    """The signed-in user's password form and active sessions."""
    return _index(PasswordChangeForm(formdata=None))


@bp.get("/account/password/required")
def account_password_required():
    """The change of a password someone else chose, before anything else (the account page
    once it is done)."""
    if not current_user.password_change_required:
        return see_other(url_for("console.account_index"))
    return _required_change(PasswordChangeForm(formdata=None))


@bp.post("/account/password")
@password_change_rate_limit
def account_change_password():
    """Change one's password (current one required); every other session ends, this one stays.
    303 to the account page (a required change: on to ``next``), or 422 with every error next
    to its field, on the page the form came from."""
    required = current_user.password_change_required
    form = PasswordChangeForm()
    page = _required_change if required else _index
    if not form.validate():
        return page(form, status=422)
    with console_write(form) as write:
        ended = accounts.change_password(
            current_user,
            form.current_password.data or "",
            form.new_password.data or "",
            current_session_id(),
        )
    if write.failed:
        return page(form, status=write.status)
    others = f" {_sessions_plural(ended)} signed out." if ended else ""
    flash(f"Your password is changed.{others}", "success")
    if required:
        next_url = safe_local_url(request.form.get("next"))
        return see_other(next_url or url_for("console.channels_index"))
    return see_other(url_for("console.account_index"))


@bp.post("/account/sessions/<session_id>/revoke")
def account_revoke_session(session_id):
    """Sign one of one's other sessions out (htmx: its row goes; else 303 back)."""
    with console_write():  # an unknown or foreign session: 404
        record = console_sessions.revoke_session(current_user, session_id, current_session_id())
    browser = console_sessions.describe_user_agent(record.user_agent)
    flash(f"The session in {browser} is signed out.", "success")
    if not is_fragment_request():
        return redirect_back(url_for("console.account_index"))
    # The row goes (empty answer); "Sign out everywhere else" goes too when no other is left.
    others = console_sessions.count_other_sessions(current_user.id, current_session_id())
    button = render_template(
        "account/_revoke_others.html", others=others, oob=True, next_url=current_path()
    )
    return render_fragments(button)


@bp.post("/account/sessions/revoke-others")
def account_revoke_other_sessions():
    """ "Sign out everywhere else": every session of the user but this one ends (303 back)."""
    with console_write():
        ended = console_sessions.revoke_other_sessions(current_user, current_session_id())
    if ended:
        flash(f"{_sessions_plural(ended).capitalize()} signed out.", "success")
    else:
        flash("There were no other sessions to sign out.", "info")
    if is_fragment_request():
        # The whole sessions card changes (every other row goes): render it again.
        card = render_template(
            "account/_sessions.html",
            sessions=console_sessions.list_sessions(current_user.id),
            current_session_id=current_session_id(),
            describe=console_sessions.describe_user_agent,
            next_url=current_path(),
        )
        return render_fragments(card)
    return redirect_back(url_for("console.account_index"))
