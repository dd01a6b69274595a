"""Second factors on the account page: authenticator app, recovery codes, passkeys.

Every change here is a sensitive action (``requires_recent_auth``): a stolen session cannot
swap in its own factor. Setting up an app is two steps: ``POST /account/totp`` makes a new seed
(unconfirmed) and shows it as a QR code drawn on the server (SVG) and as text; a current code
from the app confirms it. The user's first factor comes with ten recovery codes, shown once on
the answer page (never cached; regenerating replaces them). Passkeys are created by the
browser (static/webauthn.js) from options fetched here, then posted as a plain form with a
name. Enrolling or removing a factor ends every other session of the user (the services do it
and audit it).

Everyone has these pages (support staff included): they change one's own account only.
"""

from __future__ import annotations

from flask import flash, make_response, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField

from blueprints.console import bp
from blueprints.console.auth import current_session_id
from blueprints.console.passkey_challenges import issue, take
from blueprints.console.responses import see_other
from blueprints.console.step_up import requires_recent_auth
from blueprints.console.writes import console_write
from core.services import mfa, passkeys

FACTORS = "change your sign-in factors"


class TotpConfirmForm(FlaskForm):
    """The app's current code, which proves the app holds the seed."""

    code = StringField("Code from the app")


class PasskeyForm(FlaskForm):
    """A name for the new passkey and the browser's answer (filled by static/webauthn.js)."""

    name = StringField("Passkey name")
    credential = HiddenField()


def _user():
    return current_user._get_current_object()


def _recovery_codes_page(codes: list[str], first: bool):
    """The page that shows new recovery codes, once (never cached)."""
    response = make_response(
        render_template("account/recovery_codes.html", codes=codes, first=first)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/totp")
@requires_recent_auth(FACTORS)
def account_totp_begin():
    """Start setting up an authenticator app: a new seed, then the page that shows it."""
    with console_write():
        mfa.begin_totp(_user())
    return see_other(url_for("console.account_totp_setup"))


def _setup_page(form: TotpConfirmForm, status: int = 200):
    secret = mfa.pending_totp_secret(current_user.id)
    if secret is None:
        return see_other(url_for("console.account_index", _anchor="factors"))
    uri = mfa.provisioning_uri(_user(), secret)
    response = make_response(
        render_template(
            "account/totp_setup.html",
            form=form,
            qr=mfa.qr_svg(uri),
            secret=mfa.format_secret(secret),
        ),
        status,
    )
    return response


@bp.get("/account/totp")
def account_totp_setup():
    """The new app's QR code and seed (only while unconfirmed) and the code to confirm it."""
    return _setup_page(TotpConfirmForm(formdata=None))


@bp.post("/account/totp/confirm")
def account_totp_confirm():
    """Confirm the app with its current code: it becomes active (first factor: codes shown)."""
    form = TotpConfirmForm()
    if not form.validate():
        return _setup_page(form, 422)
    with console_write(form) as write:
        codes = mfa.confirm_totp(_user(), form.code.data or "", current_session_id())
    if write.failed:
        return _setup_page(form, write.status)
    if codes:
        return _recovery_codes_page(codes, first=True)
    flash("Your authenticator app is set up.", "success")
    return see_other(url_for("console.account_index", _anchor="factors"))


@bp.post("/account/totp/remove")
@requires_recent_auth(FACTORS)
def account_totp_remove():
    """Remove the authenticator app (not the last factor while MFA is required)."""
    with console_write() as write:
        mfa.remove_totp(_user(), current_session_id())
    if not write.failed:
        flash("The authenticator app is removed.", "success")
    return see_other(url_for("console.account_index", _anchor="factors"))


@bp.post("/account/recovery-codes")
@requires_recent_auth(FACTORS)
def account_recovery_codes():
    """Ten new recovery codes (the old ones stop working), shown once."""
    with console_write() as write:
        codes = mfa.regenerate_recovery_codes(_user())
    if write.failed:
        return see_other(url_for("console.account_index", _anchor="factors"))
    return _recovery_codes_page(codes, first=False)


@bp.post("/account/passkeys/options")
def account_passkey_options():
    """Options for the browser to create a passkey for this account."""
    user = _user()
    return issue("register", passkeys.registration_options(user), user.id)


@bp.post("/account/passkeys")
@requires_recent_auth(FACTORS)
def account_passkey_register():
    """Store the passkey the browser created (verified against the issued challenge)."""
    form = PasskeyForm()
    user = _user()
    if form.validate():
        challenge = take("register", user.id)
        with console_write(form, elsewhere=("credential",)) as write:
            passkey, codes = passkeys.register_passkey(
                user, form.name.data or "", form.credential.data, challenge, current_session_id()
            )
        if not write.failed:
            if codes:
                return _recovery_codes_page(codes, first=True)
            flash(f"The passkey “{passkey.name}” is added.", "success")
            return see_other(url_for("console.account_index", _anchor="factors"))
        for message in write.error.fields.get("credential", []):
            form.form_errors.append(message)
    from blueprints.console.account import render_account

    return render_account(passkey_form=form, status=422)


@bp.post("/account/passkeys/<passkey_id>/remove")
@requires_recent_auth(FACTORS)
def account_passkey_remove(passkey_id):
    """Remove one of one's passkeys (not the last factor while MFA is required)."""
    with console_write() as write:
        passkey = passkeys.remove_passkey(_user(), passkey_id, current_session_id())
    if not write.failed:
        flash(f"The passkey “{passkey.name}” is removed.", "success")
    return see_other(url_for("console.account_index", _anchor="factors"))
